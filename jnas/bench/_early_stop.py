"""Early stopping by learning-curve extrapolation inside the simulated protocol (Domhan,
Springenberg & Hutter, IJCAI 2015): a run is checked at a few epochs, and stopped when the
probability that its final value beats the incumbent falls below a threshold; it is then
charged only the epochs it ran, and the searcher is told the forecast final value (as
Domhan et al. return the prediction to the optimiser). A stopped run never becomes the
incumbent.

A forecast depends only on the run's own curve up to the check epoch, never on the search,
so `curve_stopping` fits every row's forecast at every check once (one `vmap`ped program per
check) and the protocol only compares them with each seed's incumbent: 500 seeds cost what
one does.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jnas.bench._simulate import Objective, Stops, objective
from jnas.bench._table import Table
from jnas.predictors import CurveFamily, extrapolate_curve


def curve_stopping(
    table: Table,
    *,
    dataset: str,
    metric: str,
    epochs: int,
    check_at: Sequence[int],
    threshold: float = 0.05,
    minimize: bool = False,
    cost: str = "train_time_s",
    families: Sequence[CurveFamily] | None = None,
) -> Objective:
    """`objective(table, dataset=, metric=, epochs=, minimize=, cost=)` with every run
    stopped early by learning-curve extrapolation: checked at the epochs `check_at` (each
    in [2, epochs)), stopped when P(its value at `epochs` beats the incumbent) < `threshold`
    (Domhan et al.: 0.05). The table must hold `(dataset, metric, e)` and the cumulative
    `(dataset, cost, e)` for every epoch e up to `epochs` (NAS-Bench-NLP's curves do).
    `families`: the curve families of `jnas.predictors.extrapolate_curve` (default: all).
    """
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"curve_stopping: `threshold` must be in (0, 1); got {threshold!r}")
    if not isinstance(epochs, int) or epochs < 3:
        raise ValueError(f"curve_stopping: `epochs` must be an int >= 3; got {epochs!r}")
    checks = sorted(set(int(c) for c in check_at))
    if not checks or any(not 2 <= c < epochs for c in checks):
        raise ValueError(
            f"curve_stopping: `check_at` must be epochs in [2, epochs={epochs}); got "
            f"{list(check_at)!r}"
        )
    obj = objective(
        table, dataset=dataset, metric=metric, epochs=epochs, minimize=minimize, cost=cost
    )
    horizon = epochs
    sign = -1.0 if minimize else 1.0
    curves = np.stack(
        [np.asarray(table.column(dataset, metric, e), np.float32) for e in range(1, horizon + 1)],
        1,
    )  # [rows, horizon]
    spent = np.stack([np.asarray(table.column(dataset, cost, c), np.float32) for c in checks])
    if np.any(np.nan_to_num(spent - np.asarray(obj.cost_s)[None], nan=0.0) > 1e-3):
        raise ValueError(
            f"curve_stopping: `{cost}` must be cumulative (the cost to a check epoch at most "
            "the whole run's)"
        )
    epoch = np.arange(1, horizon + 1)

    @jax.jit
    def fit(y, observed):
        return jax.vmap(
            lambda y, o: extrapolate_curve(
                y, o, horizon, families=families, increasing=not minimize
            )
        )(y, observed)

    forecasts = []
    for c in checks:
        observed = (epoch[None] <= c) & np.isfinite(curves)
        fc = fit(jnp.asarray(np.nan_to_num(curves)), jnp.asarray(observed))
        forecasts.append(fc._replace(mean=sign * fc.mean, means=sign * fc.means))
    stops = Stops(
        jnp.asarray(checks, jnp.int32),
        jnp.asarray(spent),
        jax.tree.map(lambda *a: jnp.stack(a), *forecasts),
        jnp.float32(threshold),
    )
    return dataclasses.replace(
        obj,
        stops=stops,
        description=f"{obj.description}, stopped early at epochs {checks} "
        f"(P(beat the incumbent) < {threshold})",
    )
