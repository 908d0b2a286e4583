"""Early stopping of training runs by learning-curve extrapolation (Domhan et al. 2015: stop a
run whose probability of beating the incumbent at the final epoch is below a threshold)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jnas.predictors._curves import (
    CurveFamily,
    CurveForecast,
    extrapolate_curve,
    probability_better,
)


@dataclasses.dataclass(frozen=True)
class CurveStopper:
    """`stop(curve, incumbent) -> (stop?, forecast)`; built by `curve_stopper`."""

    horizon: int
    threshold: float
    checks: frozenset[int]
    increasing: bool
    forecast: Callable[[Any, Any], CurveForecast]

    def __call__(
        self, curve: Sequence[float], incumbent: float
    ) -> tuple[bool, CurveForecast | None]:
        k = len(curve)
        if k not in self.checks or not np.isfinite(incumbent):
            return False, None
        y = np.zeros(self.horizon, np.float32)
        y[:k] = np.asarray(curve, np.float32)
        observed = (np.arange(self.horizon) < k) & np.isfinite(y)
        fc = self.forecast(jnp.asarray(np.nan_to_num(y)), jnp.asarray(observed))
        p = float(probability_better(fc, incumbent, increasing=self.increasing))
        return bool(np.isfinite(p) and p < self.threshold), fc


def curve_stopper(
    horizon: int,
    *,
    threshold: float = 0.05,
    check_at: Sequence[int] | None = None,
    increasing: bool = False,
    families: Sequence[CurveFamily] | None = None,
) -> CurveStopper:
    """A host-side rule `stop(curve, incumbent) -> (stop?, forecast)` for a run observed for
    `len(curve)` of `horizon` epochs: stop when P(final value beats `incumbent`) <
    `threshold` (Domhan et al.: 0.05). It is checked only at the epochs in `check_at` (default:
    every epoch from 4 on) and never without an incumbent (NaN / inf) or at the horizon.
    `increasing`: the curve is an accuracy (higher is better), else a loss. The forecast is
    jitted once for curves padded to `horizon` (one compiled program for every epoch)."""
    if horizon < 2:
        raise ValueError(f"curve_stopper: `horizon` must be >= 2 epochs, got {horizon}")
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"curve_stopper: `threshold` must be in (0, 1), got {threshold}")
    checks = set(range(4, horizon)) if check_at is None else set(check_at)
    bad = [c for c in checks if not 2 <= c < horizon]
    if bad:
        raise ValueError(
            f"curve_stopper: `check_at` epochs must lie in [2, horizon={horizon}); got {bad}"
        )

    @jax.jit
    def forecast(y, observed):
        return extrapolate_curve(y, observed, horizon, families=families, increasing=increasing)

    return CurveStopper(horizon, threshold, frozenset(checks), increasing, forecast)
