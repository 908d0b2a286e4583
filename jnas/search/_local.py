"""Local search: best-improvement hill climbing over `space.neighbors` with random
restarts (White, Nolen & Savani, "Local search is state of the art for NAS benchmarks",
2020)."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jnas.search._base import Searcher, clean_fitness
from jnas.spaces import Space, require


class LocalSearchState(NamedTuple):
    current: Any  # the point whose neighbourhood is being swept
    current_fitness: jax.Array  # float32[]
    restart: jax.Array  # bool[]: the next candidate is a fresh random sample
    pos: jax.Array  # int32[]: next neighbour index to evaluate
    best_neighbor: Any
    best_neighbor_fitness: jax.Array  # float32[]
    best: Any  # the incumbent
    best_fitness: jax.Array  # float32[]


def local_search(space: Space) -> Searcher:
    """Evaluate every valid neighbour of the current point (one per `ask`, in neighbour
    order); move to the best if it improves, else restart from a random sample.

    One candidate per `ask`. Works with any space that has `sample` and `neighbors`.
    """
    require("local_search", space, Space)

    def init(key: jax.Array) -> LocalSearchState:
        arch = space.sample(key)
        ninf = jnp.full((), -jnp.inf, jnp.float32)
        return LocalSearchState(
            arch, ninf, jnp.ones((), bool), jnp.zeros((), jnp.int32), arch, ninf, arch, ninf
        )

    def _next_valid(mask: jax.Array, pos: jax.Array) -> tuple[jax.Array, jax.Array]:
        """First valid neighbour index >= pos, and whether there is one."""
        ok = mask & (jnp.arange(mask.shape[0]) >= pos)
        return jnp.argmax(ok).astype(jnp.int32), jnp.any(ok)

    def ask(key: jax.Array, state: LocalSearchState) -> tuple[Any, LocalSearchState]:
        batch, mask = space.neighbors(state.current)
        i, _ = _next_valid(mask, state.pos)
        neighbor = jax.tree.map(lambda x: x[i], batch)
        fresh = space.sample(key)
        arch = jax.tree.map(lambda r, n: jnp.where(state.restart, r, n), fresh, neighbor)
        return jax.tree.map(lambda x: x[None], arch), state._replace(pos=i)

    def tell(state: LocalSearchState, archs: Any, fitness: jax.Array) -> LocalSearchState:
        fitness = clean_fitness(fitness)
        f = fitness[0]
        arch = jax.tree.map(lambda x: x[0], archs)

        def pick(cond, a, b):
            return jax.tree.map(lambda x, y: jnp.where(cond, x, y), a, b)

        ninf = jnp.full((), -jnp.inf, jnp.float32)
        # a restart: the sample becomes the current point, its sweep starts
        restarted = LocalSearchState(
            arch,
            f,
            jnp.zeros((), bool),
            jnp.zeros((), jnp.int32),
            arch,
            ninf,
            state.best,
            state.best_fitness,
        )
        # a neighbour: remember the best of the sweep; at its end, move or restart
        improves = f > state.best_neighbor_fitness
        best_nb = pick(improves, arch, state.best_neighbor)
        best_nb_f = jnp.where(improves, f, state.best_neighbor_fitness)
        _, mask = space.neighbors(state.current)
        _, more = _next_valid(mask, state.pos + 1)
        move = ~more & (best_nb_f > state.current_fitness)
        stuck = ~more & ~move
        swept = LocalSearchState(
            pick(move, best_nb, state.current),
            jnp.where(move, best_nb_f, state.current_fitness),
            stuck,
            jnp.where(more, state.pos + 1, 0).astype(jnp.int32),
            pick(more, best_nb, state.current),
            jnp.where(more, best_nb_f, ninf),
            state.best,
            state.best_fitness,
        )
        new = pick(state.restart, restarted, swept)
        better = f > state.best_fitness
        return new._replace(
            best=pick(better, arch, state.best), best_fitness=jnp.maximum(f, state.best_fitness)
        )

    return Searcher(init, ask, tell, 1)
