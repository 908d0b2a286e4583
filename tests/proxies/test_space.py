"""Scoring many cells of a space in one program: chunks and padding change nothing, every
cell gets its own initialisation, batch norm can be removed, and SynFlow tracks what it
measures (parametric paths)."""

import functools

import jax
import numpy as np
import pytest

from jnas import proxies
from jnas.spaces import NB201

SPACE = NB201()
NET = {"channels": 4, "cells_per_stage": 1, "num_classes": 3}
SYNFLOW = functools.partial(proxies.synflow, input_shape=(1, 8, 8, 3))


def cells(*strings):
    archs = [SPACE.from_string(s) for s in strings]
    return jax.tree.map(lambda *a: np.stack(a), *archs)


CONV = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"
SKIP = "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|"


def test_chunks_and_padding_change_no_score():
    archs = jax.vmap(SPACE.sample)(jax.random.split(jax.random.key(1), 5))
    key = jax.random.key(0)
    whole = proxies.score_architectures(
        key, SYNFLOW, SPACE, archs, chunk=5, batch_norm=False, **NET
    )
    parts = proxies.score_architectures(
        key, SYNFLOW, SPACE, archs, chunk=2, batch_norm=False, **NET
    )
    np.testing.assert_allclose(parts, whole, rtol=1e-6)
    assert whole.shape == (5,)
    assert np.all(np.isfinite(whole))


def test_each_cell_gets_a_fresh_initialisation():
    scores = proxies.score_architectures(
        jax.random.key(0), SYNFLOW, SPACE, cells(CONV, CONV), batch_norm=False, **NET
    )
    assert scores[0] != scores[1]  # same cell, two initialisations


def test_synflow_grows_with_the_parametric_paths_and_batch_norm_can_be_removed():
    archs = cells(CONV, SKIP)
    key = jax.random.key(0)
    conv, skip = proxies.score_architectures(key, SYNFLOW, SPACE, archs, batch_norm=False, **NET)
    assert conv > 10 * skip  # 6 convolutions in every cell against none
    # with batch norm every layer's scale is normalised away: another score altogether
    with_bn = proxies.score_architectures(key, SYNFLOW, SPACE, archs, **NET)
    assert not np.allclose(with_bn, [conv, skip], rtol=0.5)


def test_a_space_without_a_supernet_is_refused():
    with pytest.raises(ValueError, match="HasSupernet"):
        proxies.score_architectures(jax.random.key(0), SYNFLOW, object(), None)


def test_without_batch_norm_makes_both_norms_the_identity():
    from flax import nnx

    from jnas.nn import BatchNorm, BatchStatsNorm, without_batch_norm

    x = np.random.default_rng(0).normal(3.0, 2.0, size=(8, 4)).astype(np.float32)
    for norm in (BatchNorm(4, rngs=nnx.Rngs(0)), BatchStatsNorm(4, rngs=nnx.Rngs(0))):
        normalised = np.asarray(norm(x))
        np.testing.assert_allclose(normalised.mean(0), 0.0, atol=1e-5)
        with without_batch_norm():
            np.testing.assert_array_equal(norm(x), x)
        np.testing.assert_allclose(norm(x), normalised)  # back to normal outside


def _discrete_twin(space, net, arch, cells):
    """The discrete NB201 network holding the supernet's weights for the chosen ops (as
    tests/nn/test_supernet_nb201.py builds it)."""
    from flax import nnx

    from jnas.nn._ops import ResNetBasicBlock

    model = space.build(arch, channels=4, cells_per_stage=cells, num_classes=5, rngs=nnx.Rngs(1))
    model.stem_conv.kernel[...] = net.stem_conv.kernel[...]
    layers = list(model.layers)
    blocks = [m for m in layers if isinstance(m, ResNetBasicBlock)]
    for block, ref in zip(blocks, net.reductions, strict=True):
        for part in ("conv_a", "conv_b"):
            getattr(block, part).conv.kernel[...] = getattr(ref, part).conv.kernel[...]
        block.down.kernel[...] = ref.down.kernel[...]
    ops = np.asarray(arch.ops).tolist()
    for c, cell in enumerate(m for m in layers if not isinstance(m, ResNetBasicBlock)):
        stage = net.stages[c // cells]
        width = stage.channels
        for e, (i, _) in enumerate(space.edges):
            name = space.ops[ops[e]]
            if name in ("nor_conv_1x1", "nor_conv_3x3"):
                k = 1 if name == "nor_conv_1x1" else 3
                slot = stage.out_edges[i].index(e)
                kernel = stage.kernels[name][i][...][
                    c % cells, :, slot * width : (slot + 1) * width
                ]
                cell.ops[e].conv.kernel[...] = kernel.reshape(k, k, width, width)
    model.classifier.kernel[...] = net.classifier.kernel[...]
    model.classifier.bias[...] = net.classifier.bias[...]
    return model


@pytest.mark.parametrize(
    "name",
    ["nwot", pytest.param("fisher", marks=pytest.mark.slow)],  # the same taps; 30 s
)
def test_tapped_proxies_on_the_one_hot_supernet_equal_the_discrete_network(name):
    """NASWOT counts a node's ReLU once per convolution reading it (0, 1 or 2 here) and
    Fisher sees zero gradient on the unused ops' channels: the one-hot supernet scores
    exactly what the discrete network scores."""
    from flax import nnx

    arch = SPACE.from_string(
        "|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|avg_pool_3x3~0|none~1|nor_conv_3x3~2|"
    )
    net = SPACE.supernet(channels=4, cells_per_stage=2, num_classes=5, rngs=nnx.Rngs(0))
    model = _discrete_twin(SPACE, net, arch, 2)
    rng = np.random.default_rng(0)
    batch = (rng.normal(size=(6, 8, 8, 3)).astype(np.float32), rng.integers(0, 5, 6))
    one_hot = jax.nn.one_hot(SPACE.supernet_index(arch), SPACE.num_ops)
    proxy = getattr(proxies, name)
    graph, state = nnx.split(model)  # merged inside the trace: batch statistics may update
    want = float(
        proxy(lambda p, x: nnx.merge(graph, jax.tree.map(lambda a: a, p))(x), state, batch)
    )
    assert np.isfinite(want)  # -inf == -inf (a singular NASWOT kernel) would be vacuous
    got = float(proxy(lambda p, x: net(x, one_hot), None, batch))
    assert got == pytest.approx(want, rel=1e-4)
    with pytest.raises(ValueError, match=r"lax\.switch"):
        proxy(lambda p, x: net(x, one_hot, SPACE.supernet_index(arch)), None, batch)


def test_score_architectures_runs_every_kind_of_proxy():
    rng = np.random.default_rng(0)
    batch = (rng.normal(size=(4, 8, 8, 3)).astype(np.float32), rng.integers(0, 3, 4))
    archs = cells(CONV, SKIP)
    key = jax.random.key(0)
    for proxy in (proxies.nwot, proxies.fisher):
        conv, skip = proxies.score_architectures(
            key, functools.partial(proxy, batch=batch), SPACE, archs, **NET
        )
        assert np.isfinite(conv)
        assert np.isfinite(skip)
        assert conv > skip  # more ReLU codes and more layers
    for proxy in (proxies.flops, proxies.l2_norm):
        with pytest.raises(ValueError, match=r"space\.build"):
            proxies.score_architectures(key, proxy, SPACE, archs, **NET)
