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
import optax

from jnas._checks import check_positive
from jnas.oneshot._base import (
    Batch,
    OneShot,
    SharedWeightsState,
    Supernet,
    best_of,
    need_data,
    supernet_accuracy,
)
from jnas.oneshot._bilevel import weight_sharing
from jnas.oneshot._relaxations import path_dropout_relaxation, uniform_path_relaxation


def random_candidates_derive(space: Any, num_candidates: int, where: str):
    """`derive_with(net) -> derive(state, key, batch)`: the best of `num_candidates`
    uniform cells by supernet accuracy on `batch`."""

    def derive_with(net: Supernet):
        def derive(state: Any, key: jax.Array | None = None, batch: Batch | None = None):
            key, batch = need_data(where, key, batch)
            archs = jax.vmap(space.sample)(jax.random.split(key, num_candidates))
            return best_of(net, space, state.params, archs, batch)

        return derive

    return derive_with


def rsws(
    space: Any,
    *,
    epochs: int = 50,
    steps_per_epoch: int = 391,
    num_candidates: int = 100,
    w_lr: optax.ScalarOrSchedule | None = None,
    w_optimizer: optax.GradientTransformation | None = None,
    **supernet: Any,
) -> OneShot[SharedWeightsState]:
    """Random search with weight sharing; `derive(state, key, batch)` picks the best of
    `num_candidates` uniform cells by supernet accuracy on `batch`."""
    check_positive("rsws", num_candidates=num_candidates)
    return weight_sharing(
        space,
        uniform_path_relaxation(space),
        random_candidates_derive(space, num_candidates, "rsws"),
        name="rsws",
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        w_lr=w_lr,
        w_optimizer=w_optimizer,
        **supernet,
    )


def spos(
    space: Any,
    *,
    epochs: int = 50,
    steps_per_epoch: int = 391,
    population_size: int = 20,
    sample_size: int = 5,
    num_evaluations: int = 200,
    w_lr: optax.ScalarOrSchedule | None = None,
    w_optimizer: optax.GradientTransformation | None = None,
    **supernet: Any,
) -> OneShot[SharedWeightsState]:
    """Single-path one-shot; `derive(state, key, batch)` runs `num_evaluations` steps of
    regularized evolution with supernet accuracy on `batch` as the fitness."""
    from jnas.search import regularized_evolution

    if not isinstance(num_evaluations, int) or num_evaluations < population_size:
        raise ValueError(
            f"spos: `num_evaluations` must be an int >= population_size "
            f"({population_size}); got {num_evaluations!r}"
        )
    searcher = regularized_evolution(space, population_size, sample_size)

    def derive_with(net: Supernet):
        def derive(
            state: SharedWeightsState, key: jax.Array | None = None, batch: Batch | None = None
        ):
            key, batch = need_data("spos", key, batch)
            k_init, k_run = jax.random.split(key)

            def body(s, k):
                archs, s = searcher.ask(k, s)
                fitness = supernet_accuracy(net, space, state.params, archs, batch)
                return searcher.tell(s, archs, fitness), None

            rounds = num_evaluations // searcher.batch_size
            final, _ = jax.lax.scan(body, searcher.init(k_init), jax.random.split(k_run, rounds))
            return final.best

        return derive

    return weight_sharing(
        space,
        uniform_path_relaxation(space),
        derive_with,
        name="spos",
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        w_lr=w_lr,
        w_optimizer=w_optimizer,
        **supernet,
    )


def oneshot_dropout(
    space: Any,
    *,
    epochs: int = 50,
    steps_per_epoch: int = 391,
    drop_rate: float = 0.5,
    num_candidates: int = 100,
    w_lr: optax.ScalarOrSchedule | None = None,
    w_optimizer: optax.GradientTransformation | None = None,
    **supernet: Any,
) -> OneShot[SharedWeightsState]:
    """One-Shot path dropout (Bender et al., ICML 2018): every step trains the whole
    supernet with each op of each edge dropped with probability `drop_rate` (at least one
    op kept per edge); a cell is then scored by switching off the ops it does not use, and
    the best of `num_candidates` random cells is derived."""
    check_positive("oneshot_dropout", num_candidates=num_candidates)
    if not 0 <= drop_rate < 1:
        raise ValueError(f"oneshot_dropout: `drop_rate` must be in [0, 1); got {drop_rate}")
    return weight_sharing(
        space,
        path_dropout_relaxation(space, drop_rate),
        random_candidates_derive(space, num_candidates, "oneshot_dropout"),
        name="oneshot_dropout",
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        w_lr=w_lr,
        w_optimizer=w_optimizer,
        **supernet,
    )
