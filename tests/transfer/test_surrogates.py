"""Meta-learned surrogates (RGPE, FSBO): the GP formulas against NumPy / SciPy re-derivations,
the weights and the meta-learned kernel against what the real NB201 tables say, the searchers
against the table's percentiles."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import scipy.linalg
import scipy.stats

from jnas import bench, search, transfer
from jnas.predictors import gp_fit, spearman
from jnas.spaces import NB201, NB201Arch


@pytest.fixture(scope="module")
def nb201(nasbench_dir):
    table = bench.load_nb201(nasbench_dir)
    tasks = transfer.nb201_tasks(200)
    scores = transfer.suite_scores(table, [tasks[n] for n in ("cifar10", "cifar100")])
    target = np.asarray(table.column("ImageNet16-120", "test_acc", 200))
    return table, scores, target


def _one_hot(space, rows):
    return jax.vmap(lambda a: space.one_hot(a).astype(jnp.float32).ravel())(space.from_index(rows))


def _numpy_embed(kernel, x):
    h = np.asarray(x, np.float64)
    for i, (w, b) in enumerate(kernel.layers):
        h = h @ np.asarray(w, np.float64) + np.asarray(b, np.float64)
        if i < len(kernel.layers) - 1:
            h = np.maximum(h, 0.0)
    return h


def _with_biases(kernel, seed):
    """The kernel with random biases (a fresh one has zero biases, which hide their sign)."""
    keys = jax.random.split(jax.random.key(seed), len(kernel.layers))
    layers = tuple(
        (w, 0.5 * jax.random.normal(k, b.shape))
        for k, (w, b) in zip(keys, kernel.layers, strict=True)
    )
    return kernel._replace(layers=layers)


def test_deep_kernel_nll_is_the_gaussian_marginal_likelihood():
    """Against scipy's multivariate normal on the masked rows' standardised labels
    (covariance s2 exp(-|phi(a) - phi(b)|^2 / 2 l^2) + (noise + 1e-4) I, divided by the
    rows' count): with nonzero biases, with two equal rows and a noise so small that the
    1e-4 jitter is what keeps the matrix positive definite, and with a single row (z = 0,
    the scale the 1e-6 floor)."""
    base = _with_biases(transfer.init_deep_kernel(jax.random.key(0), 6, (8, 4)), 5)
    x = jax.random.normal(jax.random.key(1), (9, 6))
    y = jax.random.normal(jax.random.key(2), (9,)) * 3 + 50
    some = jnp.asarray([1, 1, 0, 1, 1, 1, 0, 1, 1], bool)
    one = jnp.arange(9) == 4
    twin = x.at[5].set(x[3])  # two rows alike: only the noise tells them apart
    cases = [
        (-0.2, float(base.log_noise), some, x, 2e-4),
        (-0.2, -12.0, some, twin, 1e-3),  # an NLL near 2,000: float32's rounding
        (0.3, -1.0, one, x, 2e-4),
    ]
    for log_signal, log_noise, mask, rows, rtol in cases:
        kernel = base._replace(
            log_lengthscale=jnp.asarray(0.3),
            log_signal=jnp.asarray(log_signal),
            log_noise=jnp.asarray(log_noise),
        )
        got = float(transfer.deep_kernel_nll(kernel, rows, y, mask))
        keep = np.asarray(mask)
        phi = _numpy_embed(kernel, np.asarray(rows)[keep])
        d = ((phi[:, None] - phi[None]) ** 2).sum(-1)
        cov = np.exp(log_signal) * np.exp(-0.5 * d / np.exp(0.6))
        cov += (np.exp(log_noise) + 1e-4) * np.eye(keep.sum())
        yk = np.asarray(y, np.float64)[keep]
        z = (yk - yk.mean()) / (yk.std() + 1e-6)
        want = -scipy.stats.multivariate_normal(np.zeros(keep.sum()), cov).logpdf(z) / keep.sum()
        np.testing.assert_allclose(got, want, rtol=rtol, err_msg=str((log_noise, keep.sum())))
    # one row: its label is the mean, the scale the positive 1e-6 floor, the prediction the label
    mean, std = transfer.deep_kernel_predict(base, x, y, one, x[3:5])
    np.testing.assert_allclose(mean, y[4], rtol=1e-6)
    assert float(std[0]) > 0
    assert float(std[0]) < 1e-6


def test_deep_kernel_posterior_is_the_gp_posterior_of_the_masked_rows():
    """`deep_kernel_predict` against the GP posterior written in NumPy on the rows inside the
    mask alone (standardised labels, noise e^log_noise + 1e-4 on the diagonal): mean
    y_mean + y_scale k*^T K^-1 z, std of the latent function y_scale sqrt(s2 - k*^T K^-1 k*)."""
    kernel = _with_biases(transfer.init_deep_kernel(jax.random.key(0), 6, (8, 4)), 6)
    kernel = kernel._replace(log_lengthscale=jnp.asarray(0.3), log_signal=jnp.asarray(0.4))
    x = jax.random.normal(jax.random.key(1), (9, 6))
    y = jax.random.normal(jax.random.key(2), (9,)) * 3 + 50
    mask = jnp.asarray([1, 1, 0, 1, 1, 1, 0, 1, 1], bool)
    new = jax.random.normal(jax.random.key(3), (5, 6))
    mean, std = transfer.deep_kernel_predict(kernel, x, jnp.where(mask, y, 1e4), mask, new)
    keep = np.asarray(mask)
    phi, phi_new = _numpy_embed(kernel, np.asarray(x)[keep]), _numpy_embed(kernel, new)

    def k(a, b):
        d = ((a[:, None] - b[None]) ** 2).sum(-1)
        return np.exp(0.4) * np.exp(-0.5 * d / np.exp(0.6))

    cov = k(phi, phi) + (0.1 + 1e-4) * np.eye(keep.sum())
    yk = np.asarray(y, np.float64)[keep]
    z = (yk - yk.mean()) / (yk.std() + 1e-6)
    ks = k(phi_new, phi)
    want_mean = yk.mean() + (yk.std() + 1e-6) * ks @ np.linalg.solve(cov, z)
    var = np.exp(0.4) - np.einsum("ij,ji->i", ks, np.linalg.solve(cov, ks.T))
    np.testing.assert_allclose(mean, want_mean, rtol=1e-4)
    np.testing.assert_allclose(std, (yk.std() + 1e-6) * np.sqrt(var), rtol=2e-3)
    # FSBO's initial kernel: unit lengthscale and signal, noise 0.1, He-initialised layers
    fresh = transfer.init_deep_kernel(jax.random.key(4), 2000, (400, 3))
    assert float(fresh.log_lengthscale) == float(fresh.log_signal) == 0.0
    assert float(jnp.exp(fresh.log_noise)) == pytest.approx(0.1)
    assert [w.shape for w, _ in fresh.layers] == [(2000, 400), (400, 3)]
    assert float(jnp.std(fresh.layers[0][0])) == pytest.approx(np.sqrt(2 / 2000), rel=0.01)
    assert float(jnp.abs(fresh.layers[0][1]).max()) == 0.0
    default = transfer.init_deep_kernel(jax.random.key(4), 5)  # two hidden layers of 32
    assert [w.shape for w, _ in default.layers] == [(5, 32), (32, 32)]


def _adam_reference(loss, params, steps, learning_rate):
    """`steps` Adam steps written as a Python loop over optax (the per-step losses too)."""
    opt = optax.adam(learning_rate)
    state, grad, values = opt.init(params), jax.jit(jax.value_and_grad(loss)), []
    for _ in range(steps):
        value, g = grad(params)
        updates, state = opt.update(g, state, params)
        params = optax.apply_updates(params, updates)
        values.append(float(value))
    return params, np.asarray(values)


def _assert_kernels_close(a, b):
    for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(u, v, rtol=1e-4, atol=1e-6)


def test_fine_tuning_is_fifty_adam_steps_on_the_targets_nll():
    """FSBO's fine-tuning on the target: by default 50 Adam steps of learning rate 1e-3 on
    `deep_kernel_nll` of the rows in the mask, as a Python loop over optax."""
    kernel = _with_biases(transfer.init_deep_kernel(jax.random.key(0), 6, (8, 4)), 7)
    x = jax.random.normal(jax.random.key(1), (9, 6))
    y = jax.random.normal(jax.random.key(2), (9,)) * 3 + 50
    mask = jnp.arange(9) < 7
    got = transfer.fit_deep_kernel(kernel, x, y, mask)
    want, _ = _adam_reference(lambda p: transfer.deep_kernel_nll(p, x, y, mask), kernel, 50, 1e-3)
    _assert_kernels_close(got, want)


def test_meta_training_is_adam_on_the_mean_nll_over_the_source_tasks(tmp_path):
    """FSBO's meta-training: Adam (1e-3 by default) on the mean over the tasks of each task's
    `deep_kernel_nll`, from `init_deep_kernel` (hidden (32, 32) by default) of the key's first
    split. With the default batch of 50 equal to the tasks' 50 points the draw is every row
    (the NLL ignores their order), so a full-batch loop is the reference; a batch equal to
    the points is allowed. The run folder's checkpoints come every 100 steps by default and
    a finished folder is never overwritten unless resumed."""
    x = jax.random.normal(jax.random.key(1), (2, 50, 4))
    y = jax.random.normal(jax.random.key(2), (2, 50)) * 2 + 10
    data = transfer.SourceData(x, y)
    key = jax.random.key(3)
    kernel, losses = transfer.meta_train_deep_kernel(key, data, steps=3)
    assert [w.shape for w, _ in kernel.layers] == [(4, 32), (32, 32)]
    start = transfer.init_deep_kernel(jax.random.split(key)[0], 4, (32, 32))
    everything = jnp.ones(50, bool)

    def mean_nll(p):
        return jnp.mean(
            jnp.stack([transfer.deep_kernel_nll(p, x[t], y[t], everything) for t in range(2)])
        )

    want, want_losses = _adam_reference(mean_nll, start, 3, 1e-3)
    np.testing.assert_allclose(losses, want_losses, rtol=1e-5)
    _assert_kernels_close(kernel, want)
    # a smaller batch: step i draws 20 distinct rows of task t with split(fold_in(k, i))[t]
    _, losses = transfer.meta_train_deep_kernel(key, data, steps=2, batch=20, learning_rate=0.0)
    k_steps = jax.random.split(key)[1]
    for i in range(2):
        keys = jax.random.split(jax.random.fold_in(k_steps, i), 2)
        rows = [jax.random.choice(keys[t], 50, (20,), replace=False) for t in range(2)]
        assert all(len(set(np.asarray(r).tolist())) == 20 for r in rows)
        part = [
            transfer.deep_kernel_nll(start, x[t][rows[t]], y[t][rows[t]], everything[:20])
            for t in range(2)
        ]
        np.testing.assert_allclose(losses[i], np.mean(part), rtol=1e-5)
    with pytest.raises(ValueError, match=r"checkpoint interval \(100\)"):
        transfer.meta_train_deep_kernel(key, data, steps=150, out=tmp_path / "run")
    transfer.meta_train_deep_kernel(key, data, steps=1, out=tmp_path / "run")
    with pytest.raises(FileExistsError, match="already holds a run"):
        transfer.meta_train_deep_kernel(key, data, steps=1, out=tmp_path / "run")


def test_fsbo_asks_one_cell_at_a_time_from_a_history_of_100_by_default():
    """`fsbo`'s defaults: batches of one and a history buffer of 100 evaluations of the
    one-hot cell; the model from the first result on, expected improvement over 100
    candidates mutated from the 10 best after 50 Adam steps at 1e-3 of fine-tuning, asked
    as the same settings written out ask (on 6 keys after 12 results told). One fine-tuning
    step more (51) picks the same cells: not resolved; 25 steps, a doubled rate, UCB, a
    second initial result, 60 candidates or 11 parents are."""
    space = NB201()
    kernel = transfer.init_deep_kernel(jax.random.key(0), 30)
    searcher = transfer.fsbo(space, kernel)
    assert searcher.batch_size == 1
    state = jax.eval_shape(searcher.init, jax.random.key(1))
    assert state.x.shape == (100, 30)
    assert state.y.shape == (100,)
    written = transfer.fsbo(
        space, kernel, finetune_steps=50, finetune_lr=1e-3, encoding="one_hot",
        acquisition_fn="ei", batch_size=1, num_init=1, num_candidates=100, num_parents=10,
        max_points=100,
    )  # fmt: skip
    archs = jax.vmap(space.sample)(jax.random.split(jax.random.key(7), 12))
    fitness = jnp.sum(jnp.asarray([[0, 1, 2, 4, 1]] * 6, jnp.float32)[jnp.arange(6), archs.ops], -1)
    asked = []
    for s in (searcher, written):
        ask, tell, keys = jax.jit(s.ask), jax.jit(s.tell), jax.random.split(jax.random.key(3), 6)
        state = s.init(jax.random.key(1))
        state = tell(state, jax.tree.map(lambda a: a[:1], archs), fitness[:1])
        asked.append(np.asarray(ask(keys[0], state)[0].ops))  # one result: the model already
        for i in range(1, 12):
            state = tell(
                state, jax.tree.map(lambda a, i=i: a[i : i + 1], archs), fitness[i : i + 1]
            )
        asked.append([np.asarray(ask(k, state)[0].ops) for k in keys])
    for default, spelled in zip(asked[:2], asked[2:], strict=True):
        np.testing.assert_array_equal(default, spelled)


def test_a_deep_kernel_file_whose_layers_do_not_chain_is_refused(tmp_path):
    """`load_deep_kernel` checks every layer's input width against the one before it."""
    kernel = transfer.init_deep_kernel(jax.random.key(0), 6, (8, 4, 2))
    transfer.save_deep_kernel(kernel, tmp_path / "k.npz")
    back = transfer.load_deep_kernel(tmp_path / "k.npz")  # widths 6-8-4-2 chain
    assert [w.shape for w, _ in back.layers] == [(6, 8), (8, 4), (4, 2)]
    with np.load(tmp_path / "k.npz") as f:
        arrays = dict(f)
    for layer in (1, 2):
        broken = dict(arrays, **{f"w{layer}": arrays[f"w{layer}"][1:]})
        np.savez(tmp_path / "broken.npz", **broken)
        with pytest.raises(ValueError, match=f"layer {layer}'s input width does not chain"):
            transfer.load_deep_kernel(tmp_path / "broken.npz")


def test_loo_posterior_matches_refits_without_each_point(nb201):
    """Rasmussen & Williams eq. 5.12 against explicit refits, on a chain of cells each one op
    from the last (random rows sit far apart, K is then nearly diagonal and a transposed
    factor or 1 / [K^-1]_ii inverted would pass)."""
    table, _, target = nb201
    ops = np.zeros((12, 6), np.int8)
    for i in range(1, 12):
        ops[i] = ops[i - 1]
        ops[i, i % 6] = (ops[i, i % 6] + 1 + i // 6) % 5
    rows = table.space.index(NB201Arch(ops=jnp.asarray(ops)))
    assert len(set(np.asarray(rows).tolist())) == 12
    x, y = _one_hot(table.space, rows), jnp.asarray(target)[rows]
    mask = jnp.arange(12) < 10  # two rows outside the mask
    gp = gp_fit(x, jnp.where(mask, y, 0.0), mask)
    mean, std = transfer.loo_posterior(gp)
    xs, z = np.asarray(x, np.float64)[:10], (np.asarray(y[:10]) - gp.mean) / gp.scale
    d = xs.sum(1)[:, None] + xs.sum(1)[None] - 2 * xs @ xs.T
    k = np.exp(-d / float(gp.lengthscale)) + float(gp.noise) * np.eye(10)
    for i in range(10):
        o = np.arange(10) != i
        sol = np.linalg.solve(k[o][:, o], np.stack([z[o], k[o, i]], 1))
        np.testing.assert_allclose(mean[i], k[i, o] @ sol[:, 0], atol=2e-3)
        np.testing.assert_allclose(std[i] ** 2, k[i, i] - k[i, o] @ sol[:, 1], rtol=2e-3)


def test_ranking_losses_count_misordered_pairs():
    f = jax.random.normal(jax.random.key(4), (3, 7))
    y = jax.random.normal(jax.random.key(5), (7,))
    mask = jnp.asarray([1, 1, 1, 0, 1, 1, 1], bool)
    want = [
        sum(
            (f[s, i] < f[s, j]) != (y[i] < y[j])
            for i in range(7)
            for j in range(7)
            if mask[i] and mask[j]
        )
        for s in range(3)
    ]
    np.testing.assert_array_equal(transfer.ranking_losses(f, y, mask), want)


def test_rgpe_weights_trust_the_source_that_orders_the_target(nb201):
    table, _, target = nb201
    space = table.space
    rows = jax.random.choice(jax.random.key(6), 15625, (100,), replace=False)
    x = _one_hot(space, rows)
    y = jnp.asarray(target)[rows]
    good, reversed_ = transfer.SourceData(jnp.stack([x, x]), jnp.stack([y, -y]))
    sources = transfer.fit_source_gps(transfer.SourceData(good, reversed_))
    seen = jax.random.choice(jax.random.key(7), 100, (30,), replace=False)
    xt = jnp.zeros((40, x.shape[1])).at[:30].set(x[seen])
    yt = jnp.zeros(40).at[:30].set(y[seen])
    mask = jnp.arange(40) < 30
    tgt = gp_fit(xt, yt, mask)
    w = transfer.rgpe_weights(jax.random.key(8), sources, tgt, xt, yt, mask, joint=False)
    assert w.shape == (3,)
    assert float(w.sum()) == pytest.approx(1.0)
    assert float(w[0]) > 0.9  # a source that has seen these very cells ranks them best
    assert float(w[1]) == 0.0  # the reversed one is dropped
    wj = transfer.rgpe_weights(jax.random.key(8), sources, tgt, xt, yt, mask)
    assert float(wj[0]) > 0.9  # the paper's joint draws (the default) agree here
    assert float(wj[1]) == 0.0
    # with no target evaluations, no model ranks better: ties broken at random
    w0 = transfer.rgpe_weights(jax.random.key(8), sources, tgt, xt, yt, jnp.zeros(40, bool))
    assert np.all(np.asarray(w0) > 0.2)


def test_rgpe_source_draws_are_joint_posterior_draws(nb201):
    """A source's draws at the target's rows against the GP posterior written in NumPy
    (mean k* alpha, covariance K** - k* K^-1 k*^T): their empirical mean and covariance, and
    a row asked twice draws the same value (marginal draws would be uncorrelated)."""
    table, _, target = nb201
    rows = np.asarray(jax.random.choice(jax.random.key(1), 15625, (80,), replace=False))
    x = _one_hot(table.space, jnp.asarray(rows[:60]))
    sources = transfer.fit_source_gps(transfer.SourceData(x[None], jnp.asarray(target)[rows[:60]][None]))  # fmt: skip
    asked = np.concatenate([rows[58:80], rows[60:62]])  # 2 seen, 20 unseen, 2 asked twice
    xt = np.asarray(_one_hot(table.space, jnp.asarray(asked)), np.float64)
    draws = np.asarray(transfer.source_draws(jax.random.key(2), sources, jnp.asarray(xt), 20_000))
    assert draws.shape == (1, 20_000, 24)
    xs, ls = np.asarray(x, np.float64), float(sources.lengthscale[0])
    kern = lambda a, b: np.exp(-np.abs(a[:, None] - b[None]).sum(-1) / ls)
    k_star = kern(xt, xs)
    mean = k_star @ np.asarray(sources.alpha[0], np.float64)
    cov = kern(xt, xt) - k_star @ np.asarray(sources.kinv[0], np.float64) @ k_star.T
    np.testing.assert_allclose(draws[0].mean(0), mean, atol=0.03)
    np.testing.assert_allclose(np.cov(draws[0].T), cov, atol=0.04)
    assert np.corrcoef(draws[0, :, 2], draws[0, :, 22])[0, 1] > 0.99
    assert np.corrcoef(draws[0, :, 3], draws[0, :, 23])[0, 1] > 0.99
    assert np.diag(cov)[:2].max() < 0.5 * np.diag(cov)[2:].min()  # seen rows: surer
    # the marginal draws (`joint=False`) read the same posterior's mean and std per row
    from jnas.transfer._surrogates import _source_predict

    m, sd = _source_predict(jax.tree.map(lambda a: a[0], sources), jnp.asarray(xt))
    np.testing.assert_allclose(m, mean, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(np.square(sd), np.diag(cov), rtol=1e-3, atol=1e-4)


def test_rgpe_ensemble_is_the_weighted_sum_of_each_gps_standardised_posterior(nb201):
    """Feurer et al. 2018, eq. 2: mean sum_i w_i mu_i, variance sum_i w_i^2 sigma_i^2, each
    GP's posterior (the target's in its standardised labels) written in NumPy."""
    table, scores, target = nb201
    space = table.space
    rng = np.random.default_rng(2)
    rows = rng.choice(15625, 40, replace=False)
    x = _one_hot(space, jnp.asarray(rows))
    src = np.nan_to_num(np.asarray(scores)[:, rows], nan=0.0)
    sources = transfer.fit_source_gps(transfer.SourceData(jnp.stack([x[:20], x[20:]]), jnp.asarray(np.stack([src[0, :20], src[1, 20:]]))))  # fmt: skip
    mask = jnp.arange(12) < 9
    yt = jnp.asarray(target[rows[:12]] * 3.0 + 7.0)
    tgt = gp_fit(x[:12], jnp.where(mask, yt, 0.0), mask)
    w = jnp.asarray([0.2, 0.5, 0.3])
    cand = x[25:35]
    mean, std = transfer.rgpe_predict(sources, tgt, w, cand)

    def posterior(xs, z, ls, noise, kinv=None):  # latent mean and variance at `cand`
        kern = lambda a, b: np.exp(-np.abs(a[:, None] - b[None]).sum(-1) / ls)
        xs, c = np.asarray(xs, np.float64), np.asarray(cand, np.float64)
        kinv = np.linalg.inv(kern(xs, xs) + noise * np.eye(len(xs))) if kinv is None else kinv
        ks = kern(c, xs)
        return ks @ kinv @ z, 1.0 - np.einsum("ij,jk,ik->i", ks, kinv, ks)

    parts = []
    for i, (xs, ys) in enumerate(((x[:20], src[0, :20]), (x[20:], src[1, 20:]))):
        z = (ys - ys.mean()) / (ys.std() + 1e-6)
        kinv = np.asarray(sources.kinv[i], np.float64)
        parts.append(posterior(xs, z, float(sources.lengthscale[i]), 0.0, kinv))
    ym = np.asarray(yt, np.float64)[:9]
    zt = (ym - ym.mean()) / (ym.std() + 1e-6)
    parts.append(posterior(x[:9], zt, float(tgt.lengthscale), float(tgt.noise)))
    want_mean = sum(wi * m for wi, (m, _) in zip(np.asarray(w), parts, strict=True))
    want_var = sum(wi**2 * v for wi, (_, v) in zip(np.asarray(w), parts, strict=True))
    np.testing.assert_allclose(mean, want_mean, rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(std, np.sqrt(want_var), rtol=1e-3, atol=1e-3)


def test_psd_sqrt_equals_scipy_sqrtm():
    """Newton-Schulz against SciPy's Schur-based square root, of a full-rank and a rank-5
    matrix (both with psd_sqrt's 1e-4 jitter)."""
    from jnas.transfer._surrogates import psd_sqrt

    rng = np.random.default_rng(0)
    for rank in (40, 5):
        b = rng.normal(size=(40, rank))
        a = b @ b.T / rank
        want = scipy.linalg.sqrtm(a + 1e-4 * np.trace(a) / 40 * np.eye(40)).real
        got = np.asarray(jax.jit(psd_sqrt)(jnp.asarray(a, jnp.float32)))
        np.testing.assert_allclose(got, want, atol=1e-4)


def test_source_data_from_earlier_searches(nb201):
    """`source_data(searcher=)` keeps what a search on each source evaluated, in order: with a
    warm start the given cells come first (decoded from the encodings, labels = the table's
    scores there); evolution's evaluations sit high in the ranking, random rows do not."""
    table, scores, _ = nb201
    space = table.space
    given = jnp.asarray([5, 77, 15624, 300])
    searcher = search.warm_start(search.random_search(space), space, space.from_index(given))
    data = transfer.source_data(jax.random.key(0), space, scores, num_points=10, searcher=searcher)
    ops = np.asarray(data.x).reshape(2, 10, 6, 5).argmax(-1)  # one-hot -> ops
    rows = np.asarray(space.index(NB201Arch(ops=jnp.asarray(ops, jnp.int8))))
    np.testing.assert_array_equal(rows[:, :4], np.broadcast_to(np.asarray(given), (2, 4)))
    s = np.asarray(scores)
    lo = np.nanmin(s, 1, keepdims=True)
    np.testing.assert_allclose(np.asarray(data.y), np.where(np.isnan(np.take_along_axis(s, rows, 1)), lo, np.take_along_axis(s, rows, 1)))  # fmt: skip
    evo = transfer.source_data(jax.random.key(1), space, scores, num_points=100, searcher=search.regularized_evolution(space))  # fmt: skip
    rand = transfer.source_data(jax.random.key(1), space, scores, num_points=100)

    def median_percentile(d):
        return np.median((np.nan_to_num(s, nan=-1.0)[:, None, :] < np.asarray(d.y)[:, :, None]).mean(-1))  # fmt: skip

    assert median_percentile(evo) > 0.75 > 0.6 > median_percentile(rand)  # measured 0.84, 0.42


def test_fsbo_meta_training_transfers_to_an_unseen_dataset(nb201):
    table, scores, target = nb201
    space = table.space
    data = transfer.source_data(jax.random.key(9), space, scores, num_points=100)
    assert data.x.shape == (2, 100, 30)
    assert np.all(np.isin(np.asarray(data.y[1]), np.asarray(scores[1])))
    kernel, losses = transfer.meta_train_deep_kernel(jax.random.key(10), data, steps=250)
    assert float(losses[-50:].mean()) < float(losses[:50].mean()) - 0.5
    rows = jax.random.choice(jax.random.key(11), 15625, (10,), replace=False)
    x10, y10, m = _one_hot(space, rows), jnp.asarray(target)[rows], jnp.ones(10, bool)
    probe = jax.random.choice(jax.random.key(12), 15625, (2000,), replace=False)
    truth = jnp.asarray(target)[probe]
    rho = {}
    fresh = transfer.init_deep_kernel(jax.random.key(10), 30)
    for name, k in (("meta", kernel), ("fresh", fresh)):
        tuned = transfer.fit_deep_kernel(k, x10, y10, m, steps=20)
        mean, _ = transfer.deep_kernel_predict(tuned, x10, y10, m, _one_hot(space, probe))
        rho[name] = float(spearman(mean, truth))
    assert rho["meta"] > 0.4, rho
    assert rho["meta"] > rho["fresh"] + 0.2, rho


def test_rgpe_finds_top_cells_of_an_unseen_dataset_in_few_evaluations(nb201):
    """ImageNet16-120 searched with GPs of CIFAR-10 / CIFAR-100 evaluations: after ~5
    evaluations most incumbents lie above the table's 97th percentile (5 of 6 seeds; with the
    sources' labels shuffled, 1 of 6); random search has a 1 - 0.97^5 = 14% chance a seed."""
    table, scores, target = nb201
    space = table.space
    data = transfer.source_data(jax.random.key(13), space, scores, num_points=60)
    obj = transfer.nb201_tasks(12)["ImageNet16-120"].objective(table)
    sim = bench.simulate(
        transfer.rgpe(space, data, num_samples=64, max_points=16),
        obj,
        key=jax.random.key(14),
        num_seeds=6,
        budget_s=3_500.0,
    )
    final = sim.report(table, dataset="ImageNet16-120", metric="test_acc", epochs=200)[:, -1]
    assert float(np.mean(sim.num_evals)) <= 8
    assert np.mean(final > np.nanpercentile(target, 97)) >= 0.6, final


def test_fsbo_searches_under_vmap_and_its_kernel_round_trips(nb201, tmp_path):
    table, scores, _ = nb201
    space = table.space
    data = transfer.source_data(jax.random.key(15), space, scores, num_points=40)
    kernel, _ = transfer.meta_train_deep_kernel(jax.random.key(16), data, steps=20, batch=20)
    transfer.save_deep_kernel(kernel, tmp_path / "k.npz")
    back = transfer.load_deep_kernel(tmp_path / "k.npz")
    for a, b in zip(jax.tree.leaves(kernel), jax.tree.leaves(back), strict=True):
        np.testing.assert_array_equal(a, b)
    searcher = search.warm_start(
        transfer.fsbo(space, back, finetune_steps=3, max_points=12),
        space,
        space.from_index(jnp.asarray([0, 1])),
    )
    obj = transfer.nb201_tasks(12)["cifar100"].objective(table)
    sim = bench.simulate(searcher, obj, key=jax.random.key(17), num_seeds=3, budget_s=3_000.0)
    assert np.all(np.asarray(sim.num_evals) >= 4)
    assert np.all(np.isfinite(sim.best_fitness[:, -1]))


def test_bad_input_is_named(nb201):
    table, scores, _ = nb201
    space = table.space
    wide = transfer.SourceData(jnp.zeros((2, 5, 31)), jnp.zeros((2, 5)))
    with pytest.raises(ValueError, match=r"rgpe: `sources` must be SourceData\(x \[T, M, 30\]"):
        transfer.rgpe(space, wide)
    nan = transfer.SourceData(jnp.zeros((2, 5, 30)), jnp.full((2, 5), jnp.nan))
    with pytest.raises(ValueError, match=r"rgpe: `sources.y` holds non-finite values"):
        transfer.rgpe(space, nan)
    with pytest.raises(ValueError, match="fsbo: `kernel` takes 31-wide encodings"):
        transfer.fsbo(space, transfer.init_deep_kernel(jax.random.key(0), 31))
    with pytest.raises(ValueError, match="`num_points` 20000 exceeds"):
        transfer.source_data(jax.random.key(0), space, scores, num_points=20_000)
    with pytest.raises(ValueError, match="`batch` 50 exceeds the sources' 5 points"):
        transfer.meta_train_deep_kernel(
            jax.random.key(0), transfer.SourceData(jnp.zeros((2, 5, 30)), jnp.zeros((2, 5)))
        )
