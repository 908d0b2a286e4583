"""Weight sharing with uniformly sampled paths, then a search with the shared weights.

- RSWS, random search with weight sharing (Li & Talwalkar, UAI 2019): each step trains
  the supernet on one uniformly sampled cell; the result is the best of `num_candidates`
  random cells ranked by supernet accuracy on a validation batch (as the NB201 authors'
  RANDOM-NAS baseline does with 100 candidates).
- SPOS, single-path one-shot (Guo et al., ECCV 2020): the same uniform single-path
  training; the result comes from an evolutionary search whose fitness is supernet
  validation accuracy. jnas runs its own regularized evolution
  (`jnas.search.regularized_evolution`) inside the compiled program rather than SPOS's
  crossover GA: same fitness, same budget, a different evolutionary operator.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax

from jnas.oneshot._base import (
    Batch,
    OneShot,
    OneShotState,
    accuracy,
    check_config,
    cross_entropy,
    make_supernet,
    nb201_w_lr,
    nb201_w_optimizer,
    w_update,
)


def _uniform_path(space: Any, epochs: int, steps_per_epoch: int, w_lr, w_optimizer,
                  supernet: dict, where: str):
    check_config(where, epochs=epochs, steps_per_epoch=steps_per_epoch)
    net = make_supernet(space, supernet)
    lr = nb201_w_lr(epochs, steps_per_epoch) if w_lr is None else w_lr
    w_opt = w_optimizer or nb201_w_optimizer(lr)

    def init(key: jax.Array) -> OneShotState:
        params = net.init_params(key)
        return OneShotState(params, jnp.zeros((space.num_edges, space.num_ops)),
                            w_opt.init(params), (), jnp.zeros((), jnp.int32))

    def step(state: OneShotState, train: Batch, val: Batch,
             key: jax.Array) -> tuple[OneShotState, dict]:
        del val  # the weights are the only thing trained
        index = space.to_decisions(space.sample(key))
        weights = jax.nn.one_hot(index, space.num_ops)

        def of_params(p):
            logits = net.apply(p, train[0], weights, index)
            return cross_entropy(logits, train[1]), accuracy(logits, train[1])

        params, w_state, loss, acc = w_update(of_params, w_opt, state.params, state.w_opt)
        return state._replace(params=params, w_opt=w_state, step=state.step + 1), {
            "w_loss": loss, "w_acc": acc}

    def supernet_accuracy(params: Any, archs: Any, batch: Batch) -> jax.Array:
        """Accuracy of each of a batch of cells with the shared weights (one at a time)."""
        def one(arch):
            index = space.to_decisions(arch)
            return accuracy(net.apply(params, batch[0], jax.nn.one_hot(index, space.num_ops),
                                      index), batch[1])
        return jax.lax.map(one, archs)

    return net, init, step, supernet_accuracy


def _need_data(where: str, key, batch) -> None:
    if key is None or batch is None:
        raise ValueError(f"{where}.derive ranks cells with the supernet: pass `key` and a "
                         "validation `batch`")


def rsws(space: Any, *, epochs: int = 50, steps_per_epoch: int = 391,
         num_candidates: int = 100, w_lr: optax.ScalarOrSchedule | None = None,
         w_optimizer: optax.GradientTransformation | None = None, **supernet: Any) -> OneShot:
    """Random search with weight sharing; `derive(state, key, batch)` picks the best of
    `num_candidates` uniform cells by supernet accuracy on `batch`."""
    if not isinstance(num_candidates, int) or num_candidates < 1:
        raise ValueError(f"rsws: `num_candidates` must be an int >= 1; got {num_candidates!r}")
    net, init, step, supernet_accuracy = _uniform_path(
        space, epochs, steps_per_epoch, w_lr, w_optimizer, supernet, "rsws")

    def derive(state: OneShotState, key: jax.Array | None = None, batch: Batch | None = None):
        _need_data("rsws", key, batch)
        archs = jax.vmap(space.sample)(jax.random.split(key, num_candidates))
        best = jnp.argmax(supernet_accuracy(state.params, archs, batch))
        return jax.tree.map(lambda a: a[best], archs)

    return OneShot(init, step, derive, net.apply)


def spos(space: Any, *, epochs: int = 50, steps_per_epoch: int = 391,
         population_size: int = 20, sample_size: int = 5, num_evaluations: int = 200,
         w_lr: optax.ScalarOrSchedule | None = None,
         w_optimizer: optax.GradientTransformation | None = None, **supernet: Any) -> OneShot:
    """Single-path one-shot; `derive(state, key, batch)` runs `num_evaluations` steps of
    regularized evolution with supernet accuracy on `batch` as the fitness."""
    from jnas.search import regularized_evolution

    if not isinstance(num_evaluations, int) or num_evaluations < population_size:
        raise ValueError(f"spos: `num_evaluations` must be an int >= population_size "
                         f"({population_size}); got {num_evaluations!r}")
    searcher = regularized_evolution(space, population_size, sample_size)
    net, init, step, supernet_accuracy = _uniform_path(
        space, epochs, steps_per_epoch, w_lr, w_optimizer, supernet, "spos")

    def derive(state: OneShotState, key: jax.Array | None = None, batch: Batch | None = None):
        _need_data("spos", key, batch)
        k_init, k_run = jax.random.split(key)

        def body(s, k):
            archs, s = searcher.ask(k, s)
            return searcher.tell(s, archs, supernet_accuracy(state.params, archs, batch)), None

        rounds = num_evaluations // searcher.batch_size
        final, _ = jax.lax.scan(body, searcher.init(k_init), jax.random.split(k_run, rounds))
        return final.best

    return OneShot(init, step, derive, net.apply)
