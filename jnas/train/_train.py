"""Training a compiled network from scratch: whole epochs as one jitted `lax.scan`.

The default recipe is NB201's: SGD with Nesterov momentum 0.9, learning rate 0.1 with
cosine decay per step, weight decay 5e-4, batch 256, 200 epochs, random crop + flip.
A NaN or Inf loss stops the run with an error naming the epoch and step.
"""

from __future__ import annotations

import dataclasses
import functools
import pathlib
from collections.abc import Callable
from typing import Any, cast

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from jnas._checks import check_positive
from jnas._execution import stepper
from jnas.data import HostSource, Split, batch_indices, chunks, random_crop_flip, stream
from jnas.runs import run_units


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of a final training run (NB201's by default)."""

    epochs: int = 200
    batch_size: int = 256
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    augment: bool = True  # random crop (pad 4) + horizontal flip
    eval_batch_size: int = 500
    data_workers: int = 1  # host-streamed data: threads gathering/decoding batches at once

    def __post_init__(self) -> None:
        check_positive(
            "TrainConfig",
            epochs=self.epochs,
            batch_size=self.batch_size,
            eval_batch_size=self.eval_batch_size,
            data_workers=self.data_workers,
        )
        for name in ("lr", "momentum", "weight_decay"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"TrainConfig: `{name}` must be >= 0; got {getattr(self, name)}")

    def optimizer(self, steps_per_epoch: int) -> optax.GradientTransformation:
        schedule = optax.cosine_decay_schedule(self.lr, self.epochs * steps_per_epoch)
        return optax.chain(
            optax.add_decayed_weights(self.weight_decay),
            optax.sgd(schedule, momentum=self.momentum, nesterov=self.nesterov),
        )


def _logits_fn(graphdef: Any) -> Callable:
    def logits(params: Any, rest: Any, x: jax.Array) -> tuple[jax.Array, Any]:
        model = nnx.merge(graphdef, params, rest, copy=True)
        out = model(x)
        return out, nnx.split(model, nnx.Param, ...)[2]

    return logits


@functools.partial(jax.jit, static_argnums=0)
def _eval_chunk(graphdef: Any, params: Any, rest: Any, x: jax.Array, y: jax.Array):
    logits, _ = _logits_fn(graphdef)(params, rest, x)
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, y)
    return jnp.sum(loss), jnp.sum(jnp.argmax(logits, -1) == y)


def evaluate(
    model: nnx.Module, data: Split | HostSource, batch_size: int = 500
) -> dict[str, float]:
    """Loss and accuracy of `model` in eval mode on all of `data` (no example dropped)."""
    model.eval()
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    n, total_loss, correct = 0, 0.0, 0
    for x, y in chunks(data, batch_size):
        loss, hits = _eval_chunk(graphdef, params, rest, x, y)
        n, total_loss, correct = n + len(y), total_loss + float(loss), correct + int(hits)
    return {"loss": total_loss / n, "acc": correct / n}


def train(
    model: nnx.Module,
    key: jax.Array,
    data: Split | HostSource,
    config: TrainConfig = TrainConfig(),
    *,
    test: Split | HostSource | None = None,
    out: str | pathlib.Path | None = None,
    resume: bool = False,
    steps_mode: str = "auto",
    on_epoch: Callable[[dict], None] | None = None,
) -> tuple[nnx.Module, list[dict]]:
    """Train `model` (in place; also returned) on `data` from scratch with `config`.

    One record per epoch (mean train loss/accuracy, and test loss/accuracy when `test` is
    given). With `out`, records go to `out/records.jsonl` and the model and optimiser are
    checkpointed every epoch; `resume=True` continues a killed run to the same result.
    `steps_mode` chooses one `lax.scan` per epoch or a loop of jitted steps (`jnas._execution`).

    `data` is a `Split` (kept on the device; an epoch gathers its batches there) or a
    `HostSource` such as `jnas.data.ArraySource.load(...)` or `TFDSSource` (kept on the
    host; batches are streamed to the device with `jnas.data.stream`, one jitted step
    each). Both see the same batches for the same key, so they train to the same result.
    """
    streamed = isinstance(data, HostSource)
    n = len(data) if streamed else len(data.y)
    if config.batch_size > n:
        raise ValueError(
            f"train: `config.batch_size` {config.batch_size} exceeds the {n} training examples"
        )
    steps = n // config.batch_size
    optimizer = config.optimizer(steps)
    model.train()
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    logits_of = _logits_fn(graphdef)

    def loss_fn(params, rest, x, y):
        logits, rest = logits_of(params, rest, x)
        loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
        return loss, (rest, jnp.mean(jnp.argmax(logits, -1) == y))

    def update(state, xb, yb, k):
        params, rest, opt_state = state
        xb = random_crop_flip(k, xb) if config.augment else xb
        (loss, (rest, acc)), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, rest, xb, yb)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), rest, opt_state), {"loss": loss, "acc": acc}

    def body(carry, inputs):
        state, x, y = carry
        idx, k = inputs
        state, metrics = update(state, x[idx], y[idx], k)
        return (state, x, y), metrics

    run = stepper(body, steps_mode)
    step = jax.jit(update)

    def epoch(carry, key):
        k_perm, k_aug = jax.random.split(key)
        aug_keys = jax.random.split(k_aug, steps)
        if streamed:
            outs = []
            for i, (xb, yb) in enumerate(
                stream(data, k_perm, config.batch_size, workers=config.data_workers)
            ):
                carry, out = step(carry, xb, yb, aug_keys[i])
                outs.append(out)
            return carry, jax.tree.map(lambda *o: jnp.stack(o), *outs)
        split = cast(Split, data)  # not streamed: a split's arrays
        idx = batch_indices(k_perm, n, config.batch_size)
        (carry, _, _), metrics = run((carry, split.x, split.y), (idx, aug_keys))
        return carry, metrics

    fresh = (params, rest, optimizer.init(params))

    def unit(carry: Any, e: int) -> tuple[Any, dict, dict]:
        carry, metrics = epoch(carry, jax.random.fold_in(key, e))
        record = {
            "epoch": e,
            "train_loss": float(np.mean(metrics["loss"])),
            "train_acc": float(np.mean(metrics["acc"])),
        }
        if test is not None:
            nnx.update(model, carry[0], carry[1])
            record.update(
                {f"test_{k}": v for k, v in evaluate(model, test, config.eval_batch_size).items()}
            )
            model.train()
        return carry, metrics, record

    carry, records = run_units(
        unit,
        units=config.epochs,
        init=lambda _: fresh,
        key=key,
        out=out,
        resume=resume,
        on_record=on_epoch,
    )
    nnx.update(model, carry[0], carry[1])
    return model, records
