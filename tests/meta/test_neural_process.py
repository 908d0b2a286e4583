"""Neural processes: the Gaussian NLL and KL against SciPy, the context as a set
(order-free), the heads' bounded transforms and the latent NP's deterministic path
re-derived from their MLPs, the ELBO in NumPy, and learning sinusoid regression from 10
points."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from scipy import stats

from jnas import meta


def test_gaussian_nll_is_scipys_negative_log_density():
    rng = np.random.default_rng(0)
    mean, std, y = rng.normal(size=20), rng.uniform(0.2, 2, 20), rng.normal(size=20)
    want = -np.mean(stats.norm.logpdf(y, mean, std))
    got = meta.gaussian_nll(jnp.asarray(mean), jnp.asarray(std), jnp.asarray(y))
    assert float(got) == pytest.approx(want, rel=1e-5)


def test_the_context_is_a_set_and_std_has_its_floor():
    model = meta.cnp_model(1, 1, width=16)
    learner = meta.cnp(1, 1, width=16)
    params = learner.init(jax.random.key(0)).params
    task = meta.sinusoid(5, 7)(jax.random.key(1))
    mean, std = model.distribution(params, task.support_x, task.support_y, task.query_x)
    perm = jnp.asarray([3, 0, 4, 1, 2])
    mean2, _ = model.distribution(params, task.support_x[perm], task.support_y[perm], task.query_x)
    np.testing.assert_allclose(mean, mean2, rtol=1e-5, atol=1e-6)
    assert bool(jnp.all(std >= 0.1))
    other = task.support_y + 1.0  # another context, another prediction
    mean3, _ = model.distribution(params, task.support_x, other, task.query_x)
    assert not np.allclose(mean, mean3)
    np.testing.assert_allclose(
        learner.predict(params, task.support_x, task.support_y, task.query_x), mean
    )


def test_learns_sinusoids_from_ten_points():
    learner = meta.cnp(1, 1, width=64, optimizer=optax.adam(1e-3))
    sample = meta.sinusoid(10, 10)

    def train(state, key):
        return learner.step(state, meta.task_batch(sample, key, 16))

    state, _ = jax.jit(lambda s, ks: jax.lax.scan(train, s, ks))(
        learner.init(jax.random.key(0)), jax.random.split(jax.random.key(1), 1500)
    )
    assert int(state.step) == 1500  # the state counts its outer steps
    tasks = meta.task_batch(sample, jax.random.key(2), 200)
    out = jax.jit(learner.evaluate)(state.params, tasks)
    # the baseline that ignores x: predict the context's mean y
    base = jnp.mean(jnp.square(tasks.query_y - tasks.support_y.mean(1, keepdims=True)))
    assert float(out["metric_after"].mean()) < 0.3 * float(base)
    before = jax.jit(learner.evaluate)(learner.init(jax.random.key(0)).params, tasks)
    assert float(out["loss_after"].mean()) < float(before["loss_after"].mean()) - 0.5


def test_gaussian_kl_is_a_monte_carlo_kl_by_scipy():
    rng = np.random.default_rng(1)
    mq, sq, mp, sp = (
        rng.normal(size=3),
        rng.uniform(0.3, 1, 3),
        rng.normal(size=3),
        rng.uniform(0.3, 1, 3),
    )
    z = rng.normal(mq, sq, size=(400_000, 3))
    want = np.mean(np.sum(stats.norm.logpdf(z, mq, sq) - stats.norm.logpdf(z, mp, sp), 1))
    got = meta.gaussian_kl(*(jnp.asarray(a) for a in (mq, sq, mp, sp)))
    assert float(got) == pytest.approx(want, rel=0.01)  # MC error ~0.3%


def test_latent_np_elbo_against_numpy_and_the_predictive_likelihood():
    """One step's loss is the ELBO re-derived in NumPy from the model's own pieces (the
    posterior on support + query and on the support, the decoder at the drawn z, SciPy's
    densities); the predictive log-likelihood is log-mean-exp over draws; the context is a
    set; each step draws a new z from the state's key."""
    learner = meta.lnp(1, 1, width=16, latent_dim=4, samples=5)
    model = meta.lnp_model(1, 1, 16, 4)
    state = learner.init(jax.random.key(0))
    params = state.params
    tasks = meta.task_batch(meta.sinusoid(5, 7), jax.random.key(1), 3)
    _, metrics = jax.jit(learner.step)(state, tasks)
    # the step's draws: fold_in(key, step), split per task
    key = jax.random.fold_in(jax.random.wrap_key_data(state.opt_state[1]), 0)
    losses, errors = [], []
    for i, k in enumerate(jax.random.split(key, 3)):
        t = jax.tree.map(lambda a, i=i: a[i], tasks)
        x = np.concatenate([t.support_x, t.query_x])
        y = np.concatenate([t.support_y, t.query_y])
        mu_t, sd_t = (np.asarray(a) for a in model.posterior(params, x, y))
        mu_c, sd_c = (np.asarray(a) for a in model.posterior(params, t.support_x, t.support_y))
        z = mu_t + sd_t * np.asarray(jax.random.normal(k, mu_t.shape))
        mean, std = (np.asarray(a) for a in model.decode(params, z, t.support_x, t.support_y, x))
        nll = -np.sum(stats.norm.logpdf(y, mean, std))
        kl = np.sum(np.log(sd_c / sd_t) + (sd_t**2 + (mu_t - mu_c) ** 2) / (2 * sd_c**2) - 0.5)
        losses.append((nll + kl) / len(x))
        errors.append(np.mean((mean[5:] - np.asarray(t.query_y)) ** 2))  # the 7 query points
    assert float(metrics["loss"]) == pytest.approx(np.mean(losses), rel=1e-4)
    assert float(metrics["metric"]) == pytest.approx(np.mean(errors), rel=1e-4)
    # predictive: log mean_s p(y | z_s), z_s ~ q(z | support), per query point
    t = jax.tree.map(lambda a: a[0], tasks)
    out = learner.evaluate(params, tasks)
    mu, sd = (np.asarray(a) for a in model.posterior(params, t.support_x, t.support_y))
    zs = mu + sd * np.asarray(jax.random.normal(jax.random.key(0), (5, 4)))
    dens = []
    for z in zs:
        mean, std = (
            np.asarray(a) for a in model.decode(params, z, t.support_x, t.support_y, t.query_x)
        )
        dens.append(stats.norm.pdf(t.query_y[:, 0], mean[:, 0], std[:, 0]))
    want = -np.mean(np.log(np.mean(dens, 0)))
    assert float(out["loss_after"][0]) == pytest.approx(want, rel=1e-4)
    perm = jnp.asarray([3, 0, 4, 1, 2])
    a = learner.predict(params, t.support_x, t.support_y, t.query_x)
    b = learner.predict(params, t.support_x[perm], t.support_y[perm], t.query_x)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    s1, _ = jax.jit(learner.step)(state, tasks)
    assert int(s1.step) == 1  # the step count the next draws fold in
    _, m2 = jax.jit(learner.step)(s1._replace(params=params), tasks)  # step 1: new draws
    assert float(m2["loss"]) != pytest.approx(float(metrics["loss"]), rel=1e-6)


def test_latent_np_learns_sinusoids_and_its_draws_differ_where_the_context_is_silent():
    learner = meta.lnp(1, 1, width=64, latent_dim=32, optimizer=optax.adam(1e-3))
    model = meta.lnp_model(1, 1, 64, 32)
    sample = meta.sinusoid(10, 10)

    def train(state, key):
        return learner.step(state, meta.task_batch(sample, key, 16))

    state, _ = jax.jit(lambda s, ks: jax.lax.scan(train, s, ks))(
        learner.init(jax.random.key(0)), jax.random.split(jax.random.key(1), 1500)
    )
    tasks = meta.task_batch(sample, jax.random.key(2), 200)
    out = jax.jit(learner.evaluate)(state.params, tasks)
    base = jnp.mean(jnp.square(tasks.query_y - tasks.support_y.mean(1, keepdims=True)))
    # the latent path alone learns slower than a CNP (Garnelo et al. 2018b's Fig. 3 needs
    # ~10^5 steps): measured 0.61 of the baseline at 1,500 steps
    assert float(out["metric_after"].mean()) < 0.75 * float(base)
    before = jax.jit(learner.evaluate)(learner.init(jax.random.key(0)).params, tasks)
    assert float(out["loss_after"].mean()) < float(before["loss_after"].mean()) - 0.5
    # one context point: the latent draws give visibly different functions (a latent that
    # the decoder ignored would give one)
    t = jax.tree.map(lambda a: a[0], tasks)
    mu, sd = model.posterior(state.params, t.support_x[:1], t.support_y[:1])
    xs = jnp.linspace(-5, 5, 50)[:, None]
    draws = jnp.stack(
        [
            model.decode(
                state.params,
                mu + sd * jax.random.normal(k, mu.shape),
                t.support_x[:1],
                t.support_y[:1],
                xs,
            )[0]
            for k in jax.random.split(jax.random.key(3), 8)
        ]
    )
    assert float(draws.std(0).mean()) > 0.1


def _softplus(a):
    return np.logaddexp(0.0, a)


def test_cnp_head_is_the_papers_bounded_gaussian_of_its_mlps():
    """`distribution` re-derived from the encoder and decoder MLPs: r the mean embedding of
    the context pairs, the decoder's first y_dim outputs the mean and its last y_dim the
    std, 0.1 + 0.9 softplus (Garnelo et al. 2018's bound). x_dim 3 and y_dim 2 so that no
    slice can mistake one for the other."""
    model = meta.cnp_model(3, 2, width=8)
    params = meta.cnp(3, 2, width=8).init(jax.random.key(0)).params
    rng = np.random.default_rng(0)
    sx, sy, qx = rng.normal(size=(5, 3)), rng.normal(size=(5, 2)), rng.normal(size=(4, 3))
    sx, sy, qx = (jnp.asarray(a, jnp.float32) for a in (sx, sy, qx))
    r = np.asarray(model.encoder.apply(params["encoder"], jnp.concatenate([sx, sy], -1))).mean(0)
    raw = np.asarray(model.decoder.apply(params["decoder"], jnp.asarray(np.c_[qx, np.tile(r, (4, 1))])))  # fmt: skip
    mean, std = model.distribution(params, sx, sy, qx)
    np.testing.assert_allclose(mean, raw[:, :2], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(std, 0.1 + 0.9 * _softplus(raw[:, 2:]), rtol=1e-5, atol=1e-6)


def test_latent_np_posterior_and_deterministic_path_against_their_mlps():
    """Garnelo et al. 2018b's q(z | C): the latent head on the mean embedding, sigma =
    0.1 + 0.9 sigmoid; with `deterministic=True` (Kim et al. 2019's NP baseline) the decoder
    also reads the mean of its own encoder's embeddings, after x* and z."""
    model = meta.lnp_model(3, 2, width=8, latent_dim=4, deterministic=True)
    learner = meta.lnp(3, 2, width=8, latent_dim=4, deterministic=True, samples=3)
    params = learner.init(jax.random.key(0)).params
    assert set(params) == {"encoder", "latent", "decoder", "deterministic"}
    rng = np.random.default_rng(1)
    sx, sy, qx = rng.normal(size=(5, 3)), rng.normal(size=(5, 2)), rng.normal(size=(4, 3))
    sx, sy, qx = (jnp.asarray(a, jnp.float32) for a in (sx, sy, qx))
    pairs = jnp.concatenate([sx, sy], -1)
    s = np.asarray(model.encoder.apply(params["encoder"], pairs)).mean(0)
    head = np.asarray(model.latent.apply(params["latent"], jnp.asarray(s)))
    mu, sd = model.posterior(params, sx, sy)
    np.testing.assert_allclose(mu, head[:4], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(sd, 0.1 + 0.9 / (1 + np.exp(-head[4:])), rtol=1e-5, atol=1e-6)
    # `mask` pools only the selected pairs: the posterior of those pairs alone (one of them:
    # the head on that pair's own embedding)
    for keep in ([True, False, True, True, False], [False, False, False, True, False]):
        mask = np.asarray(keep)
        masked = model.posterior(params, sx, sy, jnp.asarray(mask))
        for a, b in zip(masked, model.posterior(params, sx[mask], sy[mask]), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    one = np.asarray(model.encoder.apply(params["encoder"], pairs[3:4]))[0]
    head = np.asarray(model.latent.apply(params["latent"], jnp.asarray(one)))
    np.testing.assert_allclose(
        model.posterior(params, sx[3:4], sy[3:4])[0], head[:4], rtol=1e-5, atol=1e-6
    )
    z = jnp.asarray(rng.normal(size=4), jnp.float32)
    r = np.asarray(model.deterministic.apply(params["deterministic"], pairs)).mean(0)
    inputs = np.c_[qx, np.tile(z, (4, 1)), np.tile(r, (4, 1))]
    raw = np.asarray(model.decoder.apply(params["decoder"], jnp.asarray(inputs)))
    mean, std = model.decode(params, z, sx, sy, qx)
    np.testing.assert_allclose(mean, raw[:, :2], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(std, 0.1 + 0.9 * _softplus(raw[:, 2:]), rtol=1e-5, atol=1e-6)
    # the deterministic path is read: another context moves the prediction at a fixed z
    moved, _ = model.decode(params, z, sx, sy + 1.0, qx)
    assert not np.allclose(moved, mean)
    out = learner.predict(params, sx, sy, qx)
    assert out.shape == (4, 2)
    assert bool(jnp.all(jnp.isfinite(out)))


def _kernels(mlp_params):
    """The kernel shapes of one MLP's parameters, input layer first."""
    flat = jax.tree_util.tree_flatten_with_path(mlp_params)[0]
    return [x.shape for p, x in flat if "kernel" in jax.tree_util.keystr(p)]


def _first_step_moves(learner, tasks):
    """|weight change| of every weight after one step from `init`."""
    state = learner.init(jax.random.key(0))
    new, _ = learner.step(state, tasks)
    pairs = zip(jax.tree.leaves(new.params), jax.tree.leaves(state.params), strict=True)
    return np.concatenate([np.abs(np.ravel(a - b)) for a, b in pairs])


def test_defaults_are_the_papers_1d_regression_setting():
    """Garnelo et al. (2018a, b): x and y of one dimension, 128-unit layers (CNP encoder
    2-128-128-128 and decoder 129-128-128-2; NP latent of 128 from a 128-128-256 head), Adam
    1e-4 (its first step moves a weight by lr * g / |g| = 1e-4), and 32 draws of z for the
    predictive likelihood."""
    key = jax.random.key(0)
    encoder, decoder = [(2, 128), (128, 128), (128, 128)], [(129, 128), (128, 128), (128, 2)]
    cnp = jax.eval_shape(meta.cnp().init, key).params
    assert _kernels(cnp["encoder"]) == encoder
    assert _kernels(cnp["decoder"]) == decoder
    lnp = jax.eval_shape(meta.lnp().init, key).params
    assert _kernels(lnp["encoder"]) == encoder
    assert _kernels(lnp["latent"]) == [(128, 128), (128, 256)]
    assert _kernels(lnp["decoder"]) == decoder
    # the model builders' own defaults are the same
    shapes = lambda m: _kernels(jax.eval_shape(m.init, key))
    cnp_model, lnp_model = meta.cnp_model(), meta.lnp_model()
    assert shapes(cnp_model.encoder) == encoder
    assert shapes(cnp_model.decoder) == decoder
    assert shapes(lnp_model.latent) == [(128, 128), (128, 256)]
    assert shapes(lnp_model.decoder) == decoder
    tasks = meta.task_batch(meta.sinusoid(5, 5), jax.random.key(1), 4)
    for learner in (meta.cnp(width=8), meta.lnp(width=8, latent_dim=4)):
        moved = _first_step_moves(learner, tasks)
        assert (moved > 1e-5).mean() > 0.5  # the rest: ReLU units dead on these tasks
        assert np.median(moved[moved > 1e-5]) == pytest.approx(1e-4, rel=1e-3)
        assert moved.max() < 1.001e-4
    small = {"width": 8, "latent_dim": 4}
    params = meta.lnp(**small).init(key).params

    def nll(samples=None):
        extra = {} if samples is None else {"samples": samples}
        return np.asarray(meta.lnp(**small, **extra).evaluate(params, tasks)["loss_after"])

    np.testing.assert_array_equal(nll(), nll(32))
    assert not np.allclose(nll(), nll(31))


def test_bad_sizes_are_named_and_the_smallest_good_ones_accepted():
    for kwargs, name in (
        ({"width": 0}, "width"),
        ({"x_dim": 1.5}, "x_dim"),
        ({"y_dim": 0}, "y_dim"),
    ):
        with pytest.raises(ValueError, match=f"`{name}`"):
            meta.cnp(**kwargs)
        with pytest.raises(ValueError, match=f"`{name}`"):
            meta.lnp(**kwargs)
    with pytest.raises(ValueError, match="`latent_dim`"):
        meta.lnp(latent_dim=0)
    with pytest.raises(ValueError, match="`samples`"):
        meta.lnp(samples=0)
    meta.cnp(width=1)
    meta.lnp(width=1, latent_dim=1, samples=1)
