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

from jnas._checks import check_positive
from jnas.oneshot._base import (
    Batch,
    OneShot,
    OneShotState,
    accuracy,
    alpha_shape,
    best_of,
    check_config,
    cross_entropy,
    make_supernet,
    nb201_w_lr,
    nb201_w_optimizer,
    need_data,
    sample_index,
    supernet_accuracy,
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
        return OneShotState(params, jnp.zeros(alpha_shape(space)),
                            w_opt.init(params), (), jnp.zeros((), jnp.int32))

    def step(state: OneShotState, train: Batch, val: Batch,
             key: jax.Array) -> tuple[OneShotState, dict]:
        del val  # the weights are the only thing trained
        weights, index = sample_index(space, key)

        def of_params(p):
            logits = net.apply(p, train[0], weights, index)
            return cross_entropy(logits, train[1]), accuracy(logits, train[1])

        params, w_state, loss, acc = w_update(of_params, w_opt, state.params, state.w_opt)
        return state._replace(params=params, w_opt=w_state, step=state.step + 1), {
            "w_loss": loss, "w_acc": acc}

    return net, init, step


def random_candidates_derive(net: Any, space: Any, num_candidates: int, where: str):
    """`derive(state, key, batch)`: the best of `num_candidates` uniform cells by supernet
    accuracy on `batch`."""
    def derive(state: OneShotState, key: jax.Array | None = None, batch: Batch | None = None):
        need_data(where, key, batch)
        archs = jax.vmap(space.sample)(jax.random.split(key, num_candidates))
        return best_of(net, space, state.params, archs, batch)
    return derive


def rsws(space: Any, *, epochs: int = 50, steps_per_epoch: int = 391,
         num_candidates: int = 100, w_lr: optax.ScalarOrSchedule | None = None,
         w_optimizer: optax.GradientTransformation | None = None, **supernet: Any) -> OneShot:
    """Random search with weight sharing; `derive(state, key, batch)` picks the best of
    `num_candidates` uniform cells by supernet accuracy on `batch`."""
    check_positive("rsws", num_candidates=num_candidates)
    net, init, step = _uniform_path(space, epochs, steps_per_epoch, w_lr, w_optimizer,
                                    supernet, "rsws")
    derive = random_candidates_derive(net, space, num_candidates, "rsws")

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
    net, init, step = _uniform_path(space, epochs, steps_per_epoch, w_lr, w_optimizer,
                                    supernet, "spos")

    def derive(state: OneShotState, key: jax.Array | None = None, batch: Batch | None = None):
        need_data("spos", key, batch)
        k_init, k_run = jax.random.split(key)

        def body(s, k):
            archs, s = searcher.ask(k, s)
            fitness = supernet_accuracy(net, space, state.params, archs, batch)
            return searcher.tell(s, archs, fitness), None

        rounds = num_evaluations // searcher.batch_size
        final, _ = jax.lax.scan(body, searcher.init(k_init), jax.random.split(k_run, rounds))
        return final.best

    return OneShot(init, step, derive, net.apply)


def oneshot_dropout(space: Any, *, epochs: int = 50, steps_per_epoch: int = 391,
                    drop_rate: float = 0.5, num_candidates: int = 100,
                    w_lr: optax.ScalarOrSchedule | None = None,
                    w_optimizer: optax.GradientTransformation | None = None,
                    **supernet: Any) -> OneShot:
    """One-Shot path dropout (Bender et al., ICML 2018): every step trains the whole
    supernet with each op of each edge dropped with probability `drop_rate` (at least one
    op kept per edge); a cell is then scored by switching off the ops it does not use, and
    the best of `num_candidates` random cells is derived."""
    check_config("oneshot_dropout", epochs=epochs, steps_per_epoch=steps_per_epoch)
    check_positive("oneshot_dropout", num_candidates=num_candidates)
    if not 0 <= drop_rate < 1:
        raise ValueError(f"oneshot_dropout: `drop_rate` must be in [0, 1); got {drop_rate}")
    net = make_supernet(space, supernet)
    lr = nb201_w_lr(epochs, steps_per_epoch) if w_lr is None else w_lr
    w_opt = w_optimizer or nb201_w_optimizer(lr)

    def init(key: jax.Array) -> OneShotState:
        params = net.init_params(key)
        return OneShotState(params, jnp.zeros(alpha_shape(space)),
                            w_opt.init(params), (), jnp.zeros((), jnp.int32))

    def step(state: OneShotState, train: Batch, val: Batch,
             key: jax.Array) -> tuple[OneShotState, dict]:
        del val
        k_drop, k_keep = jax.random.split(key)
        slots, k = alpha_shape(space)
        keep = jax.random.bernoulli(k_drop, 1 - drop_rate, (slots, k))
        rescue = jax.nn.one_hot(jax.random.randint(k_keep, (slots,), 0, k), k)
        mask = jnp.where(keep.any(-1, keepdims=True), keep, rescue).astype(jnp.float32)

        def of_params(p):
            logits = net.apply(p, train[0], mask)
            return cross_entropy(logits, train[1]), accuracy(logits, train[1])

        params, w_state, loss, acc = w_update(of_params, w_opt, state.params, state.w_opt)
        return state._replace(params=params, w_opt=w_state, step=state.step + 1), {
            "w_loss": loss, "w_acc": acc}

    derive = random_candidates_derive(net, space, num_candidates, "oneshot_dropout")
    return OneShot(init, step, derive, net.apply)
