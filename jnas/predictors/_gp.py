"""An exact Gaussian process on architecture encodings, in JAX, with masked data.

Data live in fixed-size buffers with a validity mask, so fitting and predicting are
jittable inside a search's `lax.scan`. The kernel is `s2 * exp(-d / lengthscale)` of a
distance `d`: by default the Hamming distance between binary or one-hot encodings (for the
BANANAS path encoding or the one-hot cell; `d` is also the squared Euclidean distance
there, so this is the RBF kernel on those vectors), or one minus the normalised
Weisfeiler-Lehman kernel of two cells (`jnas.predictors.wl_distance`). Hyper-parameters (lengthscale, noise) maximise the marginal
likelihood over a log grid (robust and shape-static); the signal variance is the data's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

DEFAULT_LENGTHSCALES = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0)
DEFAULT_NOISES = (1e-3, 1e-2, 1e-1)


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


Distance = Callable[[jax.Array, jax.Array], jax.Array]  # rows a [N, D], b [M, D] -> [N, M]


def hamming_distance(a: jax.Array, b: jax.Array) -> jax.Array:
    """Hamming distance of binary / one-hot rows a [N, D], b [M, D]."""
    return jnp.maximum(jnp.sum(a, -1)[:, None] + jnp.sum(b, -1)[None, :] - 2 * a @ b.T, 0.0)


def hamming_kernel(a: jax.Array, b: jax.Array, lengthscale: jax.Array) -> jax.Array:
    """exp(-hamming(a_i, b_j) / lengthscale) for binary / one-hot rows a [N, D], b [M, D]."""
    return jnp.exp(-hamming_distance(a, b) / lengthscale)


def _masked_gram(d, mask, lengthscale, noise):
    m = mask.astype(d.dtype)
    k = jnp.exp(-d / lengthscale) * m[:, None] * m[None, :]
    return k + jnp.diag(m * noise + (1 - m))  # masked rows: identity, decoupled


def gp_fit(
    x: jax.Array,
    y: jax.Array,
    mask: jax.Array,
    lengthscales: tuple[float, ...] = DEFAULT_LENGTHSCALES,
    noises: tuple[float, ...] = DEFAULT_NOISES,
    distance: Distance = hamming_distance,
) -> GP:
    """Fit on the rows where `mask`; choose (lengthscale, noise) by marginal likelihood.

    The kernel is `exp(-distance(a, b) / lengthscale)`: Hamming by default, or e.g.
    `jnas.predictors.wl_distance(V)` for the Weisfeiler-Lehman kernel on cells.
    """
    x = jnp.asarray(x, jnp.float32)
    d = distance(x, x)
    m = mask.astype(jnp.float32)
    n = jnp.maximum(jnp.sum(m), 1.0)
    mean = jnp.sum(y * m) / n
    scale = jnp.sqrt(jnp.sum(jnp.square(y - mean) * m) / n) + 1e-6
    z = jnp.where(mask, (y - mean) / scale, 0.0)

    def log_ml(ls, noise):
        chol = jnp.linalg.cholesky(_masked_gram(d, mask, ls, noise))
        a = jax.scipy.linalg.cho_solve((chol, True), z)
        return -0.5 * z @ a - jnp.sum(jnp.log(jnp.diag(chol)) * m)

    grid_ls, grid_noise = jnp.meshgrid(jnp.asarray(lengthscales), jnp.asarray(noises))
    scores = jax.vmap(log_ml)(grid_ls.ravel(), grid_noise.ravel())
    scores = jnp.where(jnp.isfinite(scores), scores, -jnp.inf)
    best = jnp.argmax(scores)
    ls, noise = grid_ls.ravel()[best], grid_noise.ravel()[best]
    chol = jnp.linalg.cholesky(_masked_gram(d, mask, ls, noise))
    return GP(x, mask, jax.scipy.linalg.cho_solve((chol, True), z), chol, mean, scale, ls, noise)


def gp_predict(
    gp: GP, x_new: jax.Array, distance: Distance = hamming_distance
) -> tuple[jax.Array, jax.Array]:
    """Posterior mean and standard deviation (of the latent function) at rows `x_new`
    (`distance` as in the fit)."""
    k_star = jnp.exp(-distance(jnp.asarray(x_new, jnp.float32), gp.x) / gp.lengthscale)
    k_star = k_star * gp.mask.astype(jnp.float32)[None, :]
    mean = k_star @ gp.alpha
    v = jax.scipy.linalg.solve_triangular(gp.chol, k_star.T, lower=True)
    var = jnp.maximum(1.0 - jnp.sum(v * v, 0), 1e-12)
    return gp.mean + gp.scale * mean, gp.scale * jnp.sqrt(var)
