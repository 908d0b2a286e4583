"""Predictors against references: the GP against a NumPy GP, the MLP ensemble on a
learnable function, masking."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jnas import predictors
from jnas.spaces import NB201

SPACE = NB201()


def encodings(seed, n):
    archs = jax.vmap(SPACE.sample)(jax.random.split(jax.random.key(seed), n))
    return np.asarray(jax.vmap(SPACE.path)(archs), np.float64)


def target(x):
    w = np.sin(np.arange(x.shape[1]))  # a fixed linear function of the paths
    return x @ w


def test_hamming_kernel_matches_numpy():
    a, b = encodings(0, 5), encodings(1, 4)
    expect = np.exp(-np.abs(a[:, None] - b[None]).sum(-1) / 3.0)
    np.testing.assert_allclose(predictors.hamming_kernel(a, b, 3.0), expect, rtol=1e-5)


def test_gp_matches_a_numpy_gp_and_ignores_masked_rows():
    x, y = encodings(0, 30), target(encodings(0, 30))
    mask = np.ones(30, bool)
    gp = predictors.gp_fit(x, y, mask)
    # numpy reference with the chosen hyper-parameters
    ls, noise = float(gp.lengthscale), float(gp.noise)
    mean, scale = y.mean(), y.std() + 1e-6
    k = np.exp(-np.abs(x[:, None] - x[None]).sum(-1) / ls) + noise * np.eye(30)
    xt = encodings(5, 10)
    ks = np.exp(-np.abs(xt[:, None] - x[None]).sum(-1) / ls)
    ref_mean = mean + scale * ks @ np.linalg.solve(k, (y - mean) / scale)
    ref_std = scale * np.sqrt(1 - np.einsum("ij,ji->i", ks, np.linalg.solve(k, ks.T)))
    mu, sd = predictors.gp_predict(gp, xt)
    np.testing.assert_allclose(mu, ref_mean, rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(sd, ref_std, rtol=1e-2, atol=1e-3)
    # 10 garbage rows, masked out, change nothing
    xg = np.concatenate([x, encodings(9, 10)])
    yg = np.concatenate([y, np.full(10, 1e6)])
    mg = np.concatenate([mask, np.zeros(10, bool)])
    mu2, sd2 = predictors.gp_predict(predictors.gp_fit(xg, yg, mg), xt)
    np.testing.assert_allclose(mu2, mu, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(sd2, sd, rtol=1e-4, atol=1e-4)


def test_gp_hyper_parameters_maximise_the_numpy_marginal_likelihood():
    """(lengthscale, noise) is the grid point of the highest log marginal likelihood,
    -z'K^-1 z / 2 - log|K| / 2 on the standardised targets of the rows in use, in NumPy; a
    noisy target picks a larger noise than the clean one."""
    from jnas.predictors._gp import DEFAULT_LENGTHSCALES, DEFAULT_NOISES

    x = encodings(2, 40)
    mask = np.arange(40) < 34
    xm = x[mask]
    d = np.abs(xm[:, None] - xm[None]).sum(-1)
    chosen = []
    for level in (0.0, 3.0):
        y = target(x) + level * np.random.default_rng(0).normal(size=40)
        y[~mask] = 1e3  # rows out of the mask count nothing
        gp = predictors.gp_fit(x, y, mask)
        z = (y[mask] - y[mask].mean()) / (y[mask].std() + 1e-6)
        scores = {}
        for ls in DEFAULT_LENGTHSCALES:
            for noise in DEFAULT_NOISES:
                k = np.exp(-d / ls) + noise * np.eye(len(z))
                scores[ls, noise] = -0.5 * z @ np.linalg.solve(k, z) - 0.5 * np.linalg.slogdet(k)[1]
        best = max(scores, key=scores.get)
        assert scores[best] - sorted(scores.values())[-2] > 1e-2  # a clear winner, no tie
        assert (float(gp.lengthscale), float(gp.noise)) == pytest.approx(best)
        chosen.append(best)
    assert chosen[1][1] > chosen[0][1]


def test_gp_fit_is_jittable_and_better_than_the_mean():
    x, xt = encodings(0, 60), encodings(7, 40)
    y, yt = target(x), target(xt)
    gp = jax.jit(predictors.gp_fit)(x, y, jnp.ones(60, bool))
    mu, _ = jax.jit(predictors.gp_predict)(gp, xt)
    assert np.mean((mu - yt) ** 2) < 0.5 * np.var(yt)


def test_mlp_ensemble_learns_and_spreads():
    x, xt = encodings(0, 150), encodings(7, 50)
    y, yt = target(x), target(xt)
    model = jax.jit(predictors.ensemble_fit, static_argnames=("members", "steps"))(
        jax.random.key(0), x, y, jnp.ones(150, bool), members=3, steps=300
    )
    preds = predictors.ensemble_predict(model, xt)
    assert preds.shape == (3, 50)
    assert np.mean((preds.mean(0) - yt) ** 2) < 0.3 * np.var(yt)
    assert float(preds.std(0).mean()) > 0  # independently initialised members differ
    with pytest.raises(TypeError):
        predictors.ensemble_fit(jax.random.key(0), x, y)  # the mask is required
    # BANANAS' ensemble of five networks by default
    shapes = jax.eval_shape(lambda: predictors.ensemble_fit(jax.random.key(0), x, y, jnp.ones(150, bool)))  # fmt: skip
    assert [leaf.shape[0] for leaf in jax.tree.leaves(shapes["members"])] == [5] * 6


def test_mlp_ensemble_fits_exactly_the_masked_rows_of_a_holey_buffer():
    """The blocked gradient against full-batch Adam written out here: a 100-row buffer with
    valid rows 0-39 and 70 (after a hole, in the third block), garbage everywhere else.
    Summing blocks only up to the valid *count* (40) would drop row 70; summing garbage
    rows would move the fit."""
    import optax

    from jnas.predictors._mlp import _init_mlp

    def forward(p, x):  # two ReLU hidden layers, one linear output
        h = jax.nn.relu(x @ p[0]["w"] + p[0]["b"][None])
        h = jax.nn.relu(h @ p[1]["w"] + p[1]["b"][None])
        return (h @ p[2]["w"] + p[2]["b"][None])[:, 0]

    x = encodings(0, 100).astype(np.float32)
    y = target(x).astype(np.float32)
    mask = np.zeros(100, bool)
    mask[:40] = mask[70] = True
    y[~mask] = 1e3  # garbage where masked
    key = jax.random.key(4)
    model = predictors.ensemble_fit(key, x, y, jnp.asarray(mask), members=2, steps=30)
    # reference: each member trained on the 41 valid rows alone, full batch
    xv, yv = x[mask], y[mask]
    z = (yv - yv.mean()) / (yv.std() + 1e-6)
    tx = optax.adam(0.01)
    for member, k in enumerate(jax.random.split(key, 2)):
        p = _init_mlp(k, (x.shape[1], 32, 32, 1))
        s = tx.init(p)
        for _ in range(30):
            g = jax.grad(lambda p: jnp.mean(jnp.abs(forward(p, xv) - z)))(p)
            u, s = tx.update(g, s, p)
            p = optax.apply_updates(p, u)
        got = jax.tree.map(lambda a, member=member: a[member], model["members"])
        for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(p), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def _reference_wl(matrix, ops, iterations=2):
    """Exact WL labels by string relabelling (NAS-BOWL's algorithm, in plain Python)."""
    matrix = np.asarray(matrix)
    v = len(ops)
    present = [bool(matrix[i].any() or matrix[:, i].any()) for i in range(v)]
    labels = [str(int(o)) for o in ops]
    levels = [labels]
    for _ in range(iterations):
        labels = [
            labels[j]
            + "("
            + ",".join(sorted(labels[i] for i in range(v) if matrix[i, j] and present[i]))
            + ")"
            for j in range(v)
        ]
        levels.append(labels)
    return [[lab for lab, p in zip(level, present, strict=True) if p] for level in levels]


def _reference_kernel(a, b):
    def k(x, y):
        return sum(sum(1 for p in xs for q in ys if p == q) for xs, ys in zip(x, y, strict=True))

    return k(a, b) / np.sqrt(k(a, a) * k(b, b))


@pytest.mark.parametrize("space_name", ["nb201", "nb101"])
def test_wl_kernel_equals_exact_relabelling(space_name):
    from jnas.spaces import NB101, NB201

    space = NB201() if space_name == "nb201" else NB101()
    archs = jax.vmap(space.sample)(jax.random.split(jax.random.key(3), 12))
    adj = jax.vmap(space.adjacency)(archs)
    feats = jax.vmap(predictors.wl_features)(adj.matrix, adj.ops)
    kernel = predictors.wl_kernel(adj.matrix.shape[1])(feats, feats)
    refs = [
        _reference_wl(m, o)
        for m, o in zip(np.asarray(adj.matrix), np.asarray(adj.ops), strict=True)
    ]
    expected = np.array([[_reference_kernel(a, b) for b in refs] for a in refs])
    np.testing.assert_allclose(kernel, expected, rtol=1e-6)
    assert np.allclose(np.diag(kernel), 1.0)
    assert len(np.unique(np.round(expected, 6))) > 5  # the pairs differ: not a trivial check
    # labels are 24-bit integers, exact in the float32 history buffers (absent nodes: -1)
    f = np.asarray(feats)
    assert f.max() < 2**24
    np.testing.assert_array_equal(f, np.round(f))
    # PSD, and so is the GP's exp(-(1 - k) / lengthscale): its Gram matrix factorises
    assert np.linalg.eigvalsh(np.asarray(kernel, np.float64)).min() > -1e-5
    distance = predictors.wl_distance(adj.matrix.shape[1])
    np.testing.assert_allclose(distance(feats, feats), 1.0 - expected, rtol=1e-6, atol=1e-6)
    gp = predictors.gp_fit(feats, jnp.arange(12.0), jnp.ones(12, bool), (0.2, 1.0),
                           distance=distance)  # fmt: skip
    assert bool(jnp.all(jnp.isfinite(gp.chol)))


def test_mixed_kernel_gp_matches_a_numpy_product_kernel_gp():
    """Encoding columns under the Hamming kernel times an RBF on the last (continuous)
    column, against a NumPy GP with the chosen hyper-parameters; a target that only the
    feature explains is predicted far better than by the encoding alone."""
    x = encodings(0, 40)
    rng = np.random.default_rng(0)
    f = rng.normal(size=(40, 1))
    y = np.sin(2 * f[:, 0])  # the encoding says nothing about it
    xt, ft = encodings(5, 15), rng.normal(size=(15, 1))
    gp = predictors.gp_fit(np.hstack([x, f]), y, np.ones(40, bool), num_features=1)
    ls, lf, noise = float(gp.lengthscale), float(gp.feature_lengthscale), float(gp.noise)

    def kern(a, fa, b, fb):
        ham = np.abs(a[:, None] - b[None]).sum(-1)
        return np.exp(-ham / ls - ((fa[:, None] - fb[None]) ** 2).sum(-1) / lf)

    mean, scale = y.mean(), y.std() + 1e-6
    k = kern(x, f, x, f) + noise * np.eye(40)
    ks = kern(xt, ft, x, f)
    ref_mean = mean + scale * ks @ np.linalg.solve(k, (y - mean) / scale)
    ref_std = scale * np.sqrt(
        np.maximum(1 - np.einsum("ij,ji->i", ks, np.linalg.solve(k, ks.T)), 1e-12)
    )
    mu, sd = predictors.gp_predict(gp, np.hstack([xt, ft]))
    np.testing.assert_allclose(mu, ref_mean, rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(sd, ref_std, rtol=1e-2, atol=2e-3)
    yt = np.sin(2 * ft[:, 0])
    plain = predictors.gp_predict(predictors.gp_fit(x, y, np.ones(40, bool)), xt)[0]
    assert np.mean((mu - yt) ** 2) < 0.2 * np.mean((plain - yt) ** 2)
    with pytest.raises(ValueError, match="num_features"):
        predictors.gp_fit(x, y, np.ones(40, bool), num_features=-1)


def test_mixed_kernel_hyper_parameters_maximise_the_numpy_marginal_likelihood():
    """With continuous columns the feature lengthscale is searched with the others: the
    chosen (lengthscale, noise, feature lengthscale) is the NumPy argmax of the log marginal
    likelihood over the default 7 x 3 x 4 grid, and a faster-varying target picks a shorter
    feature lengthscale (sin 2f: 1, sin 6f: 0.25)."""
    import itertools

    from jnas.predictors._gp import (
        DEFAULT_FEATURE_LENGTHSCALES,
        DEFAULT_LENGTHSCALES,
        DEFAULT_NOISES,
    )

    x = encodings(0, 40)
    f = np.random.default_rng(0).normal(size=(40, 1))
    d = np.abs(x[:, None] - x[None]).sum(-1)
    d_feat = np.square(f - f.T)
    grid = (DEFAULT_LENGTHSCALES, DEFAULT_NOISES, DEFAULT_FEATURE_LENGTHSCALES)
    chosen = []
    for freq in (2.0, 6.0):
        y = np.sin(freq * f[:, 0])
        z = (y - y.mean()) / (y.std() + 1e-6)
        scores = {}
        for ls, noise, lf in itertools.product(*grid):
            k = np.exp(-d / ls - d_feat / lf) + noise * np.eye(40)
            scores[ls, noise, lf] = -0.5 * z @ np.linalg.solve(k, z) - 0.5 * np.linalg.slogdet(k)[1]
        best = max(scores, key=scores.get)
        assert scores[best] - sorted(scores.values())[-2] > 1.0  # a clear winner
        gp = predictors.gp_fit(np.hstack([x, f]), y, np.ones(40, bool), num_features=1)
        got = (float(gp.lengthscale), float(gp.noise), float(gp.feature_lengthscale))
        assert got == pytest.approx(best)
        chosen.append(best[2])
    assert chosen == [1.0, 0.25]
    # and the prediction uses the chosen feature lengthscale (sin 6f's 0.25), against NumPy
    ls, noise, lf = best
    xt, ft = encodings(5, 10), np.random.default_rng(1).normal(size=(10, 1))
    k = np.exp(-d / ls - d_feat / lf) + noise * np.eye(40)
    ks = np.exp(-np.abs(xt[:, None] - x[None]).sum(-1) / ls - np.square(ft - f.T) / lf)
    ref = y.mean() + (y.std() + 1e-6) * ks @ np.linalg.solve(k, z)
    mu, _ = predictors.gp_predict(gp, np.hstack([xt, ft]))
    np.testing.assert_allclose(mu, ref, rtol=1e-3, atol=1e-3)


def test_a_grid_point_whose_gram_matrix_is_not_positive_definite_is_never_chosen():
    """A distance that is not negative definite (here rows 0 and 2 far apart, row 1 at
    distance 0 from both) gives an indefinite Gram matrix at short lengthscales: its
    Cholesky factor is NaN, its marginal likelihood scores -inf, and the fit takes the long
    lengthscale whose matrix still factorises, with finite predictions."""

    def distance(a, b):
        return jnp.where(jnp.abs(a[:, None, 0] - b[None, :, 0]) == 2.0, 5.0, 0.0)

    x = np.asarray([[0.0], [1.0], [2.0]], np.float32)
    y = np.asarray([0.0, 1.0, 3.0])
    k = np.exp(-np.asarray(distance(x, x)) / 1.0) + 1e-3 * np.eye(3)
    assert np.linalg.eigvalsh(k).min() < 0  # the short lengthscale's matrix is indefinite
    gp = predictors.gp_fit(x, y, np.ones(3, bool), (1.0, 1e4), (1e-3,), distance)
    assert float(gp.lengthscale) == 1e4
    assert np.isfinite(np.asarray(gp.alpha)).all()
    assert np.isfinite(np.asarray(predictors.gp_predict(gp, x, distance)[0])).all()
