"""Tournament evolution without aging (Liu et al., "Hierarchical Representations for
Efficient Architecture Search", ICLR 2018; Goldberg & Deb 1991)."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from jnas.search._base import (
    Searcher,
    check_positive,
    clean_fitness,
    require,
    update_incumbent,
)
from jnas.search._evolution import EvolutionState, init_population, select_and_mutate


def tournament_evolution(space: Any, population_size: int = 50,
                         tournament_fraction: float = 0.05) -> Searcher:
    """Tournament selection of the fittest of a random `tournament_fraction` of the
    population, one mutation, no aging.

    HNAS keeps every evaluated model in the population; with a fixed-shape state this
    keeps the best `population_size` (a child replaces the worst member when it is
    better), which is the same while fewer than `population_size` models were told.
    The first `population_size` candidates are random. One candidate per `ask`.
    """
    check_positive("tournament_evolution", population_size=population_size)
    if not 0.0 < tournament_fraction <= 1.0:
        raise ValueError("tournament_evolution: `tournament_fraction` must be in (0, 1]; got "
                         f"{tournament_fraction!r}")
    require("tournament_evolution", space, "sample", "mutate")
    sample_size = max(1, round(tournament_fraction * population_size))

    def init(key: jax.Array) -> EvolutionState:
        return init_population(space, population_size, key)

    def ask(key: jax.Array, state: EvolutionState) -> tuple[Any, EvolutionState]:
        return select_and_mutate(space, key, state, sample_size, population_size), state

    def tell(state: EvolutionState, archs: Any, fitness: jax.Array) -> EvolutionState:
        fitness = clean_fitness(fitness)
        pop, fit, n = state.population, state.fitness, state.num_told
        slots = jnp.arange(population_size)
        for b in range(fitness.shape[0]):
            worst = jnp.argmin(fit)
            target = jnp.where(n < population_size, n % population_size, worst)
            hit = (slots == target) & ((n < population_size) | (fitness[b] > fit[worst]))

            def put(p, a, b=b, hit=hit):
                return jnp.where(hit.reshape((-1,) + (1,) * (p.ndim - 1)), a[b][None], p)

            pop = jax.tree.map(put, pop, archs)
            fit = jnp.where(hit, fitness[b], fit)
            n = n + 1
        best, best_fitness = update_incumbent(state.best, state.best_fitness, archs, fitness)
        return EvolutionState(pop, fit, n, best, best_fitness)

    return Searcher(init, ask, tell, 1)
