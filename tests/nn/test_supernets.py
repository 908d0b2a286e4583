"""The DARTS, Chain and NATS size supernets: with one-hot weights each computes exactly the
discrete network of that architecture (on the supernet's shared weights), and each space's
`supernet_index` / `derive` agree with the published derivation rules."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jnas.spaces import DARTS, Chain, NATSSize

DARTS_TINY = DARTS(num_nodes=3)
CHAIN_TINY = Chain(
    stages=((8, 1, 1), (12, 2, 2), (16, 2, 1)),
    kernels=(3, 5),
    expansions=(1, 2),
    stem_channels=8,
    first_block_channels=8,
    head_channels=16,
)
NATS_TINY = NATSSize(channels=(4, 6, 8))


def images(seed, n=4, size=8, channels=3):
    return jax.random.normal(jax.random.key(seed), (n, size, size, channels))


def darts_genotype(weights, num_nodes, none):
    """The DARTS code's `genotype()._parse` for one cell, verbatim in NumPy."""
    gene, start, n = [], 0, 2
    for i in range(num_nodes):
        w = weights[start : start + n]
        edges = sorted(
            range(i + 2), key=lambda x: -max(w[x][k] for k in range(len(w[x])) if k != none)
        )[:2]
        for j in edges:
            k_best = None
            for k in range(len(w[j])):
                if k != none and (k_best is None or w[j][k] > w[j][k_best]):
                    k_best = k
            gene.append((k_best, j))
        start += n
        n += 1
    return gene


def test_darts_derive_is_the_darts_genotype_rule():
    space = DARTS()
    rng = np.random.default_rng(0)
    for trial in range(20):
        weights = rng.dirichlet(np.ones(space.num_ops), space.supernet_shape[0])
        if trial % 2:  # ties: coarse weights
            weights = np.round(weights, 1)
        arch = jax.jit(space.derive)(jnp.asarray(weights, jnp.float32))
        e = space.supernet_shape[0] // 2
        for c in range(2):
            want = darts_genotype(
                weights[c * e : (c + 1) * e].astype(np.float32),
                space.num_nodes,
                space.ops.index("none"),
            )
            got = list(
                zip(
                    np.asarray(arch.ops[c]).tolist(),
                    np.asarray(arch.inputs[c]).tolist(),
                    strict=True,
                )
            )
            assert got == want
        assert bool(space.is_valid(arch))


def test_darts_supernet_index_round_trips_through_derive():
    space = DARTS()
    archs = jax.vmap(space.sample)(jax.random.split(jax.random.key(0), 50))
    index = jax.vmap(space.supernet_index)(archs)
    assert index.shape == (50, *space.supernet_shape[:1])
    assert np.all(np.sum(np.asarray(index) != 0, axis=1) == 2 * space.num_edges)
    back = jax.vmap(space.derive)(jax.nn.one_hot(index, space.num_ops))

    # derive orders each node's pair strongest first (ties to the lower input): compare
    # each node's (input, op) pairs as sets
    def pairs(x):
        code = np.asarray(x.inputs).astype(int) * 16 + np.asarray(x.ops)
        return np.sort(code.reshape(50, 2, space.num_nodes, 2), -1)

    np.testing.assert_array_equal(pairs(back), pairs(archs))


def _one_hot(space, arch):
    index = space.supernet_index(arch)
    return jax.nn.one_hot(index, space.supernet_shape[1]), index


def test_darts_supernet_with_one_hot_weights_is_the_discrete_network():
    space = DARTS_TINY
    sup = space.supernet(channels=4, num_cells=3, num_classes=5, rngs=nnx.Rngs(0))
    x = images(1)
    for seed in range(2):  # between them every op (none aside) and every input
        arch = space.sample(jax.random.key(seed))
        net = space.build(arch, channels=4, num_cells=3, num_classes=5)
        net.stem_conv, net.stem_bn, net.classifier = sup.stem_conv, sup.stem_bn, sup.classifier
        offsets = [j * (j + 3) // 2 for j in range(space.num_nodes)]
        for cell, scell, reduction in zip(net.cells, sup.cells, sup.reductions, strict=True):
            cell.pre0, cell.pre1 = scell.pre0, scell.pre1
            c = int(reduction)
            for e in range(space.num_edges):
                row = offsets[e // 2] + int(arch.inputs[c, e])
                cell.ops[e] = scell.mixed[row].ops[int(arch.ops[c, e])]
        weights, index = _one_hot(space, arch)
        want = net(x)
        np.testing.assert_allclose(sup(x, weights, index), want, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(sup(x, weights), want, rtol=1e-5, atol=1e-5)


def test_chain_supernet_with_one_hot_weights_is_the_discrete_network():
    space = CHAIN_TINY
    sup = space.supernet(num_classes=5, stem_stride=1, rngs=nnx.Rngs(0))
    x = images(2)
    archs = jax.vmap(space.sample)(jax.random.split(jax.random.key(1), 4))
    skipped = 0
    for arch in (jax.tree.map(lambda a, i=i: a[i], archs) for i in range(4)):
        net = space.build(arch, num_classes=5, stem_stride=1)
        net.stem, net.first, net.head = sup.stem, sup.first, sup.head
        net.classifier = sup.classifier
        kept = [b for b, o in enumerate(np.asarray(arch.ops).tolist()) if o != space.skip]
        skipped += space.num_blocks - len(kept)
        for j, b in enumerate(kept):
            net.blocks[j] = sup.blocks[b].ops[int(arch.ops[b])]
        weights, index = _one_hot(space, arch)
        want = net(x)
        np.testing.assert_allclose(sup(x, weights, index), want, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(sup(x, weights), want, rtol=1e-5, atol=1e-5)
    assert skipped > 0  # the identity candidate was exercised


def test_chain_derive_never_skips_a_block_that_cannot_be_skipped():
    space = CHAIN_TINY
    weights = jnp.zeros(space.supernet_shape).at[:, space.skip].set(1.0)
    arch = space.derive(weights)
    assert bool(space.is_valid(arch))
    np.testing.assert_array_equal(np.asarray(arch.ops) == space.skip, space.skippable)


def _sliced(narrow, sup):
    """`narrow`'s parameters taken from the leading entries of `sup`'s, path by path."""
    small = nnx.state(narrow, nnx.Param)
    big = nnx.state(sup, nnx.Param)
    return jax.tree.map(lambda s, b: b[tuple(slice(0, n) for n in s.shape)], small, big)


@pytest.mark.parametrize("width", [0, 1, 2])
def test_nats_supernet_at_one_width_is_the_narrow_network(width):
    from jnas.nn import NATSSizeNetwork

    space = NATS_TINY
    sup = space.supernet(num_classes=5, rngs=nnx.Rngs(0))
    arch = space.from_decisions(jnp.full((space.num_layers,), width))
    narrow = NATSSizeNetwork(space.widths(arch), num_classes=5, rngs=nnx.Rngs(1))
    nnx.update(narrow, _sliced(narrow, sup))
    x = images(3)
    weights, index = _one_hot(space, arch)
    np.testing.assert_allclose(sup(x, weights, index), narrow(x), rtol=1e-5, atol=1e-5)


def test_nats_supernet_masks_channels_beyond_each_layers_width():
    space = NATS_TINY
    sup = space.supernet(num_classes=5, rngs=nnx.Rngs(0))
    graphdef, params = nnx.split(sup)
    arch = space.from_decisions(jnp.asarray([0, 2, 1, 0, 1]))
    first, *_, last = space.widths(arch)
    weights, index = _one_hot(space, arch)
    x = images(4)

    def loss(p, w):
        return jnp.sum(nnx.merge(graphdef, p)(x, w, index) ** 2)

    g_params, g_weights = jax.grad(loss, argnums=(0, 1))(params, weights)
    stem = np.asarray(g_params["stem_conv"]["kernel"][...])
    head = np.asarray(g_params["classifier"]["kernel"][...])
    assert np.all(stem[..., first:] == 0)
    assert np.any(stem[..., :first] != 0)
    assert np.all(head[last:] == 0)
    assert np.any(head[:last] != 0)
    assert np.all(np.any(np.asarray(g_weights) != 0, axis=1))  # every layer's α learns


@pytest.mark.parametrize(("size", "stem"), [(16, 2), (13, 2), (7, 1)])
def test_chain_op_flops_add_up_to_the_networks_flops(size, stem):
    """The table's entries of an architecture's choices plus a constant (the fixed
    layers) are the built network's multiply-accumulates, odd sizes included (strided
    'SAME' layers round up: 13 -> 7 -> 4)."""
    from jnas.nn import count_flops

    space = CHAIN_TINY
    table = space.op_flops(image_size=size, stem_stride=stem)
    archs = jax.vmap(space.sample)(jax.random.split(jax.random.key(2), 3))
    totals, sums = [], []
    for i in range(3):
        arch = jax.tree.map(lambda a, i=i: a[i], archs)
        net = space.build(arch, num_classes=5, stem_stride=stem)
        totals.append(count_flops(net, (1, size, size, 3)) / 1e6)
        sums.append(float(table[np.arange(space.num_blocks), np.asarray(arch.ops)].sum()))
    fixed = np.asarray(totals) - np.asarray(sums)
    np.testing.assert_allclose(fixed, fixed[0], rtol=1e-5)  # the rest is the fixed layers
    assert len(set(np.round(totals, 6))) > 1


def test_chain_supernet_and_network_default_to_imagenet():
    """Both built for ImageNet unless told otherwise: RGB input, a stride-2 stem, 1000
    classes (the supernet's defaults match the discrete network's)."""
    space = Chain(stages=((8, 1, 1), (12, 2, 2)), kernels=(3,), expansions=(1,))
    arch = space.sample(jax.random.key(0))
    sup = nnx.eval_shape(lambda: space.supernet())
    net = nnx.eval_shape(lambda: space.build(arch))
    for model in (sup, net):
        assert model.stem.conv.strides == 2
        assert model.stem.conv.in_features == 3
        assert model.classifier.out_features == 1000


def test_chain_op_flops_defaults_and_arguments():
    """ImageNet's 224x224 behind a stride-2 stem by default; a size below 1 or a stem
    stride other than 1 or 2 is refused, the smallest allowed ones accepted."""
    space = CHAIN_TINY
    np.testing.assert_array_equal(space.op_flops(), space.op_flops(224, 2))
    assert space.op_flops(image_size=1, stem_stride=1).shape == (5, 5)
    with pytest.raises(ValueError, match="`image_size`"):
        space.op_flops(image_size=0)
    for stride in (0, 3):
        with pytest.raises(ValueError, match="`stem_stride` must be 1 or 2"):
            space.op_flops(stem_stride=stride)


def test_resnet_reduction_pools_odd_sizes_in_ceil_mode():
    """7x7 -> 4x4 on both paths (the 3x3 stride-2 conv gives 4, so the shortcut's 2x2 pool
    averages the last row/column alone); even sizes keep NB201's plain 2x2 pool."""
    from jnas.nn._ops import ResNetBasicBlock

    block = ResNetBasicBlock(3, 3, 2, track_stats=False, rngs=nnx.Rngs(0))
    block.down = lambda x: x  # expose the pooled shortcut
    block.conv_b = lambda y: jnp.zeros_like(y)
    x = images(0, n=2, size=7)
    got = np.asarray(block(x))
    xp = np.pad(np.asarray(x), ((0, 0), (0, 1), (0, 1), (0, 0)), constant_values=np.nan)
    want = np.nanmean(xp.reshape(2, 4, 2, 4, 2, 3), axis=(2, 4))
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    x = images(1, n=2, size=8)
    want = np.asarray(x).reshape(2, 4, 2, 4, 2, 3).mean(axis=(2, 4))
    np.testing.assert_allclose(np.asarray(block(x)), want, rtol=1e-6, atol=1e-6)


def test_nb201_supernet_stem_stride_halves_the_resolution():
    from jnas.spaces import NB201

    space = NB201()
    weights = jnp.full((space.num_edges, space.num_ops), 1.0 / space.num_ops)
    x = images(0, n=2, size=28, channels=1)
    for stride, size in ((1, 28), (2, 14)):
        net = space.supernet(
            channels=4,
            cells_per_stage=1,
            num_classes=5,
            in_channels=1,
            stem_stride=stride,
            rngs=nnx.Rngs(0),
        )
        assert net.stem_conv(x).shape == (2, size, size, 4)
        out = net(x, weights)
        assert out.shape == (2, 5)
        assert bool(jnp.all(jnp.isfinite(out)))
    with pytest.raises(ValueError, match="stem_stride"):
        space.supernet(stem_stride=0)
