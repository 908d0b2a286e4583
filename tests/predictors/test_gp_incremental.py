"""The GP kept up to date point by point (`gp_factors_add`, BO's state) against a NumPy GP
refitted from scratch on the points the search holds: through a full history (the oldest
point leaving, the rank-one update) and failed (NaN) evaluations."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jnas import predictors
from jnas.search import bayesian_optimization
from jnas.search._model_based import chronological
from jnas.spaces import NB201

SPACE = NB201()
P = 16  # history size: 27 points told in 9 batches of 3 fill it and wrap


def numpy_gp(x, y, grid, x_test, features=None, f_test=None):
    """Grid search of the marginal likelihood and the posterior, float64, from scratch."""
    mean, scale = y.mean(), y.std() + 1e-6
    z = (y - mean) / scale
    d = np.abs(x[:, None] - x[None]).sum(-1)
    ds = np.abs(x_test[:, None] - x[None]).sum(-1)
    if features is not None:
        df = np.square(features[:, None] - features[None]).sum(-1)
        dfs = np.square(f_test[:, None] - features[None]).sum(-1)
    best = None
    for ls, noise, lf in zip(*(np.asarray(g, np.float64) for g in grid), strict=True):
        e, es = -d / ls, -ds / ls
        if features is not None:
            e, es = e - df / lf, es - dfs / lf
        k = np.exp(e) + noise * np.eye(len(y))
        chol = np.linalg.cholesky(k)
        a = np.linalg.solve(chol, z)
        log_ml = -0.5 * a @ a - np.log(np.diag(chol)).sum()
        if best is None or log_ml > best[0]:
            best = (log_ml, ls, noise, k, np.exp(es))
    _, ls, noise, k, ks = best
    mu = mean + scale * ks @ np.linalg.solve(k, z)
    sd = scale * np.sqrt(1 - np.einsum("ij,ji->i", ks, np.linalg.solve(k, ks.T)))
    return ls, noise, mu, sd


def fitness(archs):
    """A smooth function of the path encoding, so the grid's choice is not a corner."""
    x = np.asarray(jax.vmap(SPACE.path)(archs), np.float64).reshape(len(archs.ops), -1)
    return (x @ np.sin(np.arange(x.shape[1]))).astype(np.float32)


def test_bo_state_is_the_gp_of_the_points_it_holds_through_a_full_history():
    bo = bayesian_optimization(SPACE, max_points=P, batch_size=3)
    state = bo.init(jax.random.key(0))
    tell = jax.jit(bo.tell)
    grid = predictors.gp_grid()
    xs, ys = [], []
    test = jax.vmap(SPACE.sample)(jax.random.split(jax.random.key(99), 8))
    x_test = np.asarray(jax.vmap(SPACE.path)(test), np.float64).reshape(8, -1)
    wrapped = 0
    for i in range(9):
        archs = jax.vmap(SPACE.sample)(jax.random.split(jax.random.key(i + 10), 3))
        y = fitness(archs)
        if i in (2, 6):
            y[1] = np.nan  # a failed evaluation: masked
        state = tell(state, archs, y)
        xs.append(np.asarray(jax.vmap(SPACE.path)(archs), np.float64).reshape(3, -1))
        ys.append(y)
        held_x, held_y = np.concatenate(xs)[-P:], np.concatenate(ys)[-P:]
        ok = np.isfinite(held_y)
        wrapped += int(state.count) > P
        order = chronological(state.count, P)
        mask = (jnp.arange(P) < state.count) & jnp.isfinite(state.y)
        gp = predictors.gp_fit_factored(
            state.model, grid, state.x[order], state.y[order], mask[order]
        )
        ls, noise, mu, sd = numpy_gp(held_x[ok], held_y[ok].astype(np.float64), grid, x_test)
        assert (float(gp.lengthscale), float(gp.noise)) == pytest.approx((ls, noise)), i
        got_mu, got_sd = predictors.gp_predict(gp, x_test.astype(np.float32))
        np.testing.assert_allclose(got_mu, mu, rtol=2e-3, atol=2e-3 * np.abs(mu).max())
        np.testing.assert_allclose(got_sd, sd, rtol=2e-2, atol=2e-3 * np.abs(mu).max())
    assert wrapped == 4  # four tells after the history was full


@pytest.mark.parametrize("num_features", [0, 1])
def test_inverse_factors_whiten_every_grid_points_gram_matrix(num_features):
    """W K W^T = I for every (lengthscale, noise[, feature lengthscale]): the defining
    property of W = L^-1, checked after adds, failed points and three drops."""
    grid = predictors.gp_grid(num_features=num_features)
    archs = jax.vmap(SPACE.sample)(jax.random.split(jax.random.key(3), 11))
    x = np.asarray(jax.vmap(SPACE.path)(archs), np.float32).reshape(11, -1)
    if num_features:
        x = np.hstack([x, np.random.default_rng(0).normal(size=(11, 1)).astype(np.float32)])
    valid = np.ones(11, bool)
    valid[[1, 5]] = False
    n = 8
    add = jax.jit(
        lambda w, xv, mv, pos, drop: predictors.gp_factors_add(
            w, grid, xv, mv, pos, drop, num_features=num_features
        )
    )
    w = predictors.gp_factors_init(grid, n)
    for t in range(11):
        lo = max(0, t + 1 - n)
        view = np.zeros((n, x.shape[1]), np.float32)
        view[: t + 1 - lo] = x[lo : t + 1]
        mask = np.zeros(n, bool)
        mask[: t + 1 - lo] = valid[lo : t + 1]
        w = add(w, view, mask, min(t, n - 1), t >= n)
    held, ok = x[3:11], valid[3:11]
    enc, feat = (held[:, :-1], held[:, -1:]) if num_features else (held, None)
    d = np.abs(enc[:, None] - enc[None]).sum(-1)
    for g, (ls, noise, lf) in enumerate(zip(*map(np.asarray, grid), strict=True)):
        e = -d / ls - (0 if feat is None else np.square(feat - feat.T) / lf)
        k = np.exp(e) * np.outer(ok, ok) + np.diag(np.where(ok, noise, 1.0))
        np.testing.assert_allclose(w[g] @ k @ w[g].T, np.eye(n), atol=2e-3)


def test_the_grid_is_every_hyper_parameter_triple_once():
    """`gp_grid` holds each (lengthscale, noise[, feature lengthscale]) of the defaults once:
    7 x 3 with the feature lengthscale fixed at 1 without features, 7 x 3 x 4 with them. The
    defaults are log grids written here: lengthscales 0.5 to 32 doubling, noises 1e-3, 1e-2
    and 1e-1, feature lengthscales 0.25 to 16 by fours (BO's results depend on them)."""
    import itertools

    from jnas.predictors import _gp

    lengthscales = [0.5 * 2**k for k in range(7)]
    noises = [10.0**-k for k in (3, 2, 1)]
    feature_lengthscales = [0.25 * 4**k for k in range(4)]
    assert _gp.DEFAULT_LENGTHSCALES == pytest.approx(lengthscales)
    assert _gp.DEFAULT_NOISES == pytest.approx(noises)
    assert _gp.DEFAULT_FEATURE_LENGTHSCALES == pytest.approx(feature_lengthscales)
    # BO-WL's lengthscales: 1 - normalised WL similarity lies in [0, 1], so 0.05 to 3.2 doubling
    from jnas.search._bo import WL_LENGTHSCALES

    assert pytest.approx([0.05 * 2**k for k in range(7)]) == WL_LENGTHSCALES

    def triples(grid):  # float32 grid values, compared as float32
        return sorted(zip(*(np.asarray(g, np.float32).tolist() for g in grid), strict=True))

    def want(*axes):
        return sorted(itertools.product(*(np.float32(a).tolist() for a in axes)))

    plain = want(lengthscales, noises, [1.0])
    assert triples(predictors.gp_grid()) == plain
    mixed = want(lengthscales, noises, feature_lengthscales)
    assert triples(predictors.gp_grid(num_features=2)) == mixed


def test_a_history_of_one_point_predicts_that_point():
    """One point held (of 8 slots): its value is the mean, the posterior there is that
    value; an empty history's mean is 0, not NaN."""
    grid = predictors.gp_grid()
    x = np.zeros((8, 6), np.float32)
    x[0, 2] = 1.0
    y = np.zeros(8, np.float32)
    y[0] = 7.5
    mask = np.arange(8) < 1
    fresh = predictors.gp_factors_init(grid, 8)
    w = predictors.gp_factors_add(fresh, grid, x, mask, jnp.int32(0), jnp.asarray(False))
    gp = predictors.gp_fit_factored(w, grid, x, y, mask)
    assert float(gp.mean) == 7.5
    mu, _ = predictors.gp_predict(gp, x[:1])
    np.testing.assert_allclose(mu, 7.5, rtol=1e-6)
    empty = predictors.gp_fit_factored(fresh, grid, x, y, np.zeros(8, bool))
    assert float(empty.mean) == 0.0
    # the same through a full fit: one point's spread is 0, so its scale is the 1e-6 floor,
    # positive (a negative scale would give negative standard deviations)
    direct = predictors.gp_fit(x, y, mask)
    assert float(direct.mean) == 7.5
    assert float(direct.scale) == pytest.approx(1e-6)
    mu, sd = predictors.gp_predict(direct, x[:2])
    np.testing.assert_allclose(mu[0], 7.5, rtol=1e-6)
    assert bool(jnp.all(sd >= 0))
    assert float(sd[1]) > 0
    assert float(predictors.gp_fit(x, y, np.zeros(8, bool)).mean) == 0.0


def test_a_grid_point_whose_factors_broke_is_never_chosen():
    """A grid point whose inverse factor holds NaN (a Gram matrix that stopped being
    positive definite in float32) scores NaN; the fit takes the best finite one, as
    `gp_fit` does, rather than the broken one."""
    grid = predictors.gp_grid()
    archs = jax.vmap(SPACE.sample)(jax.random.split(jax.random.key(4), 6))
    x = np.asarray(jax.vmap(SPACE.path)(archs), np.float32).reshape(6, -1)
    y = fitness(archs)
    mask = np.ones(6, bool)
    w = predictors.gp_factors_init(grid, 6)
    for t in range(6):
        w = predictors.gp_factors_add(w, grid, x, mask & (np.arange(6) <= t), jnp.int32(t),
                                      jnp.asarray(False))  # fmt: skip
    whole = predictors.gp_fit_factored(w, grid, x, y, mask)
    chosen = int(np.flatnonzero((np.asarray(grid.lengthscale) == float(whole.lengthscale))
                                & (np.asarray(grid.noise) == float(whole.noise)))[0])  # fmt: skip
    broken = predictors.gp_fit_factored(w.at[chosen, 3, 1].set(jnp.nan), grid, x, y, mask)
    assert np.isfinite(float(broken.lengthscale))
    assert (float(broken.lengthscale), float(broken.noise)) != (
        float(whole.lengthscale),
        float(whole.noise),
    )
    assert np.isfinite(np.asarray(predictors.gp_predict(broken, x)[0])).all()
