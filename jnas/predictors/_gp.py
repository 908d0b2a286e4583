"""An exact Gaussian process on architecture encodings, in JAX, with masked data.

Data live in fixed-size buffers with a validity mask, so fitting and predicting are
jittable inside a search's `lax.scan`. The kernel is `s2 * exp(-d / lengthscale)` of a
distance `d`: by default the Hamming distance between binary or one-hot encodings (for the
BANANAS path encoding or the one-hot cell; `d` is also the squared Euclidean distance
there, so this is the RBF kernel on those vectors), or one minus the normalised
Weisfeiler-Lehman kernel of two cells (`jnas.predictors.wl_distance`). Hyper-parameters (lengthscale, noise) maximise the marginal
likelihood over a log grid (robust and shape-static); the signal variance is the data's.

Mixed inputs (`num_features=F`): the last F columns of the rows are continuous features
(standardised zero-cost proxy scores, White et al. 2021's "proxies as features") and the
kernel is the product `exp(-d(a, b) / l) * exp(-|f_a - f_b|^2 / l_f)`, a categorical kernel
on the encoding times an RBF on the features, with its own lengthscale `l_f` on the grid.
A Hamming distance over a continuous score would be meaningless: this keeps each part in
its own metric.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

DEFAULT_LENGTHSCALES = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0)
DEFAULT_NOISES = (1e-3, 1e-2, 1e-1)
DEFAULT_FEATURE_LENGTHSCALES = (0.25, 1.0, 4.0, 16.0)


class GP(NamedTuple):
    """A fitted GP: what `gp_predict` needs."""

    x: jax.Array  # float32[N, D] training encodings (masked rows ignored)
    mask: jax.Array  # bool[N]
    alpha: jax.Array  # float32[N]: K^-1 (y - mean), zero where masked
    chol: jax.Array  # float32[N, N]: Cholesky factor of the masked K + noise
    mean: jax.Array  # float32[]: mean of y
    scale: jax.Array  # float32[]: standard deviation of y
    lengthscale: jax.Array  # float32[]
    noise: jax.Array  # float32[]
    features: jax.Array | None = None  # float32[N, F]: continuous columns (mixed kernel)
    feature_lengthscale: jax.Array | None = None  # float32[]


Distance = Callable[[jax.Array, jax.Array], jax.Array]  # rows a [N, D], b [M, D] -> [N, M]


def hamming_distance(a: jax.Array, b: jax.Array) -> jax.Array:
    """Hamming distance of binary / one-hot rows a [N, D], b [M, D]."""
    return jnp.maximum(jnp.sum(a, -1)[:, None] + jnp.sum(b, -1)[None, :] - 2 * a @ b.T, 0.0)


def hamming_kernel(a: jax.Array, b: jax.Array, lengthscale: jax.Array) -> jax.Array:
    """exp(-hamming(a_i, b_j) / lengthscale) for binary / one-hot rows a [N, D], b [M, D]."""
    return jnp.exp(-hamming_distance(a, b) / lengthscale)


def squared_distance(a: jax.Array, b: jax.Array) -> jax.Array:
    """Squared Euclidean distance of rows a [N, F], b [M, F]."""
    return jnp.sum(jnp.square(a[:, None, :] - b[None, :, :]), -1)


def _masked_gram(
    d: jax.Array,
    mask: jax.Array,
    lengthscale: jax.Array,
    noise: jax.Array,
    d_feat: jax.Array | None = None,
    feature_lengthscale: jax.Array | float = 1.0,
) -> jax.Array:
    m = mask.astype(d.dtype)
    exponent = -d / lengthscale
    if d_feat is not None:
        exponent = exponent - d_feat / feature_lengthscale
    k = jnp.exp(exponent) * m[:, None] * m[None, :]
    return k + jnp.diag(m * noise + (1 - m))  # masked rows: identity, decoupled


def _split(x: jax.Array, num_features: int) -> tuple[jax.Array, jax.Array | None]:
    if num_features == 0:
        return x, None
    return x[:, :-num_features], x[:, -num_features:]


def gp_fit(
    x: jax.Array,
    y: jax.Array,
    mask: jax.Array,
    lengthscales: tuple[float, ...] = DEFAULT_LENGTHSCALES,
    noises: tuple[float, ...] = DEFAULT_NOISES,
    distance: Distance = hamming_distance,
    *,
    num_features: int = 0,
    feature_lengthscales: tuple[float, ...] = DEFAULT_FEATURE_LENGTHSCALES,
) -> GP:
    """Fit on the rows where `mask`; choose (lengthscale, noise) by marginal likelihood.

    The kernel is `exp(-distance(a, b) / lengthscale)`: Hamming by default, or e.g.
    `jnas.predictors.wl_distance(V)` for the Weisfeiler-Lehman kernel on cells. With
    `num_features=F` the last F columns are continuous and the kernel is multiplied by an
    RBF on them (lengthscale from `feature_lengthscales`, also by marginal likelihood).
    """
    if not isinstance(num_features, int) or num_features < 0:
        raise ValueError(f"gp_fit: `num_features` must be an int >= 0; got {num_features!r}")
    x, f = _split(jnp.asarray(x, jnp.float32), num_features)
    d = distance(x, x)
    d_feat = None if f is None else squared_distance(f, f)
    m = mask.astype(jnp.float32)
    n = jnp.maximum(jnp.sum(m), 1.0)
    mean = jnp.sum(y * m) / n
    scale = jnp.sqrt(jnp.sum(jnp.square(y - mean) * m) / n) + 1e-6
    z = jnp.where(mask, (y - mean) / scale, 0.0)

    def log_ml(ls, noise, lf):
        chol = jnp.linalg.cholesky(_masked_gram(d, mask, ls, noise, d_feat, lf))
        a = jax.scipy.linalg.cho_solve((chol, True), z)
        return -0.5 * z @ a - jnp.sum(jnp.log(jnp.diag(chol)) * m)

    lfs = (1.0,) if f is None else feature_lengthscales
    grid = [g.ravel() for g in jnp.meshgrid(*map(jnp.asarray, (lengthscales, noises, lfs)))]
    scores = jax.vmap(log_ml)(*grid)
    scores = jnp.where(jnp.isfinite(scores), scores, -jnp.inf)
    best = jnp.argmax(scores)
    ls, noise, lf = (g[best] for g in grid)
    chol = jnp.linalg.cholesky(_masked_gram(d, mask, ls, noise, d_feat, lf))
    alpha = jax.scipy.linalg.cho_solve((chol, True), z)
    return GP(x, mask, alpha, chol, mean, scale, ls, noise, f, None if f is None else lf)


def gp_predict(
    gp: GP, x_new: jax.Array, distance: Distance = hamming_distance
) -> tuple[jax.Array, jax.Array]:
    """Posterior mean and standard deviation (of the latent function) at rows `x_new`
    (`distance` as in the fit; rows carry the fit's continuous feature columns last)."""
    x_new = jnp.asarray(x_new, jnp.float32)
    if gp.features is None:
        exponent = -distance(x_new, gp.x) / gp.lengthscale
    else:
        f = gp.features.shape[1]
        lf = 1.0 if gp.feature_lengthscale is None else gp.feature_lengthscale
        exponent = (
            -distance(x_new[:, :-f], gp.x) / gp.lengthscale
            - squared_distance(x_new[:, -f:], gp.features) / lf
        )
    k_star = jnp.exp(exponent)
    k_star = k_star * gp.mask.astype(jnp.float32)[None, :]
    mean = k_star @ gp.alpha
    v = jax.scipy.linalg.solve_triangular(gp.chol, k_star.T, lower=True)
    var = jnp.maximum(1.0 - jnp.sum(v * v, 0), 1e-12)
    return gp.mean + gp.scale * mean, gp.scale * jnp.sqrt(var)
