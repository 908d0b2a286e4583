"""Pareto fronts of accuracy against cost (params, FLOPs, latency)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def pareto_front(error: np.ndarray, cost: np.ndarray) -> np.ndarray:
    """Indices of the points no other point dominates (both minimised), by rising cost.

    A point is dominated when another is no worse in both and better in one. Ties (same
    error and cost) keep the first index. NaN points are ignored.
    """
    error = np.asarray(error, np.float64)
    cost = np.asarray(cost, np.float64)
    if error.shape != cost.shape or error.ndim != 1:
        raise ValueError(
            f"pareto_front: `error` and `cost` must be 1-D of one length; got "
            f"{error.shape} and {cost.shape}"
        )
    ok = np.flatnonzero(~(np.isnan(error) | np.isnan(cost)))
    order = ok[np.lexsort((error[ok], cost[ok]))]  # by cost, then error
    front, best = [], np.inf
    for i in order:
        if error[i] < best:
            front.append(i)
            best = error[i]
    return np.asarray(front, np.int64)


def hypervolume(error: np.ndarray, cost: np.ndarray, reference: tuple[float, float]) -> float:
    """The area dominated by the points (both minimised) and bounded by `reference`
    (error, cost): the standard 2-D hypervolume, exact (a sweep over the Pareto front)."""
    error = np.asarray(error, np.float64)
    cost = np.asarray(cost, np.float64)
    front = pareto_front(error, cost)  # by rising cost, falling error
    e, c = error[front], cost[front]
    inside = (e < reference[0]) & (c < reference[1])
    e, c = e[inside], c[inside]
    if e.size == 0:
        return 0.0
    right = np.append(c[1:], reference[1])
    return float(np.sum((right - c) * (reference[0] - e)))


def simulate_pareto(
    searcher: Any,
    table: Any,
    objectives: Sequence[tuple[str, str, int | None, float]],
    *,
    key: Any,
    num_seeds: int,
    generations: int,
) -> np.ndarray:
    """Run a multi-objective searcher (`search.nsga2`) on a table for `generations` asks
    of its batch, `num_seeds` seeds vmapped in one program; fitness per row is
    `sign * column` for each (dataset, metric, epochs, sign) of `objectives` (sign -1
    for a cost). Returns int64[num_seeds, generations * batch]: every row evaluated."""
    import jax
    import jax.numpy as jnp

    if generations < 1 or num_seeds < 1:
        raise ValueError(f"generations and num_seeds must be >= 1; got {generations}, {num_seeds}")
    cols = jnp.stack([sign * table.column(d, m, e) for d, m, e, sign in objectives], -1)
    space = table.space

    def one(k: Any) -> Any:
        def gen(state: Any, kk: Any) -> tuple[Any, Any]:
            archs, state = searcher.ask(kk, state)
            rows = jax.vmap(space.index)(archs)
            return searcher.tell(state, archs, cols[rows]), rows

        k_init, k_run = jax.random.split(k)
        _, rows = jax.lax.scan(gen, searcher.init(k_init), jax.random.split(k_run, generations))
        return rows.reshape(-1)

    keys = jax.vmap(lambda i: jax.random.fold_in(key, i))(jnp.arange(num_seeds))
    return np.asarray(jax.jit(jax.vmap(one))(keys)).astype(np.int64)
