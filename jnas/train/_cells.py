"""Training many cells of a space from scratch in one compiled program.

A supernet with fixed one-hot op weights is each cell of its space, so a batch of cells
trains as one program: every cell gets its own initialisation (`fold_in(key, i)`), its own
batch order and its own optimiser state, and the chunk runs under `lax.map` on CPU (one
cell after another inside the program) or `vmap` elsewhere; chunks reuse the compiled
program. Each epoch records the mean training loss and the validation and test loss and
accuracy, so the result is a table of learning curves (for predictors, zero-cost proxy
evaluation and learning-curve extrapolation). Batch norm is the supernet's (batch
statistics, NB201's search setting), in evaluation too: each evaluation split is normalised
by its own statistics in fixed batches of `eval_batch`.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jnas._checks import check_positive
from jnas._execution import map_in_chunks
from jnas.data import Split
from jnas.nn import functional
from jnas.spaces import HasSupernet, require
from jnas.train._train import TrainConfig


class TrainedCells(NamedTuple):
    """Per-epoch curves of N cells trained for E epochs (float64 host arrays)."""

    train_loss: np.ndarray  # [N, E] mean training cross-entropy of the epoch
    valid_loss: np.ndarray  # [N, E]
    valid_acc: np.ndarray  # [N, E]
    test_loss: np.ndarray  # [N, E]
    test_acc: np.ndarray  # [N, E]


def _batches(split: Split, size: int) -> tuple[jax.Array, jax.Array]:
    n = (len(split.y) // size) * size
    if n == 0:
        raise ValueError(f"train_cells: an evaluation split has fewer than {size} examples")
    x = jnp.asarray(split.x[:n]).reshape(n // size, size, *split.x.shape[1:])
    return x, jnp.asarray(split.y[:n]).reshape(n // size, size)


def train_cells(
    key: jax.Array,
    space: Any,
    archs: Any,
    data: dict[str, Split],
    config: TrainConfig,
    *,
    chunk: int = 8,
    eval_batch: int = 128,
    **supernet: Any,
) -> TrainedCells:
    """Train each architecture of the batch `archs` on `data["train"]` with `config` (SGD,
    cosine schedule, weight decay; no augmentation) and evaluate it on `data["valid"]` and
    `data["test"]` after every epoch. `supernet` configures `space.supernet(...)`
    (channels, cells_per_stage, num_classes, in_channels, ...). Same key, same curves."""
    require("train_cells", space, HasSupernet)
    check_positive("train_cells", chunk=chunk, eval_batch=eval_batch)
    missing = [s for s in ("train", "valid", "test") if s not in data]
    if missing:
        raise ValueError(f"train_cells: `data` needs splits train, valid, test; missing {missing}")
    if config.augment:
        raise ValueError(
            "train_cells: `config.augment` must be False (crop + flip are for CIFAR-sized "
            "images; pass TrainConfig(..., augment=False))"
        )
    train = data["train"]
    n = len(train.y)
    if config.batch_size > n:
        raise ValueError(
            f"train_cells: `config.batch_size` {config.batch_size} exceeds the {n} examples"
        )
    steps = n // config.batch_size
    optimizer = config.optimizer(steps)
    net = functional(lambda rngs: space.supernet(**supernet, rngs=rngs))
    num_ops = tuple(space.supernet_shape)[1]
    x_train, y_train = jnp.asarray(train.x), jnp.asarray(train.y)
    evals = {name: _batches(data[name], eval_batch) for name in ("valid", "test")}

    def one(i: jax.Array, arch: Any) -> tuple[jax.Array, ...]:
        k_init, k_data = jax.random.split(jax.random.fold_in(key, i))
        index = space.supernet_index(arch)
        weights = jax.nn.one_hot(index, num_ops)

        def logits(p, x):
            return net.apply(p, x, weights.astype(x.dtype), index)

        def loss(p, x, y):
            return optax.softmax_cross_entropy_with_integer_labels(logits(p, x), y).mean()

        def evaluate(p, xs, ys):
            def chunk_metrics(_, xy):
                out = logits(p, xy[0])
                ce = optax.softmax_cross_entropy_with_integer_labels(out, xy[1])
                return None, (jnp.mean(ce), jnp.mean(jnp.argmax(out, -1) == xy[1]))

            _, (ce, acc) = jax.lax.scan(chunk_metrics, None, (xs, ys))
            return jnp.mean(ce), jnp.mean(acc)

        def step(carry, idx):
            p, s = carry
            value, grads = jax.value_and_grad(loss)(p, x_train[idx], y_train[idx])
            updates, s = optimizer.update(grads, s, p)
            return (optax.apply_updates(p, updates), s), value

        def epoch(carry, e):
            perm = jax.random.permutation(jax.random.fold_in(k_data, e), n)
            idx = perm[: steps * config.batch_size].reshape(steps, config.batch_size)
            carry, losses = jax.lax.scan(step, carry, idx)
            metrics = [evaluate(carry[0], *evals[s]) for s in ("valid", "test")]
            return carry, (jnp.mean(losses), *metrics[0], *metrics[1])

        params = net.init(k_init)
        _, curves = jax.lax.scan(epoch, (params, optimizer.init(params)), jnp.arange(config.epochs))
        return curves

    parts = map_in_chunks(one, archs, chunk)
    cols = [np.concatenate([np.asarray(p[k], np.float64) for p in parts]) for k in range(5)]
    return TrainedCells(*cols)
