"""Conditional neural processes: the Gaussian NLL against SciPy, the context as a set
(order-free), the std floor, and learning sinusoid regression from 10 points."""

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
    tasks = meta.task_batch(sample, jax.random.key(2), 200)
    out = jax.jit(learner.evaluate)(state.params, tasks)
    # the baseline that ignores x: predict the context's mean y
    base = jnp.mean(jnp.square(tasks.query_y - tasks.support_y.mean(1, keepdims=True)))
    assert float(out["metric_after"].mean()) < 0.3 * float(base)
    before = jax.jit(learner.evaluate)(learner.init(jax.random.key(0)).params, tasks)
    assert float(out["loss_after"].mean()) < float(before["loss_after"].mean()) - 0.5
