"""The papers' settings that `jnas meta` runs (`jnas.recipes.meta.make_learner`), against
the update rules written out by hand with `jax.grad`: MAML's inner SGD (0.01 and one step
on the sinusoid; 0.4, one step in training and three at test on Omniglot, Finn et al.
2017), Reptile's five inner SGD steps on the sinusoid and its outer step size annealed
linearly from 1 to 0 (Nichol et al. 2018); the metric methods' relation module, cosine
scale and Adam 1e-3; the `jnas.meta` factories' default loops."""

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jnas import meta
from jnas.recipes.meta import make_learner


def _sgd(loss, params, lr, steps):
    for _ in range(steps):
        grads = jax.grad(loss)(params)
        params = jax.tree.map(lambda p, g: p - lr * g, params, grads)
    return params


def _assert_close(a, b, **tol):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(x, y, **tol)


def _one(task):
    return jax.tree.map(lambda a: a[None], task)


def _moved(before, after):
    """|after - before| of every weight, flattened."""
    pairs = zip(jax.tree.leaves(after), jax.tree.leaves(before), strict=True)
    return np.concatenate([np.abs(np.ravel(a - b)) for a, b in pairs])


def test_maml_on_the_sinusoid_adapts_by_one_sgd_step_of_001(key):
    learner = make_learner("maml", image=False, ways=1, steps=10)
    model = meta.mlp()
    params = learner.init(key).params
    task = meta.sinusoid(10, 10)(jax.random.key(1))

    def support(p):
        return jnp.mean(jnp.square(model.apply(p, task.support_x) - task.support_y))

    want = _sgd(support, params, 0.01, 1)
    _assert_close(learner.adapt(params, task), want, rtol=1e-5, atol=1e-6)
    after = learner.evaluate(params, _one(task))["loss_after"][0]
    query = jnp.mean(jnp.square(model.apply(want, task.query_x) - task.query_y))
    np.testing.assert_allclose(after, query, rtol=1e-5)


def test_maml_on_omniglot_adapts_by_sgd_04_once_in_training_and_three_times_at_test(key):
    ways, channels = 3, 4
    learner = make_learner("maml", image=True, ways=ways, steps=10, channels=channels)
    model = meta.conv4(ways, channels=channels)
    params = learner.init(key).params
    images = jax.random.normal(jax.random.key(2), (5, 4, 28, 28, 1))
    task = meta.few_shot(images, ways, 1, 2)(jax.random.key(3))

    def support(p):
        logits = model.apply(p, task.support_x)
        return optax.softmax_cross_entropy_with_integer_labels(logits, task.support_y).mean()

    _assert_close(learner.adapt(params, task), _sgd(support, params, 0.4, 1), rtol=2e-4,
                  atol=1e-5)  # fmt: skip
    three = _sgd(support, params, 0.4, 3)
    got = learner.predict(params, task.support_x, task.support_y, task.query_x)
    np.testing.assert_allclose(got, model.apply(three, task.query_x), rtol=2e-3, atol=1e-4)


def test_reptile_on_the_sinusoid_steps_to_the_adapted_weights_at_a_rate_from_1_to_0(key):
    """Five inner SGD steps of 0.01; the outer SGD step size is 1 at step 0 (θ becomes the
    one task's adapted weights) and 1 - 1/4 at step 1 of 4."""
    learner = make_learner("reptile", image=False, ways=1, steps=4)
    model = meta.mlp()
    state = learner.init(key)
    tasks = [meta.sinusoid(10, 10)(jax.random.key(k)) for k in (4, 5)]

    def support(task):
        return lambda p: jnp.mean(jnp.square(model.apply(p, task.support_x) - task.support_y))

    theta = state.params
    for task, rate in zip(tasks, (1.0, 0.75), strict=True):
        phi = _sgd(support(task), theta, 0.01, 5)
        _assert_close(learner.adapt(theta, task), phi, rtol=1e-5, atol=1e-6)
        theta = jax.tree.map(lambda t, p, r=rate: t + r * (p - t), theta, phi)
        state, _ = learner.step(state, _one(task))
        _assert_close(state.params, theta, rtol=1e-4, atol=1e-6)


def test_metric_methods_settings(key):
    """Relation networks' relation module has 8 hidden units (on the pooled embedding pair,
    and in the convolutional module on the 2x2 maps); the scaled matching network's cosine
    scale starts at 10 (TADAM); the metric methods' Adam 1e-3 moves each weight by 1e-3 on
    its first step (Adam's first update is lr * g / (|g| + eps))."""
    channels, ways = 4, 3

    def params(method):
        return (
            make_learner(method, image=True, ways=ways, steps=1, channels=channels).init(key).params
        )

    pooled = params("relation_net")["extra"]["layers"]
    assert pooled[0]["kernel"].shape == (2 * channels, 8)
    assert pooled[1]["kernel"].shape == (8, 1)
    conv = params("relation_net_conv")["extra"]
    assert conv["fc1"]["kernel"].shape[1] == 8
    assert conv["fc2"]["kernel"].shape == (8, 1)
    np.testing.assert_allclose(np.exp(params("matching_net_scaled")["extra"]["log_scale"]), 10.0,
                               rtol=1e-6)  # fmt: skip
    learner = make_learner("protonet", image=True, ways=ways, steps=1, channels=channels)
    images = jax.random.normal(jax.random.key(2), (5, 4, 28, 28, 1))
    tasks = meta.task_batch(meta.few_shot(images, ways, 1, 2), jax.random.key(3), 2)
    state = learner.init(key)
    moved = _moved(state.params, learner.step(state, tasks)[0].params)
    # all but the weights whose gradient is within Adam's eps of 0 (some biases before
    # batch norm): exactly 1e-3
    assert np.mean(np.abs(moved - 1e-3) < 1e-5) > 0.9
    assert moved.max() < 1.001e-3
    # the factories' own default (the command passes its Adam explicitly): Adam 1e-3 too
    proto = meta.protonet(meta.mlp((4, 3)), ways=2)
    points = jax.random.normal(jax.random.key(4), (3, 3, 4))
    state = proto.init(key)
    batch = meta.task_batch(meta.few_shot(points, 2, 1, 2), jax.random.key(5), 2)
    after = proto.step(state, batch)[0].params
    # the weights (the biases shift every embedding alike: their gradient is rounding)
    kernel = lambda p: p["layers"][0]["kernel"]
    np.testing.assert_allclose(_moved(kernel(state.params), kernel(after)), 1e-3, rtol=1e-3)


def test_default_loops_are_sgd_001_inside_and_adam_1e3_or_reptiles_sgd_1_outside(key):
    """The documented defaults of `jnas.meta`'s factories: MAML's outer Adam 1e-3 moves
    every weight by 1e-3 on its first step (Adam's first update is lr * g / |g|), and is
    the learner given SGD 0.01 inside and Adam 1e-3 outside explicitly; Reptile's outer
    SGD 1.0 with 5 inner steps; `meta_learner`'s own defaults are MAML's."""
    model = meta.mlp((1, 8, 1))
    tasks = meta.task_batch(meta.sinusoid(5, 5), key, 4)

    def step(learner):
        return learner.step(learner.init(key), tasks)[0].params

    exact = {"rtol": 0, "atol": 0}
    before = meta.maml(model, loss="mse").init(key).params
    after = step(meta.maml(model, loss="mse"))
    moved = _moved(before, after)
    assert (moved > 1e-4).mean() > 0.9
    np.testing.assert_allclose(moved[moved > 1e-4], 1e-3, rtol=1e-2)
    explicit = meta.maml(model, loss="mse", inner_lr=0.01, outer_optimizer=optax.adam(1e-3))
    _assert_close(after, step(explicit), **exact)
    # the bare mechanism's defaults are the same: one SGD step of 0.01, exact MAML, Adam 1e-3
    _assert_close(after, step(meta.meta_learner(model, loss="mse")), **exact)
    reptile = step(meta.reptile(model, loss="mse"))
    sgd_1 = {"inner_lr": 0.01, "inner_steps": 5, "outer_optimizer": optax.sgd(1.0)}
    _assert_close(reptile, step(meta.reptile(model, loss="mse", **sgd_1)), **exact)
    half = step(meta.reptile(model, loss="mse", outer_optimizer=optax.sgd(0.5)))
    assert not np.array_equal(jax.tree.leaves(half)[0], jax.tree.leaves(reptile)[0])
