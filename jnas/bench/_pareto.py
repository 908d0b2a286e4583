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


def pareto_protocol(
    searcher: Any,
    table: Any,
    *,
    searched: str,
    reported: str,
    cost: str = "flops_M",
    key: Any,
    num_seeds: int,
    generations: int,
) -> dict:
    """A multi-objective searcher against random search on a table, judged by hypervolume.

    Each seed searches by (the 200-epoch validation accuracy on `searched`, -`cost`) for
    `generations` asks of the searcher's batch; the cells it evaluated give a front in
    (test error %, cost) on `reported`, whose hypervolume is divided by that of the table's
    own front (every cell: for NB201's FLOPs, the published front's, `pareto_fronts.json`).
    The reference point is the space's median error and largest cost, so the accurate half
    of the front counts. Random search draws as many cells per seed. Returns the ratios per
    seed and their mean / std for both, Welch's t of the searcher against random search,
    and the mean number of distinct cells the searcher evaluated.
    """
    import jax

    from jnas.bench._report import welch_test

    error = 100.0 - np.asarray(table.column(reported, "test_acc", 200), np.float64)
    costs = np.asarray(table.column(reported, cost, None), np.float64)
    reference = (float(np.nanmedian(error)), float(np.nanmax(costs)))
    whole = hypervolume(error, costs, reference)
    objectives = [(searched, "valid_acc", 200, 1.0), (reported, cost, None, -1.0)]
    k_search, k_random = jax.random.split(key)
    rows = simulate_pareto(
        searcher, table, objectives, key=k_search, num_seeds=num_seeds, generations=generations
    )
    rand = np.asarray(jax.random.randint(k_random, rows.shape, 0, table.num_rows))
    ratios = {
        name: np.asarray([hypervolume(error[r], costs[r], reference) / whole for r in rs])
        for name, rs in (("searcher", rows), ("random search", rand))
    }
    t, p = welch_test(ratios["searcher"], ratios["random search"])
    return {
        "reference_point": list(reference),
        "table_front_hv": whole,
        "evaluations": int(rows.shape[1]),
        "hv_ratio": {
            name: {
                "mean": float(v.mean()),
                "std": float(v.std()),
                "values": [round(float(x), 6) for x in v],
            }
            for name, v in ratios.items()
        },
        "welch_vs_random_search": {"t": t, "p": p},
        "distinct_cells": float(np.mean([len(set(r.tolist())) for r in rows])),
    }
