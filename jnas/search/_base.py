"""The searcher interface: pure `init / ask / tell` over an explicit state (like optax)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp


class Searcher(NamedTuple):
    """A black-box searcher as three pure functions.

    - `init(key) -> state`
    - `ask(key, state) -> (archs, state)`: a batch of `batch_size` candidates
    - `tell(state, archs, fitness) -> state`: fitness float32[batch_size], higher is
      better; NaN counts as the worst (a failed evaluation never becomes the incumbent).

    The state is a pytree of fixed shapes and dtypes, a valid `lax.scan` carry.

    Multi-fidelity searchers (Hyperband, BOHB) also give `fidelity(state) -> int32[batch]`:
    after `ask`, the index into the objective's fidelities (e.g. `(12, 200)` epochs) at
    which each asked architecture is to be evaluated; `fidelities` is how many they use.
    Every other searcher is evaluated at the highest fidelity.
    """

    init: Callable[[jax.Array], Any]
    ask: Callable[[jax.Array, Any], tuple[Any, Any]]
    tell: Callable[[Any, Any, jax.Array], Any]
    batch_size: int = 1
    fidelity: Callable[[Any], jax.Array] | None = None
    fidelities: int = 1


def clean_fitness(fitness: jax.Array) -> jax.Array:
    """float32 fitness with NaN replaced by -inf (the worst)."""
    fitness = jnp.asarray(fitness, jnp.float32)
    return jnp.where(jnp.isnan(fitness), -jnp.inf, fitness)


def update_incumbent(
    best: Any, best_fitness: jax.Array, archs: Any, fitness: jax.Array
) -> tuple[Any, jax.Array]:
    """The better of the incumbent and the batch's best (fitness already cleaned)."""
    i = jnp.argmax(fitness)
    better = fitness[i] > best_fitness
    best = jax.tree.map(lambda a, o: jnp.where(better, a[i], o), archs, best)
    return best, jnp.maximum(fitness[i], best_fitness)
