"""Learning-curve extrapolation with parametric curve families (Domhan, Springenberg & Hutter,
IJCAI 2015), in JAX: one curve per call, callers `vmap` over many.

A curve `y[t]` (t = 1..T epochs; a validation *loss*, lower is better; pass `increasing=True`
for an accuracy) is observed where `observed[t]` is true. Every family is fitted to the observed
points by Levenberg-Marquardt (fixed iterations, several starts, the best kept), on
unconstrained parameters mapped so that each family decreases towards an asymptote. Each fit
gives a Gaussian forecast of the value at `horizon`: its prediction, with variance
`s2 * (1 + g (J'J)^-1 g')` (residual variance `s2` and the Laplace / Gauss-Newton uncertainty
of the parameters, `g` the gradient of the prediction). The families are combined with Akaike
weights under the small-sample correction (AICc: `exp(-AICc / 2)`, so a family needs at least
two more observed points than it has parameters); a family whose forecast is not finite, or lies outside
`[0, worst observed value]` (Domhan et al.'s prior that a curve improves and stays in range),
gets weight 0. Domhan et al. sample the combined model by MCMC; the Laplace mixture is
deterministic and costs one small linear solve per family, which is what lets a search
extrapolate hundreds of curves per step.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import jax.scipy.stats as jstats

_EPS = 1e-6


class CurveFamily(NamedTuple):
    """A parametric curve on unconstrained parameters `u`.

    `f(u, t)` gives the curve at epochs `t`; `init(t, y, w)` gives starting points
    `float[R, P]` from the observed curve (weights `w`: 1 observed, 0 not).
    """

    name: str
    f: Callable[[jax.Array, jax.Array], jax.Array]
    init: Callable[[jax.Array, jax.Array, jax.Array], jax.Array]


class CurveForecast(NamedTuple):
    """A predictive distribution of a curve's value at the horizon: a mixture of Gaussians,
    one per family. For a batch of curves every field has a leading axis."""

    mean: jax.Array  # float[]: the mixture's mean
    std: jax.Array  # float[]: the mixture's standard deviation
    means: jax.Array  # float[F]: each family's prediction
    stds: jax.Array  # float[F]
    weights: jax.Array  # float[F]: posterior weights (sum 1)


def _pos(u):
    return jax.nn.softplus(u) + _EPS


def _unpos(x):
    x = jnp.maximum(x - _EPS, 1e-4)
    return x + jnp.log(-jnp.expm1(-x))  # inverse softplus


def _observed_ends(t, y, w):
    """(first observed value, last observed value, their epochs) of a masked curve."""
    idx = jnp.arange(y.shape[0])
    first_i = jnp.argmax(w > 0)
    last_i = jnp.max(jnp.where(w > 0, idx, 0))
    return y[first_i], y[last_i], t[first_i], t[last_i]


def _asymptote_starts(y0, yl):
    """Starting asymptotes below the last observed value, as fractions of the drop so far."""
    drop = jnp.maximum(y0 - yl, 1e-3 * jnp.maximum(jnp.abs(yl), 1.0))
    return yl - drop * jnp.asarray([0.1, 0.5, 1.5])


def _pow3() -> CurveFamily:
    """c + a t^-alpha (Domhan et al.'s pow3)."""

    def f(u, t):
        return u[0] + _pos(u[1]) * t ** (-_pos(u[2]))

    def init(t, y, w):
        y0, yl, t0, tl = _observed_ends(t, y, w)
        cs = _asymptote_starts(y0, yl)
        alpha = jnp.log(jnp.maximum((y0 - cs) / (yl - cs), 1.0 + 1e-3)) / jnp.log(
            jnp.maximum(tl / t0, 1.0 + 1e-3)
        )
        a = (y0 - cs) * t0**alpha
        return jnp.stack([cs, _unpos(a), _unpos(alpha)], -1)

    return CurveFamily("pow3", f, init)


def _pow4() -> CurveFamily:
    """c + (a t + b)^-alpha (pow4)."""

    def f(u, t):
        return u[0] + (_pos(u[1]) * t + _pos(u[2])) ** (-_pos(u[3]))

    def init(t, y, w):
        y0, yl, t0, _tl = _observed_ends(t, y, w)
        cs = _asymptote_starts(y0, yl)
        alpha = jnp.full_like(cs, 0.5)
        # (a t0 + b)^-alpha = y0 - c with b = a: a = (y0 - c)^(-1/alpha) / (t0 + 1)
        a = jnp.maximum(y0 - cs, 1e-3) ** (-1.0 / alpha) / (t0 + 1.0)
        return jnp.stack([cs, _unpos(a), _unpos(a), _unpos(alpha)], -1)

    return CurveFamily("pow4", f, init)


def _exp3() -> CurveFamily:
    """c + a exp(-b t) (exp3)."""

    def f(u, t):
        return u[0] + _pos(u[1]) * jnp.exp(-_pos(u[2]) * t)

    def init(t, y, w):
        y0, yl, t0, tl = _observed_ends(t, y, w)
        cs = _asymptote_starts(y0, yl)
        b = jnp.log(jnp.maximum((y0 - cs) / (yl - cs), 1.0 + 1e-3)) / jnp.maximum(tl - t0, 1.0)
        a = (y0 - cs) * jnp.exp(b * t0)
        return jnp.stack([cs, _unpos(a), _unpos(b)], -1)

    return CurveFamily("exp3", f, init)


def _log_power() -> CurveFamily:
    """c + a / (1 + (t / e^b)^alpha) (Domhan et al.'s log power, shifted to an asymptote)."""

    def f(u, t):
        return u[0] + _pos(u[1]) / (1.0 + (t / jnp.exp(u[2])) ** _pos(u[3]))

    def init(t, y, w):
        y0, yl, t0, _tl = _observed_ends(t, y, w)
        cs = _asymptote_starts(y0, yl)
        a = 2.0 * (y0 - cs)
        return jnp.stack([cs, _unpos(a), jnp.log(t0) * jnp.ones_like(cs), _unpos(0.5 + 0 * cs)], -1)

    return CurveFamily("log_power", f, init)


def _weibull() -> CurveFamily:
    """c + a exp(-(b t)^delta) (Weibull; Janoschek's curve is the same family)."""

    def f(u, t):
        return u[0] + _pos(u[1]) * jnp.exp(-((_pos(u[2]) * t) ** _pos(u[3])))

    def init(t, y, w):
        y0, yl, t0, tl = _observed_ends(t, y, w)
        cs = _asymptote_starts(y0, yl)
        delta = jnp.full_like(cs, 0.5)
        b = jnp.full_like(cs, 1.0) / jnp.maximum(tl, 1.0)
        a = (y0 - cs) * jnp.exp((b * t0) ** delta)
        return jnp.stack([cs, _unpos(a), _unpos(b), _unpos(delta)], -1)

    return CurveFamily("weibull", f, init)


def _mmf() -> CurveFamily:
    """c + a / (1 + (b t)^delta) (Morgan-Mercer-Flodin)."""

    def f(u, t):
        return u[0] + _pos(u[1]) / (1.0 + (_pos(u[2]) * t) ** _pos(u[3]))

    def init(t, y, w):
        y0, yl, t0, _tl = _observed_ends(t, y, w)
        cs = _asymptote_starts(y0, yl)
        b = jnp.ones_like(cs) / jnp.maximum(t0, 1.0)
        delta = jnp.ones_like(cs)
        a = 2.0 * (y0 - cs)
        return jnp.stack([cs, _unpos(a), _unpos(b), _unpos(delta)], -1)

    return CurveFamily("mmf", f, init)


def _ilog2() -> CurveFamily:
    """c + a / log(t + 1) (ilog2)."""

    def f(u, t):
        return u[0] + _pos(u[1]) / jnp.log(t + 1.0)

    def init(t, y, w):
        y0, yl, t0, _tl = _observed_ends(t, y, w)
        cs = _asymptote_starts(y0, yl)
        a = (y0 - cs) * jnp.log(t0 + 1.0)
        return jnp.stack([cs, _unpos(a)], -1)

    return CurveFamily("ilog2", f, init)


def _vapor_pressure() -> CurveFamily:
    """exp(a + b / t + c log t) (vapor pressure); started from its log-linear least squares.
    It models positive curves (a loss); on a mirrored accuracy it fits badly and its Akaike weight
    vanishes."""

    def f(u, t):
        return jnp.exp(u[0] + u[1] / t + u[2] * jnp.log(t))

    def init(t, y, w):
        x = jnp.stack([jnp.ones_like(t), 1.0 / t, jnp.log(t)], -1) * w[:, None]
        z = jnp.log(jnp.maximum(y, 1e-6)) * w
        u = jnp.linalg.solve(x.T @ x + 1e-6 * jnp.eye(3), x.T @ z)
        return jnp.stack([u, u * jnp.asarray([1.0, 0.5, 0.5])])

    return CurveFamily("vapor_pressure", f, init)


FAMILIES: dict[str, Callable[[], CurveFamily]] = {
    "pow3": _pow3,
    "pow4": _pow4,
    "exp3": _exp3,
    "log_power": _log_power,
    "weibull": _weibull,
    "mmf": _mmf,
    "ilog2": _ilog2,
    "vapor_pressure": _vapor_pressure,
}
DEFAULT_FAMILIES = tuple(FAMILIES)


def curve_families(names: Sequence[str] = DEFAULT_FAMILIES) -> tuple[CurveFamily, ...]:
    """The named families (default: all of `FAMILIES`); an unknown name is an error."""
    unknown = [n for n in names if n not in FAMILIES]
    if unknown or not names:
        raise ValueError(
            f"curve_families: `names` must be a non-empty subset of {sorted(FAMILIES)}; "
            f"got {list(names)}"
        )
    return tuple(FAMILIES[n]() for n in names)


def _levenberg_marquardt(residual, u0, iterations):
    """Minimise |residual(u)|^2 from u0 by Levenberg-Marquardt with a fixed iteration count."""

    def loss(u):
        r = residual(u)
        return jnp.sum(r * r)

    def step(carry, _):
        u, lam, cost = carry
        r = residual(u)
        jac = jax.jacfwd(residual)(u)
        jtj = jac.T @ jac
        g = jac.T @ r
        damp = lam * (jnp.diag(jnp.diag(jtj)) + 1e-6 * jnp.eye(u.shape[0]))
        du = -jnp.linalg.solve(jtj + damp, g)
        new = u + du
        new_cost = loss(new)
        ok = jnp.isfinite(new_cost) & (new_cost < cost)
        u = jnp.where(ok, new, u)
        cost = jnp.where(ok, new_cost, cost)
        lam = jnp.clip(jnp.where(ok, lam * 0.3, lam * 4.0), 1e-9, 1e9)
        return (u, lam, cost), None

    c0 = loss(u0)
    c0 = jnp.where(jnp.isfinite(c0), c0, jnp.inf)
    (u, _, cost), _ = jax.lax.scan(step, (u0, jnp.asarray(1e-2, u0.dtype), c0), None, iterations)
    return u, cost


def extrapolate_curve(
    y: jax.Array,
    observed: jax.Array,
    horizon: int | jax.Array,
    *,
    families: Sequence[CurveFamily] | None = None,
    iterations: int = 60,
    increasing: bool = False,
) -> CurveForecast:
    """Forecast the value of one learning curve at epoch `horizon` (1-based) from its
    observed points (Domhan et al. 2015's families; see the module docstring).

    y: float[T], the curve at epochs 1..T (unobserved entries are ignored, may be NaN).
    observed: bool[T], which epochs are known (a family needs two points more than its parameters:
    at least 4 for ilog2, 6 for the 4-parameter families; with too few for every family the
    forecast is NaN). For many curves, `jax.vmap` this function.
    """
    families = curve_families() if families is None else tuple(families)
    if not families:
        raise ValueError("extrapolate_curve: `families` must not be empty")
    if iterations < 1:
        raise ValueError(f"extrapolate_curve: `iterations` must be >= 1, got {iterations}")
    if isinstance(horizon, int) and horizon < 1:
        raise ValueError(f"extrapolate_curve: `horizon` must be an epoch >= 1, got {horizon}")
    y = jnp.asarray(y)
    if not jnp.issubdtype(y.dtype, jnp.floating):
        y = y.astype(jnp.float32)
    if y.ndim != 1 or jnp.shape(observed) != y.shape:
        raise ValueError(
            "extrapolate_curve: `y` and `observed` must be 1-D of one length (vmap for many); "
            f"got {y.shape} and {jnp.shape(observed)}"
        )
    sign = -1.0 if increasing else 1.0
    w = jnp.asarray(observed, y.dtype)
    ys = jnp.where(w > 0, sign * y, 0.0)
    t = jnp.arange(1, y.shape[0] + 1, dtype=y.dtype)
    th = jnp.asarray(horizon, y.dtype)
    n = jnp.sum(w)
    top = jnp.max(jnp.where(w > 0, ys, -jnp.inf))

    means, variances, ics = [], [], []
    for fam in families:

        def residual(u, fam=fam):
            return jnp.where(w > 0, fam.f(u, t) - ys, 0.0)

        starts = fam.init(t, ys, w)
        us, costs = jax.vmap(lambda u0: _levenberg_marquardt(residual, u0, iterations))(starts)
        costs = jnp.where(jnp.isfinite(costs), costs, jnp.inf)
        best = jnp.argmin(costs)
        u, sse = us[best], costs[best]
        p = u.shape[0]
        s2 = sse / jnp.maximum(n - p, 1.0) + 1e-10
        jac = jax.jacfwd(residual)(u)
        g = jax.grad(lambda u, fam=fam: fam.f(u, th[None])[0])(u)
        cov = jnp.linalg.pinv(jac.T @ jac + 1e-8 * jnp.eye(p))
        pred = fam.f(u, th[None])[0]
        var = s2 * (1.0 + g @ cov @ g)
        dof = n - p - 1.0
        ic = (
            n * jnp.log(sse / jnp.maximum(n, 1.0) + 1e-10)
            + 2 * p
            + 2 * p * (p + 1) / jnp.maximum(dof, 1e-9)
        )
        ic = jnp.where(dof > 0, ic, jnp.inf)
        plausible = jnp.isfinite(pred) & jnp.isfinite(var) & (pred <= top + 1e-6)
        plausible &= (pred >= 0.0) if not increasing else True
        means.append(pred)
        variances.append(var)
        ics.append(jnp.where(plausible, ic, jnp.inf))

    means_a = jnp.stack(means)
    var_a = jnp.stack(variances)
    ic_a = jnp.stack(ics)
    logw = -0.5 * (ic_a - jnp.min(ic_a))
    weights = jnp.where(
        jnp.isfinite(ic_a), jax.nn.softmax(jnp.where(jnp.isfinite(logw), logw, -jnp.inf)), 0.0
    )
    enough = (n >= 2) & jnp.any(jnp.isfinite(ic_a))
    safe_means = jnp.where(weights > 0, means_a, 0.0)
    safe_var = jnp.where(weights > 0, var_a, 0.0)
    mean = jnp.sum(weights * safe_means)
    second = jnp.sum(weights * (safe_var + safe_means**2))
    std = jnp.sqrt(jnp.maximum(second - mean**2, 0.0))
    nan = jnp.asarray(jnp.nan, y.dtype)
    return CurveForecast(
        mean=jnp.where(enough, sign * mean, nan),
        std=jnp.where(enough, std, nan),
        means=sign * means_a,
        stds=jnp.sqrt(var_a),
        weights=jnp.where(enough, weights, nan),
    )


def probability_better(
    forecast: CurveForecast, threshold: jax.Array | float, *, increasing: bool = False
) -> jax.Array:
    """P(value at the horizon beats `threshold`) under the forecast's mixture: below it for a
    loss, above it for an accuracy (`increasing=True`). NaN forecasts give NaN."""
    z = (jnp.asarray(threshold)[..., None] - forecast.means) / jnp.maximum(forecast.stds, 1e-12)
    cdf = jstats.norm.cdf(z)
    p = cdf if not increasing else 1.0 - cdf
    w = jnp.where(jnp.isnan(forecast.weights), 0.0, forecast.weights)
    out = jnp.sum(w * jnp.where(w > 0, p, 0.0), -1)
    return jnp.where(jnp.isnan(forecast.mean), jnp.nan, out)
