"""SMASH's memory-bank networks against a NumPy re-derivation of the paper's read / op /
write semantics (Brock et al. 2018, §3.1): the supernet with one-hot op weights (mixed and
single-path forms) and the discrete network each equal it."""

import jax
import numpy as np
import pytest
from flax import nnx

from jnas.nn import MemoryBankNetwork, MemoryBankSupernet
from jnas.spaces import MemoryBank

SPACE = MemoryBank(stages=2, blocks=3, banks=3, kernels=(1, 3), dilations=(1, 2), depths=(1, 2))
NET = {"channels": 4, "num_classes": 5, "in_channels": 2}


def np_conv(x, w, dilation=1):
    """'same' NHWC convolution with an HWIO kernel, by summing shifted products."""
    k = w.shape[0]
    pad = dilation * (k - 1) // 2
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    h, wd = x.shape[1:3]
    out = np.zeros((*x.shape[:3], w.shape[3]))
    for i in range(k):
        for j in range(k):
            patch = xp[:, i * dilation : i * dilation + h, j * dilation : j * dilation + wd]
            out += patch @ w[i, j]
    return out


def np_bn_relu(x):
    mean = x.mean((0, 1, 2))
    var = x.var((0, 1, 2))
    return np.maximum((x - mean) / np.sqrt(var + 1e-5), 0)


def np_forward(x, arch, kernels, space=SPACE):
    """The network of `arch` from its kernels: `reads[b]` {bank: 1x1 kernel}, `ops[b]` a list
    of kernels, `transitions[s]`, `stem`, `head` (W, b)."""
    reads, writes, ops = (np.asarray(a).reshape(-1) for a in arch)
    x = np_conv(x, kernels["stem"])
    for s in range(space.stages):
        banks = [x] + [np.zeros_like(x)] * (space.banks - 1)
        for i in range(space.blocks):
            b = s * space.blocks + i
            read = [j for j in range(space.banks) if ((reads[b] + 1) >> j) & 1]
            write = [j for j in range(space.banks) if ((writes[b] + 1) >> j) & 1]
            h = np.concatenate([banks[j] for j in read], -1) @ np.concatenate(
                [kernels["reads"][b][j][0, 0] for j in read], 0
            )  # a 1x1 conv of the concatenation
            _, dilation, _ = space.op(int(ops[b]))
            for w in kernels["ops"][b]:
                h = np_conv(np_bn_relu(h), w, dilation)
            banks = [bank + h if j in write else bank for j, bank in enumerate(banks)]
        x = np.concatenate(banks, -1)
        if s < space.stages - 1:
            y = np_bn_relu(x) @ kernels["transitions"][s][0, 0]
            n, hh, ww, c = y.shape
            x = y.reshape(n, hh // 2, 2, ww // 2, 2, c).mean((2, 4))
    w, bias = kernels["head"]
    return np_bn_relu(x).mean((1, 2)) @ w + bias


def arr(v):
    return np.asarray(v[...], np.float64)


def supernet_kernels(net, arch):
    ops = np.asarray(arch.ops).reshape(-1)
    return {
        "stem": arr(net.stem.kernel),
        "reads": [{j: arr(c.kernel) for j, c in enumerate(r)} for r in net.reads],
        "ops": [[arr(c.kernel) for c in net.ops[b].ops[int(o)].convs] for b, o in enumerate(ops)],
        "transitions": [arr(t.conv.kernel) for t in net.transitions],
        "head": (arr(net.head.linear.kernel), arr(net.head.linear.bias)),
    }


def network_kernels(net):
    return {
        "stem": arr(net.stem.kernel),
        "reads": [
            {j: arr(c.kernel) for j, c in zip(banks, r, strict=True)}
            for banks, r in zip(net.read_banks, net.reads, strict=True)
        ],
        "ops": [[arr(c.kernel) for c in op.convs] for op in net.ops],
        "transitions": [arr(t.conv.kernel) for t in net.transitions],
        "head": (arr(net.head.linear.kernel), arr(net.head.linear.bias)),
    }


@pytest.fixture(scope="module")
def images():
    return np.asarray(jax.random.normal(jax.random.key(0), (6, 8, 8, 2)))


@pytest.mark.parametrize("seed", [1, 2])
def test_supernet_with_one_hot_weights_is_the_architecture(seed, images):
    arch = SPACE.sample(jax.random.key(seed))
    net = SPACE.supernet(**NET, rngs=nnx.Rngs(seed))
    index = SPACE.supernet_index(arch)
    weights = jax.nn.one_hot(index, SPACE.supernet_shape[1])
    want = np_forward(images.astype(np.float64), arch, supernet_kernels(net, arch))
    np.testing.assert_allclose(np.asarray(net(images, weights)), want, rtol=2e-4, atol=2e-4)
    single = jax.jit(lambda x, w, i: net(x, w, i))(images, weights, index)
    np.testing.assert_allclose(np.asarray(single), want, rtol=2e-4, atol=2e-4)


def test_network_is_the_architecture_and_holds_only_its_convolutions(images):
    arch = SPACE.from_string(
        "r100w010k3d2x2-r110w001k1d1x1-r011w111k3d1x1/r001w100k3d1x1-r111w011k1d2x2-r010w010k3d2x1"
    )
    net = SPACE.build(arch, **NET, rngs=nnx.Rngs(0))
    want = np_forward(images.astype(np.float64), arch, network_kernels(net))
    np.testing.assert_allclose(np.asarray(net(images)), want, rtol=2e-4, atol=2e-4)
    assert [len(r) for r in net.reads] == [1, 2, 2, 1, 3, 1]
    assert [len(op.convs) for op in net.ops] == [2, 1, 1, 1, 2, 1]
    # a read the network does not make changes nothing; one it makes changes the output
    other = SPACE.from_string(
        "r100w010k3d2x2-r110w001k1d1x1-r011w111k3d1x1/r001w100k3d1x1-r111w011k1d2x2-r010w001k3d2x1"
    )
    assert not np.allclose(
        np.asarray(SPACE.build(other, **NET, rngs=nnx.Rngs(0))(images)), want, atol=1e-3
    )


def test_mixed_read_weights_interpolate_between_reads(images):
    """Half the weight on two read subsets reads each bank with the mean of their masks."""
    net = SPACE.supernet(**NET, rngs=nnx.Rngs(3))
    arch = SPACE.sample(jax.random.key(4))
    w = jax.nn.one_hot(SPACE.supernet_index(arch), SPACE.supernet_shape[1])
    masks = SPACE.subset_masks()
    a, b = 0, 5  # subsets {0} and {1, 2}
    mixed = w.at[0].set(0.5 * (jax.nn.one_hot(a, 8) + jax.nn.one_hot(b, 8)))
    np.testing.assert_allclose(np.asarray(mixed[0] @ masks), [0.5, 0.5, 0.5])
    both = w.at[0].set(jax.nn.one_hot(6, 8))  # {0, 1, 2}: at block 0 banks 1, 2 are zero
    only0 = w.at[0].set(jax.nn.one_hot(a, 8))
    np.testing.assert_allclose(
        np.asarray(net(images, both)), np.asarray(net(images, only0)), atol=1e-5
    )
    assert np.all(np.isfinite(np.asarray(net(images, mixed))))


DEEP = MemoryBank(stages=4, blocks=2, banks=2, kernels=(1, 3), dilations=(1, 2), depths=(1, 2))


def expected_params(space, arch, channels, num_classes, in_channels, *, network):
    """Weights the paper's blocks need, counted by hand: a 3x3 stem; per block 1x1 read
    convolutions (the banks it reads; all of them in the supernet) and its op's `depth` k x k
    convolutions (every op's in the supernet), with affine batch norm only in the network;
    per stage transition a 1x1 convolution of all banks to twice the width; the classifier."""
    reads, _, ops = (np.asarray(a).reshape(-1) for a in arch)
    affine = 2 if network else 0
    total = 9 * in_channels * channels
    for s in range(space.stages):
        w = channels * 2**s
        for i in range(space.blocks):
            b = s * space.blocks + i
            total += (bin(int(reads[b]) + 1).count("1") if network else space.banks) * w * w
            choices = [int(ops[b])] if network else range(space.num_ops)
            for c in choices:
                k, _, depth = space.op(c)
                total += depth * (k * k * w * w + affine * w)
        if s < space.stages - 1:
            total += space.banks * w * (2 * w + affine)
    width = channels * 2 ** (space.stages - 1)
    return total + space.banks * width * (num_classes + affine) + num_classes


def num_params(net):
    return sum(v.size for v in jax.tree.leaves(nnx.state(net, nnx.Param)))


def test_four_stages_double_the_width_and_hold_only_what_they_use(images):
    """With four stages the widths run 4, 8, 16, 32 and there are three transitions: the
    network equals the NumPy forward and both it and the supernet hold exactly the
    hand-counted weights (an unused transition or a mis-sized head would not)."""
    arch = DEEP.sample(jax.random.key(7))
    net = DEEP.build(arch, **NET, rngs=nnx.Rngs(0))
    want = np_forward(images.astype(np.float64), arch, network_kernels(net), DEEP)
    np.testing.assert_allclose(np.asarray(net(images)), want, rtol=2e-4, atol=2e-4)
    assert num_params(net) == expected_params(DEEP, arch, 4, 5, 2, network=True)
    supernet = DEEP.supernet(**NET, rngs=nnx.Rngs(0))
    weights = jax.nn.one_hot(DEEP.supernet_index(arch), DEEP.supernet_shape[1])
    want = np_forward(images.astype(np.float64), arch, supernet_kernels(supernet, arch), DEEP)
    np.testing.assert_allclose(np.asarray(supernet(images, weights)), want, rtol=2e-4, atol=2e-4)
    assert num_params(supernet) == expected_params(DEEP, arch, 4, 5, 2, network=False)


def test_defaults_are_16_channels_for_10_classes_of_rgb_images():
    """The space's factories and the network classes alike default to a 16-channel stem
    on 3-channel images and 10 classes (CIFAR-10-sized inputs)."""
    arch = DEEP.sample(jax.random.key(8))
    want_net = expected_params(DEEP, arch, 16, 10, 3, network=True)
    want_super = expected_params(DEEP, arch, 16, 10, 3, network=False)
    assert num_params(DEEP.build(arch)) == want_net
    assert num_params(MemoryBankNetwork(DEEP, arch)) == want_net
    assert num_params(DEEP.supernet()) == want_super
    assert num_params(MemoryBankSupernet(DEEP)) == want_super
