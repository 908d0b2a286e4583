"""Pareto fronts of accuracy against cost (params, FLOPs, latency)."""

from __future__ import annotations

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
