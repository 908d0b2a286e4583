"""SMASH (Brock et al. 2018): the hypernetwork generates W0 + sum_d e_d U_d from the
architecture encoding (checked against NumPy), its gradient is the chain rule through the
generated weights, its weights depend on the architecture once trained (shared weights
would not), and it learns on the memory-bank space."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jnas import oneshot
from jnas.data import digits
from jnas.spaces import NB201, MemoryBank

SPACE = NB201(ops=("none", "skip_connect", "nor_conv_3x3", "avg_pool_3x3"), num_nodes=3)
NET = {"channels": 4, "cells_per_stage": 1, "num_classes": 3}


def batch(seed, n=8, size=8):
    k1, k2 = jax.random.split(jax.random.key(seed))
    return jax.random.normal(k1, (n, size, size, 3)), jax.random.randint(k2, (n,), 0, 3)


@pytest.fixture(scope="module")
def hyper():
    base = oneshot.make_supernet(SPACE, NET)
    net = oneshot.hypernetwork(base, SPACE.supernet_shape, embedding=5, hidden=7)
    params = net.init_params(jax.random.key(0))
    # a random U, so the generated part is not zero
    leaves, tree = jax.tree.flatten(params["up"])
    keys = jax.random.split(jax.random.key(1), len(leaves))
    params["up"] = jax.tree.unflatten(
        tree, [0.1 * jax.random.normal(k, u.shape) for k, u in zip(keys, leaves, strict=True)]
    )
    return base, net, params


def onehot(arch):
    return jax.nn.one_hot(SPACE.supernet_index(arch), SPACE.supernet_shape[1])


def test_generated_weights_are_base_plus_embedding_times_u(hyper):
    _, _, params = hyper
    c = onehot(SPACE.sample(jax.random.key(2)))
    mlp = {k: np.asarray(v, np.float64) for k, v in params["mlp"].items()}
    e = np.tanh(np.asarray(c).reshape(-1) @ mlp["w1"] + mlp["b1"]) @ mlp["w2"] + mlp["b2"]
    generated = oneshot.generate(params, c)
    flat_base = jax.tree.leaves(params["base"])
    flat_gen = jax.tree.leaves(generated)
    kernels = [i for i, w in enumerate(flat_base) if w.ndim >= 2]
    assert kernels
    assert len(jax.tree.leaves(params["up"])) == len(kernels)
    for u, i in zip(jax.tree.leaves(params["up"]), kernels, strict=True):
        want = np.asarray(flat_base[i]) + np.tensordot(e, np.asarray(u, np.float64), 1)
        np.testing.assert_allclose(np.asarray(flat_gen[i]), want, rtol=1e-5, atol=1e-6)
    for i, w in enumerate(flat_base):  # biases and other vectors are shared
        if w.ndim < 2:
            np.testing.assert_array_equal(np.asarray(flat_gen[i]), np.asarray(w))
    # U = 0 is weight sharing: the generated weights are W0 for every architecture
    zero = dict(params, up=jax.tree.map(jnp.zeros_like, params["up"]))
    for w, g in zip(flat_base, jax.tree.leaves(oneshot.generate(zero, c)), strict=True):
        np.testing.assert_array_equal(np.asarray(g), np.asarray(w))


def test_gradient_in_u_is_the_chain_rule_through_the_generated_weights(hyper):
    base, net, params = hyper
    x, y = batch(3)
    arch = SPACE.sample(jax.random.key(4))
    c, index = onehot(arch), SPACE.supernet_index(arch)

    def loss_hyper(p):
        logits = net.apply(p, x, c, index)
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    def loss_base(w):
        logits = base.apply(w, x, c, index)
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    g = jax.jit(jax.grad(loss_hyper))(params)
    g_w = jax.jit(jax.grad(loss_base))(oneshot.generate(params, c))
    mlp = params["mlp"]
    e = jnp.tanh(c.reshape(-1) @ mlp["w1"] + mlp["b1"]) @ mlp["w2"] + mlp["b2"]
    flat_gw = [w for w in jax.tree.leaves(g_w) if w.ndim >= 2]
    for gu, gw in zip(jax.tree.leaves(g["up"]), flat_gw, strict=True):
        want = np.einsum("d,...->d...", np.asarray(e), np.asarray(gw))
        np.testing.assert_allclose(np.asarray(gu), want, rtol=1e-4, atol=1e-7)
    # the shared part's gradient is the base network's gradient at the generated weights
    for gb, gw in zip(jax.tree.leaves(g["base"]), jax.tree.leaves(g_w), strict=True):
        np.testing.assert_allclose(np.asarray(gb), np.asarray(gw), rtol=1e-4, atol=1e-7)


@pytest.mark.slow  # 30 s; the generation, its gradient and one step are checked above/below
def test_smash_learns_and_its_weights_depend_on_the_architecture():
    """Trained on the digits in the memory-bank space, the hypernetwork's generated
    weights classify far above chance, and differ between architectures."""
    space = MemoryBank(stages=2, blocks=2, banks=2, kernels=(3,), dilations=(1, 2), depths=(1,))
    data = digits(jax.random.key(0), size=8, channels=1)
    x, y = jnp.asarray(data["train"].x), jnp.asarray(data["train"].y)
    method = oneshot.smash(
        space,
        embedding=8,
        hidden=16,
        epochs=1,
        steps_per_epoch=100,
        num_candidates=8,
        w_optimizer=optax.adam(3e-3),
        channels=8,
        num_classes=10,
        in_channels=1,
    )
    state = method.init(jax.random.key(0))

    def body(s, k):
        k_batch, k_step = jax.random.split(k)
        i = jax.random.choice(k_batch, len(y), (64,), replace=False)
        s, m = method.step(k_step, s, (x[i], y[i]), (x[i], y[i]))
        return s, m["w_loss"]

    state, losses = jax.jit(
        lambda s: jax.lax.scan(body, s, jax.random.split(jax.random.key(1), 100))
    )(state)
    assert float(losses[-20:].mean()) < 0.7 * float(losses[:20].mean())
    archs = jax.vmap(space.sample)(jax.random.split(jax.random.key(5), 8))
    val = (jnp.asarray(data["valid"].x), jnp.asarray(data["valid"].y))
    acc = oneshot.supernet_accuracy(
        oneshot.Supernet(None, method.apply), space, state.params, archs, val
    )
    assert float(acc.mean()) > 0.4  # chance is 0.1
    c1, c2 = (
        jax.nn.one_hot(
            space.supernet_index(jax.tree.map(lambda a, i=i: a[i], archs)), space.supernet_shape[1]
        )
        for i in (0, 1)
    )
    g1, g2 = oneshot.generate(state.params, c1), oneshot.generate(state.params, c2)
    diffs = [
        float(jnp.abs(a - b).max())
        for a, b in zip(jax.tree.leaves(g1), jax.tree.leaves(g2), strict=True)
    ]
    assert max(diffs) > 1e-3
    arch = method.derive(state, jax.random.key(6), val)
    assert bool(space.is_valid(arch))


def test_one_smash_step_makes_the_weights_depend_on_the_architecture():
    """U starts at zero (weight sharing: every architecture gets W0); after one step on a
    sampled architecture the generated weights of two architectures differ, and derive
    ranks cells with them."""
    method = oneshot.smash(
        SPACE, embedding=4, hidden=8, epochs=1, steps_per_epoch=2, num_candidates=4, **NET
    )
    state = method.init(jax.random.key(0))
    a, b = (onehot(SPACE.sample(jax.random.key(i))) for i in (10, 11))

    def gap(params):
        ga, gb = oneshot.generate(params, a), oneshot.generate(params, b)
        return max(
            float(jnp.abs(x - y).max())
            for x, y in zip(jax.tree.leaves(ga), jax.tree.leaves(gb), strict=True)
        )

    assert gap(state.params) == 0.0
    state, metrics = jax.jit(method.step)(jax.random.key(1), state, batch(1), batch(2))
    assert np.isfinite(float(metrics["w_loss"]))
    assert gap(state.params) > 0.0
    assert bool(SPACE.is_valid(method.derive(state, jax.random.key(2), batch(3))))
