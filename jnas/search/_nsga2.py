"""NSGA-II (Deb, Pratap, Agarwal & Meyarivan, IEEE TEC 2002): multi-objective evolution
towards the Pareto front (accuracy against latency, FLOPs or parameters).

A multi-objective searcher tells a fitness *vector* per architecture (`float32[B, M]`,
every objective maximised: pass -latency). Each generation asks `population` children
(binary tournaments on (front rank, crowding distance), one mutation each); `tell` merges
them with the parents and keeps the best `population` by non-dominated rank, then by
crowding distance within the last front admitted. The first ask is a random population.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jnas._checks import check_positive
from jnas.search._base import Searcher
from jnas.spaces import Space, require


class NSGA2State(NamedTuple):
    population: Any  # archs [P]
    fitness: jax.Array  # float32[P, M]; -inf where not yet evaluated
    key: jax.Array  # float32[P]: rank + 1 / (1 + crowding), lower is better
    num_told: jax.Array  # int32[]


def dominates(a: jax.Array, b: jax.Array) -> jax.Array:
    """bool[...]: a dominates b (no worse in every objective, better in one; maximised)."""
    return jnp.all(a >= b, -1) & jnp.any(a > b, -1)


def nondominated_ranks(fitness: jax.Array) -> jax.Array:
    """int32[K]: 0 for the non-dominated points, 1 for those only they dominate, ..."""
    k = fitness.shape[0]
    dom = dominates(fitness[:, None, :], fitness[None, :, :])  # [i, j]: i dominates j

    def peel(r: jax.Array, carry: tuple) -> tuple:
        ranks, left = carry
        front = left & ~jnp.any(dom & left[:, None], axis=0)
        return jnp.where(front, r, ranks), left & ~front

    ranks, _ = jax.lax.fori_loop(0, k, peel, (jnp.full(k, k, jnp.int32), jnp.ones(k, bool)))
    return ranks


def crowding_distance(fitness: jax.Array, ranks: jax.Array) -> jax.Array:
    """float32[K]: Deb et al.'s crowding distance within each point's front (inf at a
    front's extremes), each objective scaled by its range over the finite points."""
    same = ranks[:, None] == ranks[None, :]
    finite = jnp.all(jnp.isfinite(fitness), -1)
    f = jnp.where(finite[:, None], fitness, 0.0)
    span = jnp.where(finite[:, None], f, -jnp.inf).max(0) - jnp.where(
        finite[:, None], f, jnp.inf
    ).min(0)
    span = jnp.where(span > 0, span, 1.0)[None, :]
    above = jnp.where(same[:, :, None] & (f[None, :, :] > f[:, None, :]), f[None], jnp.inf)
    below = jnp.where(same[:, :, None] & (f[None, :, :] < f[:, None, :]), f[None], -jnp.inf)
    upper, lower = above.min(1), below.max(1)  # [K, M]: nearest neighbours in the front
    return jnp.sum((upper - lower) / span, -1).astype(jnp.float32)


def _order_key(fitness: jax.Array) -> jax.Array:
    ranks = nondominated_ranks(fitness)
    crowd = crowding_distance(fitness, ranks)
    return ranks + 1.0 / (1.0 + crowd)  # crowding inf -> the front's best


def nsga2(space: Space, population: int = 20, objectives: int = 2) -> Searcher:
    """NSGA-II over a space: `population` children per generation, fitness vectors of
    `objectives` values (all maximised). The searcher's `batch_size` is `population`."""
    require("nsga2", space, Space)
    check_positive("nsga2", population=population, objectives=objectives)

    def init(key: jax.Array) -> NSGA2State:
        pop = jax.vmap(space.sample)(jax.random.split(key, population))
        fit = jnp.full((population, objectives), -jnp.inf, jnp.float32)
        return NSGA2State(pop, fit, jnp.zeros(population, jnp.float32), jnp.zeros((), jnp.int32))

    def ask(key: jax.Array, state: NSGA2State) -> tuple[Any, NSGA2State]:
        k_pick, k_mut, k_new = jax.random.split(key, 3)
        pairs = jax.random.randint(k_pick, (population, 2), 0, population)
        first = state.key[pairs[:, 0]] <= state.key[pairs[:, 1]]
        parents = jnp.where(first, pairs[:, 0], pairs[:, 1])
        chosen = jax.tree.map(lambda a: a[parents], state.population)
        children = jax.vmap(space.mutate)(jax.random.split(k_mut, population), chosen)
        fresh = jax.vmap(space.sample)(jax.random.split(k_new, population))
        started = state.num_told > 0  # the first generation is the random population
        archs = jax.tree.map(lambda c, r: jnp.where(started, c, r), children, fresh)
        return archs, state

    def tell(state: NSGA2State, archs: Any, fitness: jax.Array) -> NSGA2State:
        fitness = jnp.asarray(fitness, jnp.float32)
        if fitness.shape != (population, objectives):
            raise ValueError(
                f"nsga2.tell: `fitness` must be [{population}, {objectives}]; got {fitness.shape}"
            )
        fitness = jnp.where(jnp.isnan(fitness), -jnp.inf, fitness)
        merged = jax.tree.map(lambda a, b: jnp.concatenate([a, b]), state.population, archs)
        fit = jnp.concatenate([state.fitness, fitness])
        keep = jnp.argsort(_order_key(fit))[:population]
        pop = jax.tree.map(lambda a: a[keep], merged)
        kept = fit[keep]
        return NSGA2State(pop, kept, _order_key(kept), state.num_told + population)

    return Searcher(init, ask, tell, population)
