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

Inside a search the history grows by one point per evaluation: `gp_factors_add` keeps the
inverse Cholesky factor of every grid point's Gram matrix up to date in O(G P^2) a point,
and `gp_fit_factored` fits from it with matrix products only (BO's state; the same GP as
`gp_fit` on the points held, checked against a NumPy refit).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from jnas.predictors._blocks import prefix_columns, tril_prefix_matmul, used_rows

DEFAULT_LENGTHSCALES = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0)
DEFAULT_NOISES = (1e-3, 1e-2, 1e-1)
DEFAULT_FEATURE_LENGTHSCALES = (0.25, 1.0, 4.0, 16.0)


class GP(NamedTuple):
    """A fitted GP: what `gp_predict` needs."""

    x: jax.Array  # float32[N, D] training encodings (masked rows ignored)
    mask: jax.Array  # bool[N]
    alpha: jax.Array  # float32[N]: K^-1 (y - mean), zero where masked
    chol: jax.Array | None  # float32[N, N]: Cholesky factor of the masked K + noise (or None:
    # `gp_fit_factored` keeps only its inverse, `chol_inv`)
    mean: jax.Array  # float32[]: mean of y
    scale: jax.Array  # float32[]: standard deviation of y
    lengthscale: jax.Array  # float32[]
    noise: jax.Array  # float32[]
    features: jax.Array | None = None  # float32[N, F]: continuous columns (mixed kernel)
    feature_lengthscale: jax.Array | None = None  # float32[]
    chol_inv: jax.Array | None = None  # float32[N, N]: its inverse (`gp_fit_factored`)


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
    f = 0 if gp.features is None else gp.features.shape[1]
    lf = 1.0 if gp.feature_lengthscale is None else gp.feature_lengthscale

    def kernel(rows: tuple) -> jax.Array:  # k(x_new, rows) [C, B], zero at masked rows
        x, feats, mask = rows
        exponent = -distance(x_new[:, : x_new.shape[1] - f], x) / gp.lengthscale
        if feats is not None:
            exponent = exponent - squared_distance(x_new[:, -f:], feats) / lf
        return jnp.exp(exponent) * mask.astype(jnp.float32)[None, :]

    rows = (gp.x, gp.features, gp.mask)
    if gp.chol_inv is not None:  # the search's history: only the rows in use
        used = used_rows(gp.mask)
        k_star = prefix_columns(kernel, rows, used, x_new.shape[0])
        v = tril_prefix_matmul(gp.chol_inv[None], k_star.T[None], used)[0]
    else:
        assert gp.chol is not None
        k_star = kernel(rows)
        v = jax.scipy.linalg.solve_triangular(gp.chol, k_star.T, lower=True)
    mean = k_star @ gp.alpha
    var = jnp.maximum(1.0 - jnp.sum(v * v, 0), 1e-12)
    return gp.mean + gp.scale * mean, gp.scale * jnp.sqrt(var)


# --- incremental fits: the search loop adds one point at a time --------------------------------


class GPGrid(NamedTuple):
    """The (lengthscale, noise, feature lengthscale) grid of `gp_fit`, flattened in its
    order (so ties resolve the same way)."""

    lengthscale: jax.Array  # float32[G]
    noise: jax.Array  # float32[G]
    feature_lengthscale: jax.Array  # float32[G]


def gp_grid(
    lengthscales: tuple[float, ...] = DEFAULT_LENGTHSCALES,
    noises: tuple[float, ...] = DEFAULT_NOISES,
    *,
    num_features: int = 0,
    feature_lengthscales: tuple[float, ...] = DEFAULT_FEATURE_LENGTHSCALES,
) -> GPGrid:
    """The hyper-parameter grid `gp_fit` searches, as arrays of G = its size."""
    lfs = (1.0,) if num_features == 0 else feature_lengthscales
    grid = [g.ravel() for g in jnp.meshgrid(*map(jnp.asarray, (lengthscales, noises, lfs)))]
    return GPGrid(*(g.astype(jnp.float32) for g in grid))


def gp_factors_init(grid: GPGrid, max_points: int) -> jax.Array:
    """float32[G, P, P]: the inverse Cholesky factors of an empty history (every row
    masked: identity)."""
    size = grid.lengthscale.shape[0]
    return jnp.broadcast_to(jnp.eye(max_points, dtype=jnp.float32), (size, max_points, max_points))


def _drop_first(inv_chol: jax.Array) -> jax.Array:
    """The inverse factors once point 0 leaves: the rest move one place forward (an
    identity row enters last). With `W = L^-1` and `L = [[l, 0], [v, L2]]` the rest's Gram
    matrix is `L2 L2^T + v v^T = L2 (I + u u^T) L2^T`, `u = L2^-1 v = -W[1:, 0] / W[0, 0]`.
    The Cholesky factor M of `I + u u^T` is known in closed form (M_jj = sqrt(b_j / b_j-1),
    M_ij = u_i u_j / sqrt(b_j b_j-1), b_j = 1 + sum_{k<=j} u_k^2), and forward substitution
    through it reduces to a cumulative sum, so `M^-1 W[1:, 1:]` costs O(P^2), no loop."""
    n = inv_chol.shape[-1]
    u = -inv_chol[:, 1:, 0] / inv_chol[:, :1, 0]  # [G, P-1]
    rest = inv_chol[:, 1:, 1:]
    beta = 1.0 + jnp.cumsum(u * u, -1)
    beta_prev = jnp.concatenate([jnp.ones_like(beta[:, :1]), beta[:, :-1]], -1)
    before = jnp.cumsum(u[..., None] * rest, 1) - u[..., None] * rest  # exclusive, down rows
    rest = (rest - u[..., None] * before / beta_prev[..., None]) * jnp.sqrt(beta_prev / beta)[
        ..., None
    ]
    rest = jnp.pad(rest, ((0, 0), (0, 1), (0, 1)))
    return rest.at[:, n - 1, n - 1].set(1.0)


def gp_factors_add(
    inv_chol: jax.Array,
    grid: GPGrid,
    x_view: jax.Array,
    mask_view: jax.Array,
    position: jax.Array,
    drop_first: jax.Array,
    distance: Distance = hamming_distance,
    *,
    num_features: int = 0,
) -> jax.Array:
    """Add one point to the inverse Cholesky factors `W = L^-1` of every grid point's
    masked Gram matrix (`gp_fit`'s), in O(G P^2) where a refit costs O(G P^3).

    The factors hold the points in the order they arrived. `x_view`, `mask_view` [P, ...]
    are the points in that order *after* the add, the new one at `position`. The new row
    of L is `l = L^-1 k` with diagonal `d = sqrt(1 + noise - |l|^2)`
    (Cholesky-Banachiewicz, one row), so W gains the row `[-l^T W / d, 1 / d]`; a masked
    point is an identity row. `drop_first`: the oldest point left a full buffer first (the
    rest moved one place forward): a rank-one update of the rest (`_drop_first`). Keeping `L^-1` rather than `L`
    turns every solve of the search into a matrix product (XLA:CPU's batched triangular
    solves re-layout each matrix: ~9x slower); its entries are bounded by
    `1 / sqrt(noise)` since the Gram matrix's eigenvalues are at least the noise.
    """
    n = inv_chol.shape[-1]
    x_view = jnp.asarray(x_view, jnp.float32)
    earlier = mask_view & (jnp.arange(n) < position)

    def drop(carry):  # a loop of 0 or 1 steps: under `vmap`, skipped unless one member drops
        i, inv_chol = carry
        return i + 1, _drop_first(inv_chol)

    inv_chol = jax.lax.while_loop(
        lambda c: c[0] < drop_first.astype(jnp.int32), drop, (jnp.zeros((), jnp.int32), inv_chol)
    )[1]
    x_all, feats = _split(x_view, num_features)
    d = distance(x_all[position][None], x_all)[0]  # [P]
    exponent = -d[None, :] / grid.lengthscale[:, None]
    if feats is not None:
        d_feat = squared_distance(feats[position][None], feats)[0]
        exponent = exponent - d_feat[None, :] / grid.feature_lengthscale[:, None]
    k = jnp.exp(exponent) * earlier[None, :].astype(jnp.float32)  # [G, P]
    # the new row of L (k and the rows of W from `position` on are zero / identity rows:
    # the products read only W's first `position` rows)
    low = tril_prefix_matmul(inv_chol, k[..., None], position)[..., 0]
    diag = jnp.sqrt(1.0 + grid.noise - jnp.sum(low * low, -1))  # NaN if not PD, as a refit
    row = -tril_prefix_matmul(inv_chol, low[..., None], position, transpose=True)[..., 0]
    row = row / diag[:, None]
    row = row.at[:, position].set(1.0 / diag)
    valid = mask_view[position]
    row = jnp.where(valid, row, (jnp.arange(n) == position).astype(jnp.float32)[None, :])
    return inv_chol.at[:, position, :].set(row)


def gp_fit_factored(
    inv_chol: jax.Array,
    grid: GPGrid,
    x: jax.Array,
    y: jax.Array,
    mask: jax.Array,
    *,
    num_features: int = 0,
) -> GP:
    """`gp_fit` from the inverse factors kept by `gp_factors_add` (rows of `x`, `y`, `mask`
    in their order): the marginal likelihood of every grid point is one matrix-vector
    product."""
    x, f = _split(jnp.asarray(x, jnp.float32), num_features)
    m = mask.astype(jnp.float32)
    n = jnp.maximum(jnp.sum(m), 1.0)
    y = jnp.where(mask, y, 0.0)
    mean = jnp.sum(y * m) / n
    scale = jnp.sqrt(jnp.sum(jnp.square(y - mean) * m) / n) + 1e-6
    z = jnp.where(mask, (y - mean) / scale, 0.0)
    g = inv_chol.shape[0]  # L^-1 z, over the rows up to the last one held
    a = tril_prefix_matmul(
        inv_chol, jnp.broadcast_to(z[None, :, None], (g, z.shape[0], 1)), used_rows(mask)
    )[..., 0]
    log_diag = jnp.log(jnp.diagonal(inv_chol, axis1=-2, axis2=-1))  # -log diag L
    log_ml = -0.5 * jnp.sum(a * a, -1) + jnp.sum(log_diag * m[None, :], -1)
    best = jnp.argmax(jnp.where(jnp.isfinite(log_ml), log_ml, -jnp.inf))
    alpha = inv_chol[best].T @ a[best]
    lf = None if f is None else grid.feature_lengthscale[best]
    return GP(
        x,
        mask,
        alpha,
        None,
        mean,
        scale,
        grid.lengthscale[best],
        grid.noise[best],
        f,
        lf,
        inv_chol[best],
    )
