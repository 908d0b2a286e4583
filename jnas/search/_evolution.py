"""Regularized (aging) evolution (Real et al., AAAI 2019, "AmoebaNet")."""

from __future__ import annotations

from collections.abc import Callable
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


class EvolutionState(NamedTuple):
    population: Any  # archs with a leading axis of population_size (a ring buffer)
    fitness: jax.Array  # float32[population_size]; -inf where empty
    num_told: jax.Array  # int32[]: evaluations so far; the oldest member is at num_told % P
    best: Any
    best_fitness: jax.Array  # float32[]


def regularized_evolution(
    space: Space, population_size: int = 10, sample_size: int = 3
) -> Searcher:
    """Aging evolution: tournament selection, one mutation, the oldest member dies.

    The first `population_size` candidates are random (drawn by `init`); after that each candidate is a
    mutation of the fittest of `sample_size` members drawn uniformly (with replacement, as
    in the paper's code), and each told child replaces the oldest member. The defaults are
    the NAS-Bench-201 paper's (population 10, sample 3). One candidate per `ask`.
    """
    check_positive(
        "regularized_evolution", population_size=population_size, sample_size=sample_size
    )
    if sample_size > population_size:
        raise ValueError(
            f"regularized_evolution: `sample_size` must be <= population_size "
            f"({population_size}); got {sample_size}"
        )
    require("regularized_evolution", space, Space)

    def oldest(fit: jax.Array, n: jax.Array, f: jax.Array) -> jax.Array:
        return jnp.arange(population_size) == n % population_size

    return evolution(space, population_size, sample_size, oldest)


def evolution(
    space: Space,
    population_size: int,
    sample_size: int,
    replace: Callable[[jax.Array, jax.Array, jax.Array], jax.Array],
) -> Searcher:
    """Tournament-and-mutate evolution with a pluggable survivor rule.

    `replace(fitness, num_told, child_fitness) -> bool[population_size]` marks the slot a
    told child takes (all False: the child is dropped). Aging and worst-replacement
    evolution differ only in it.
    """

    def init(key: jax.Array) -> EvolutionState:
        return init_population(space, population_size, key)

    def ask(key: jax.Array, state: EvolutionState) -> tuple[Any, EvolutionState]:
        return select_and_mutate(space, key, state, sample_size, population_size), state

    def tell(state: EvolutionState, archs: Any, fitness: jax.Array) -> EvolutionState:
        fitness = clean_fitness(fitness)
        pop, fit, n = state.population, state.fitness, state.num_told
        for b in range(fitness.shape[0]):  # static: tell accepts any batch, in order
            hit = replace(fit, n, fitness[b])  # a select, not a scatter: cheap under vmap

            def put(p, a, b=b, hit=hit):
                return jnp.where(hit.reshape((-1,) + (1,) * (p.ndim - 1)), a[b][None], p)

            pop = jax.tree.map(put, pop, archs)
            fit = jnp.where(hit, fitness[b], fit)
            n = n + 1
        best, best_fitness = update_incumbent(state.best, state.best_fitness, archs, fitness)
        return EvolutionState(pop, fit, n, best, best_fitness)

    return Searcher(init, ask, tell, 1)


def init_population(space: Space, population_size: int, key: jax.Array) -> EvolutionState:
    """A population of random members, all unevaluated (fitness -inf)."""
    pop = jax.vmap(space.sample)(jax.random.split(key, population_size))
    return EvolutionState(
        pop,
        jnp.full((population_size,), -jnp.inf, jnp.float32),
        jnp.zeros((), jnp.int32),
        space.sample(key),
        jnp.full((), -jnp.inf, jnp.float32),
    )


def select_and_mutate(
    space: Space,
    key: jax.Array,
    state: EvolutionState,
    sample_size: int,
    num_members: int | jax.Array,
) -> Any:
    """A tournament among `sample_size` of the first `num_members` members, one mutation
    of its winner; the first `population_size` candidates are init's random members (slot
    n is unwritten when candidate n is asked), so no sample is drawn per step."""
    population_size = state.fitness.shape[0]
    pick_key, mutate_key = jax.random.split(key)
    members = jax.random.randint(pick_key, (sample_size,), 0, num_members)
    parent_i = members[jnp.argmax(state.fitness[members])]
    parent = jax.tree.map(lambda x: x[parent_i], state.population)
    child = space.mutate(mutate_key, parent)
    slot = jnp.minimum(state.num_told, population_size - 1)
    random_arch = jax.tree.map(lambda x: x[slot], state.population)
    warm = state.num_told >= population_size
    arch = jax.tree.map(lambda c, r: jnp.where(warm, c, r), child, random_arch)
    return jax.tree.map(lambda x: x[None], arch)
