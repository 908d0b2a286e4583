"""One-shot methods on the DARTS, Chain (ProxylessNAS) and NATS size supernets: every
method's step is a valid scan carry that trains the weights, its derived architecture is
valid in that space, and sampling methods train only sampled architectures."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jnas import oneshot
from jnas.spaces import DARTS, Chain, NATSSize

# Small spaces keep CPU compiles short; the full spaces share the code (tests/nn).
SPACES = {
    "darts": (
        DARTS(ops=("none", "max_pool_3x3", "skip_connect", "sep_conv_3x3"), num_nodes=2),
        {"channels": 4, "num_cells": 3, "num_classes": 3},
    ),
    "chain": (
        Chain(
            stages=((8, 1, 1), (12, 2, 2)),
            kernels=(3, 5),
            expansions=(1, 2),
            stem_channels=8,
            first_block_channels=8,
            head_channels=16,
        ),
        {"num_classes": 3, "stem_stride": 1},
    ),
    "nats": (NATSSize(channels=(4, 6, 8)), {"num_classes": 3}),
}
SAMPLING = {"rsws", "spos", "oneshot-dropout", "setn", "enas"}
FAST = {("darts-v1", "darts"), ("proxyless", "chain"), ("gdas", "nats")}  # in CI


def batch(seed, n=8, size=8):
    k1, k2 = jax.random.split(jax.random.key(seed))
    return jax.random.normal(k1, (n, size, size, 3)), jax.random.randint(k2, (n,), 0, 3)


def structure(tree):
    return jax.tree.structure(tree), [(x.shape, x.dtype) for x in jax.tree.leaves(tree)]


def cases():
    for name in sorted(oneshot.REGISTRY):
        for space in SPACES:
            marks = () if (name, space) in FAST else (pytest.mark.slow,)
            yield pytest.param(name, space, marks=marks, id=f"{name}-{space}")


@pytest.mark.parametrize(("name", "space_name"), list(cases()))
def test_method_runs_on_every_supernet(name, space_name):
    space, config = SPACES[space_name]
    extra = (
        {"num_evaluations": 16, "population_size": 8}
        if name == "spos"
        else {"num_candidates": 8}
        if name in SAMPLING
        else {}
    )
    method = oneshot.REGISTRY[name].make(space, epochs=2, steps_per_epoch=4, **config, **extra)
    state = jax.jit(method.init)(jax.random.key(0))
    if oneshot.REGISTRY[name].uses_alpha:
        assert state.alpha.shape == space.supernet_shape
    step = jax.jit(method.step)
    new, metrics = step(jax.random.key(3), state, batch(1), batch(2))
    new, metrics = step(jax.random.key(5), new, batch(3), batch(4))
    assert structure(new) == structure(state)
    assert all(np.isfinite(float(v)) for v in metrics.values())
    assert not all(
        jax.tree.leaves(
            jax.tree.map(lambda a, b: bool(jnp.array_equal(a, b)), new.params, state.params)
        )
    )
    arch = jax.jit(method.derive)(new, jax.random.key(6), batch(7))
    assert bool(space.is_valid(arch))
    space.validate(arch)


def test_enas_needs_a_space_with_decisions():
    import types

    with pytest.raises(ValueError, match="decision_sizes"):
        oneshot.enas(types.SimpleNamespace())


def test_darts_derives_the_genotype_alpha_prefers():
    space, config = SPACES["darts"]
    method = oneshot.darts(space, epochs=2, steps_per_epoch=4, **config)
    state = method.init(jax.random.key(0))
    target = space.sample(jax.random.key(1))
    alpha = 5.0 * jax.nn.one_hot(space.supernet_index(target), space.num_ops)
    arch = method.derive(state._replace(alpha=alpha))

    def pairs(a):  # each node's (input, op) pairs, in input order
        code = np.asarray(a.inputs).astype(int) * 16 + np.asarray(a.ops)
        return np.sort(code.reshape(2, space.num_nodes, 2), -1)

    np.testing.assert_array_equal(pairs(arch), pairs(target))


def test_chain_proxyless_latency_loss_uses_block_flops():
    space, config = SPACES["chain"]
    costs = space.op_flops(image_size=8, stem_stride=1)
    assert costs.shape == space.supernet_shape
    method = oneshot.proxyless(
        space, epochs=2, steps_per_epoch=4, latency_weight=1.0, costs=costs, **config
    )
    state = method.init(jax.random.key(0))
    _, metrics = jax.jit(method.step)(jax.random.key(3), state, batch(1), batch(2))
    want = float(jnp.sum(jax.nn.softmax(state.alpha, -1) * costs))
    np.testing.assert_allclose(float(metrics["expected_cost"]), want, rtol=1e-5)
