"""Tournament evolution without aging (Liu et al., "Hierarchical Representations for
Efficient Architecture Search", ICLR 2018; Goldberg & Deb 1991)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jnas._checks import check_positive
from jnas.search._base import Searcher
from jnas.search._evolution import evolution
from jnas.spaces import Space, require


def tournament_evolution(
    space: Space, population_size: int = 50, tournament_fraction: float = 0.05
) -> Searcher:
    """Tournament selection of the fittest of a random `tournament_fraction` of the
    population, one mutation, no aging.

    HNAS keeps every evaluated model in the population; with a fixed-shape state this
    keeps the best `population_size` (a child replaces the worst member when it is
    better), which is the same while fewer than `population_size` models were told.
    The first `population_size` candidates are random. One candidate per `ask`.
    """
    check_positive("tournament_evolution", population_size=population_size)
    if not 0.0 < tournament_fraction <= 1.0:
        raise ValueError(
            "tournament_evolution: `tournament_fraction` must be in (0, 1]; got "
            f"{tournament_fraction!r}"
        )
    require("tournament_evolution", space, Space)
    sample_size = max(1, round(tournament_fraction * population_size))

    def worst(fit: jax.Array, n: jax.Array, f: jax.Array) -> jax.Array:
        filling = n < population_size
        target = jnp.where(filling, n % population_size, jnp.argmin(fit))
        return (jnp.arange(population_size) == target) & (filling | (f > jnp.min(fit)))

    return evolution(space, population_size, sample_size, worst)
