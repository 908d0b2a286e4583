"""Random search (Bergstra & Bengio 2012; the NAS baseline of Li & Talwalkar 2019)."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jnas._checks import check_positive
from jnas.search._base import (
    Searcher,
    clean_fitness,
    update_incumbent,
)
from jnas.spaces import Space, require


class RandomSearchState(NamedTuple):
    best: Any  # the incumbent architecture
    best_fitness: jax.Array  # float32[]
    num_told: jax.Array  # int32[]


def random_search(space: Space, batch_size: int = 1) -> Searcher:
    """Uniform samples from the space; the state keeps the best one seen.

    >>> import jax
    >>> from jnas.spaces import NB201
    >>> s = random_search(NB201())
    >>> archs, state = s.ask(jax.random.key(1), s.init(jax.random.key(0)))
    >>> archs.ops.shape
    (1, 6)
    """
    check_positive("random_search", batch_size=batch_size)
    require("random_search", space, Space)

    def init(key: jax.Array) -> RandomSearchState:
        return RandomSearchState(
            space.sample(key), jnp.full((), -jnp.inf, jnp.float32), jnp.zeros((), jnp.int32)
        )

    def ask(key: jax.Array, state: RandomSearchState) -> tuple[Any, RandomSearchState]:
        return jax.vmap(space.sample)(jax.random.split(key, batch_size)), state

    def tell(state: RandomSearchState, archs: Any, fitness: jax.Array) -> RandomSearchState:
        fitness = clean_fitness(fitness)
        best, best_fitness = update_incumbent(state.best, state.best_fitness, archs, fitness)
        return RandomSearchState(best, best_fitness, state.num_told + fitness.shape[0])

    return Searcher(init, ask, tell, batch_size)
