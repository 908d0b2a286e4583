"""Using a meta-learned model: `predict` (logits after adapting to a support set), batch
norm's inference modes, and evaluation on fixed, user-given episodes."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jnas import meta
from jnas.nn import batch_statistics_from
from jnas.nn._ops import batch_stats_norm

WAYS, SHOTS, QUERIES = 3, 2, 4


def _images(key, classes=6, per_class=8):
    return jax.random.uniform(key, (classes, per_class, 28, 28, 1))


def test_maml_predict_is_one_sgd_step_then_the_model():
    """A linear model, MSE, one inner step of 0.1: NumPy re-derivation of the update."""
    learner = meta.maml(meta.mlp((1, 1)), loss="mse", inner_lr=0.1)
    params = learner.init(jax.random.key(0)).params
    rng = np.random.default_rng(0)
    sx, sy, qx = rng.normal(size=(5, 1)), rng.normal(size=(5, 1)), rng.normal(size=(7, 1))
    (w, b) = (np.asarray(x) for x in jax.tree.leaves(params))
    w, b = (w, b) if w.shape == (1, 1) else (b, w)
    err = sx @ w + b - sy  # d/dθ mean((xw + b - y)^2)
    w2, b2 = w - 0.1 * 2 * (sx.T @ err) / 5, b - 0.1 * 2 * err.mean(0)
    out = learner.predict(params, jnp.asarray(sx), jnp.asarray(sy), jnp.asarray(qx))
    np.testing.assert_allclose(out, qx @ w2 + b2, rtol=1e-5, atol=1e-6)


def test_protonet_predict_is_minus_the_squared_distance_to_each_prototype(key):
    embed = meta.conv4(ways=None, channels=8)
    learner = meta.protonet(embed, WAYS)
    params = learner.init(key).params
    task = meta.few_shot(_images(key), WAYS, SHOTS, QUERIES)(jax.random.key(1))
    logits = np.asarray(learner.predict(params, task.support_x, task.support_y, task.query_x))
    zs = np.asarray(embed.apply(params, task.support_x), np.float64)
    zq = np.asarray(embed.apply(params, task.query_x), np.float64)
    protos = np.stack([zs[np.asarray(task.support_y) == c].mean(0) for c in range(WAYS)])
    want = -((zq[:, None] - protos[None]) ** 2).sum(-1)
    np.testing.assert_allclose(logits, want, rtol=1e-4, atol=1e-4)


def test_statistics_from_the_first_rows_match_numpy():
    x = jax.random.normal(jax.random.key(0), (6, 3, 3, 4))
    with batch_statistics_from(2):
        got = batch_stats_norm(x)
    ref = np.asarray(x, np.float64)
    mean = ref[:2].mean((0, 1, 2))
    var = ref[:2].var((0, 1, 2))
    np.testing.assert_allclose(got, (ref - mean) / np.sqrt(var + 1e-5), rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="rows"):
        batch_statistics_from(0).__enter__()


@pytest.mark.parametrize("method", ["maml", "protonet"])
def test_support_statistics_make_a_querys_prediction_independent_of_its_batch(key, method):
    if method == "maml":
        learner = meta.maml(meta.conv4(WAYS, channels=8), inner_lr=0.4)
    else:
        learner = meta.protonet(meta.conv4(ways=None, channels=8), WAYS)
    params = learner.init(key).params
    task = meta.few_shot(_images(key), WAYS, SHOTS, QUERIES)(jax.random.key(2))
    predict = jax.jit(learner.predict, static_argnames=("steps", "norm"))

    def logits(norm, queries):
        return np.asarray(predict(params, task.support_x, task.support_y, queries, norm=norm))

    whole = logits("support", task.query_x)
    np.testing.assert_allclose(logits("support", task.query_x[:3]), whole[:3], atol=2e-4)
    np.testing.assert_allclose(logits("support", task.query_x[5:6]), whole[5:6], atol=2e-4)
    # the transductive mode (the papers') depends on the company a query keeps
    trans = logits("transductive", task.query_x)
    assert np.abs(logits("transductive", task.query_x[:3]) - trans[:3]).max() > 1e-3
    with pytest.raises(ValueError, match="`norm` must be one of"):
        learner.predict(params, task.support_x, task.support_y, task.query_x, norm="running")


def test_evaluation_on_fixed_user_episodes_in_their_order(key):
    learner = meta.maml(meta.conv4(WAYS, channels=8), inner_lr=0.4)
    params = learner.init(key).params
    sample = meta.few_shot(_images(key), WAYS, SHOTS, QUERIES)
    tasks = [sample(jax.random.key(k)) for k in (5, 6, 7)]
    result = meta.evaluate_episodes(learner, params, tasks, norm="support")
    for task, acc in zip(tasks, result["per_task"]["metric_after"], strict=True):
        logits = learner.predict(
            params, task.support_x, task.support_y, task.query_x, norm="support"
        )
        want = float(np.mean(np.argmax(logits, -1) == np.asarray(task.query_y)))
        assert acc == pytest.approx(want)
    mean, _ = result["metric_after"]
    assert mean == pytest.approx(np.mean(result["per_task"]["metric_after"]))
    # a stacked `Task`, two tasks per compiled call: the same values in the same order
    stacked = jax.tree.map(lambda *x: jnp.stack(x), *tasks)
    again = meta.evaluate_episodes(learner, params, stacked, norm="support", per_call=2)
    for name, values in result["per_task"].items():
        np.testing.assert_allclose(again["per_task"][name], values, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="empty"):
        meta.evaluate_episodes(learner, params, [])
    other = meta.few_shot(_images(key), WAYS, SHOTS, QUERIES + 1)(jax.random.key(8))
    with pytest.raises(ValueError, match="same shapes"):
        meta.evaluate_episodes(learner, params, [*tasks, other])
