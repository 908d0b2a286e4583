"""The NB201 supernet (stacked, scanned cells; ops once per node; convolutions as matrix
products) against independent references: XLA's own convolution and pooling, a per-edge
search network written here from `nb201_op` (the AutoDL-Projects layout, one module per
op per edge), and the discrete NB201 network."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jnas.nn import NB201Network, count_params, nb201_op
from jnas.nn._ops import (
    ResNetBasicBlock,
    avg_pool_3x3,
    batch_norm,
    classifier_head,
    conv,
    linear,
    matmul_conv,
)
from jnas.spaces import NB201


def images(seed, n=4, size=8, channels=3):
    return jax.random.normal(jax.random.key(seed), (n, size, size, channels))


@pytest.mark.parametrize(
    ("kernel", "stride", "padding", "size"),
    [(3, 1, 1, 8), (3, 2, 1, 8), (3, 2, 1, 7), (1, 1, 0, 5), (1, 2, 0, 6)],
)
def test_matmul_conv_is_xlas_convolution_forward_and_backward(kernel, stride, padding, size):
    x = images(0, n=3, size=size, channels=5)
    w = jax.random.normal(jax.random.key(1), (kernel, kernel, 5, 7))

    def xla(x, w):
        return jax.lax.conv_general_dilated(
            x,
            w,
            (stride, stride),
            [(padding, padding)] * 2,
            dimension_numbers=("NHWC", "HWIO", "NHWC"),
        )

    want = xla(x, w)
    got = matmul_conv(x, w, stride, padding)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    cot = jax.random.normal(jax.random.key(2), want.shape)
    g_want = jax.grad(lambda x, w: jnp.sum(xla(x, w) * cot), (0, 1))(x, w)
    g_got = jax.grad(lambda x, w: jnp.sum(matmul_conv(x, w, stride, padding) * cot), (0, 1))(x, w)
    for a, b in zip(g_got, g_want, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("size", [1, 2, 5, 8])
def test_avg_pool_3x3_excludes_the_padding_like_pytorch(size):
    """NumPy reference: the mean of each 3x3 window's pixels inside the image."""
    x = np.asarray(images(0, n=2, size=size))
    xp = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), constant_values=np.nan)
    want = np.stack(
        [
            np.stack([np.nanmean(xp[:, i : i + 3, j : j + 3], axis=(1, 2)) for j in range(size)], 1)
            for i in range(size)
        ],
        1,
    )
    np.testing.assert_allclose(avg_pool_3x3(jnp.asarray(x)), want, rtol=1e-6, atol=1e-6)


class PerEdgeSupernet(nnx.Module):
    """The search network as AutoDL-Projects lays it out: one module per op per edge, each
    node the sum over its input edges of sum_k w[e, k] op_k (XLA convolutions and
    `reduce_window` pools). `copy_from` takes an `NB201Supernet`'s weights."""

    def __init__(self, space, channels, cells, num_classes, rngs):
        self.edges, self.ops = space.edges, space.ops
        self.stem_conv = conv(3, channels, 3, 1, 1, rngs=rngs)
        self.stem_bn = batch_norm(channels, track_stats=False, rngs=rngs)
        stages, reductions = [], []
        for s in range(3):
            width = channels * 2**s
            if s:
                reductions.append(
                    ResNetBasicBlock(width // 2, width, 2, track_stats=False, rngs=rngs)
                )
            stages.append(
                nnx.List(
                    [
                        nnx.List(
                            [
                                nnx.List(
                                    [
                                        nb201_op(
                                            name,
                                            width,
                                            width,
                                            1,
                                            affine=False,
                                            track_stats=False,
                                            rngs=rngs,
                                        )
                                        for name in space.ops
                                    ]
                                )
                                for _ in space.edges
                            ]
                        )
                        for _ in range(cells)
                    ]
                )
            )
        self.stages, self.reductions = nnx.List(stages), nnx.List(reductions)
        self.head_bn = batch_norm(4 * channels, track_stats=False, rngs=rngs)
        self.classifier = linear(4 * channels, num_classes, rngs=rngs)

    def copy_from(self, net):
        """Every weight of `net`; a cell's kernels are the columns of its node's stacked
        matrix that belong to the edge."""
        self.stem_conv.kernel[...] = net.stem_conv.kernel[...]
        for block, ref in zip(self.reductions, net.reductions, strict=True):
            for part in ("conv_a", "conv_b"):
                getattr(block, part).conv.kernel[...] = getattr(ref, part).conv.kernel[...]
            block.down.kernel[...] = ref.down.kernel[...]
        for cells, stage in zip(self.stages, net.stages, strict=True):
            width = stage.channels
            for c, cell in enumerate(cells):
                for e, (i, _) in enumerate(self.edges):
                    slot = stage.out_edges[i].index(e)
                    for k, name in enumerate(self.ops):
                        if name in ("nor_conv_1x1", "nor_conv_3x3"):
                            size = 1 if name == "nor_conv_1x1" else 3
                            kernel = stage.kernels[name][i][...][
                                c, :, slot * width : (slot + 1) * width
                            ]
                            cell[e][k].conv.kernel[...] = kernel.reshape(size, size, width, width)
        self.classifier.kernel[...] = net.classifier.kernel[...]
        self.classifier.bias[...] = net.classifier.bias[...]
        return self

    def __call__(self, x, w, index=None):
        x = self.stem_bn(self.stem_conv(x))
        for s, cells in enumerate(self.stages):
            if s:
                x = self.reductions[s - 1](x)
            for cell in cells:
                nodes = [x]
                for j in range(1, max(t for _, t in self.edges) + 1):
                    total = 0.0
                    for e, (i, t) in enumerate(self.edges):
                        if t != j:
                            continue
                        if index is None:
                            total = total + sum(
                                w[e, k] * op(nodes[i]) for k, op in enumerate(cell[e])
                            )
                        else:  # GDAS: the indexed op, plus the others' straight-through 0
                            k = int(index[e])
                            total = (
                                total + w[e, k] * cell[e][k](nodes[i]) + (jnp.sum(w[e]) - w[e, k])
                            )
                    nodes.append(total)
                x = nodes[-1]
        return classifier_head(x, self.head_bn, self.classifier)


SPACES = {
    "nb201": NB201(),
    # every op the supernet knows, max pooling too, in another order; node 0 feeds two
    # edges (their convolutions share one wide matrix product), node 1 one
    "every op, 3 nodes": NB201(
        ops=(
            "none",
            "max_pool_3x3",
            "nor_conv_3x3",
            "skip_connect",
            "avg_pool_3x3",
            "nor_conv_1x1",
        ),
        num_nodes=3,
    ),
}


@pytest.mark.parametrize(
    ("name", "cells", "conv_impl"),
    [
        # NB201's own cell (6 edges, 3 leaving node 0): 50 s of compile, the slow suite's
        pytest.param("nb201", 1, "patches", marks=pytest.mark.slow),
        ("every op, 3 nodes", 1, "patches"),
        # XLA's own 3x3 convolution in place of the im2col products,
        # through the scanned cells
        ("every op, 3 nodes", 2, "native"),
    ],
)
def test_nb201_supernet_is_the_per_edge_search_network(name, cells, conv_impl):
    space = SPACES[name]
    net = space.supernet(
        channels=4, cells_per_stage=cells, num_classes=5, conv_impl=conv_impl, rngs=nnx.Rngs(3)
    )
    ref = PerEdgeSupernet(space, 4, cells, 5, nnx.Rngs(4)).copy_from(net)
    assert count_params(net) == count_params(ref)
    x = images(1, n=6)
    w = jax.nn.softmax(jax.random.normal(jax.random.key(2), (space.num_edges, space.num_ops)))
    index = np.arange(space.num_edges) % space.num_ops  # concrete for the reference
    hard = jax.nn.one_hot(index, space.num_ops)

    @jax.jit
    def outputs(w, x, hard):
        """Logits and op-weight gradients of both networks, soft and hard (GDAS and the
        single-path methods: only the indexed op runs)."""
        out = {}
        for key, model in (("net", net), ("ref", ref)):
            out[key] = (
                model(x, w),
                jax.grad(lambda w, model=model: jnp.sum(jnp.sin(model(x, w))))(w),
                model(x, hard, index),
                jax.grad(lambda w, model=model: jnp.sum(jnp.sin(model(x, w, index))))(w),
            )
        return out

    out = outputs(w, x, hard)
    for a, b in zip(jax.tree.leaves(out["net"]), jax.tree.leaves(out["ref"]), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def test_single_path_gradients_are_the_mixed_cells_at_one_hot_weights():
    """The single-path cell's hand-written backward (the indexed op's gradient, recomputed
    inside a `lax.switch`) against the mixed cell's autodiff, which every op runs in: at
    one-hot weights the two networks are one function of the parameters and the input, so
    their gradients and their forward-over-reverse products (exact DARTS-V2's) agree, in
    float64, on every op of the space and through the scanned cells."""
    from jnas.oneshot import make_supernet

    space = SPACES["every op, 3 nodes"]
    net = make_supernet(space, {"channels": 3, "cells_per_stage": 2, "num_classes": 4})
    with jax.enable_x64():
        params = jax.tree.map(lambda a: a.astype(jnp.float64), net.init_params(jax.random.key(0)))
        x = images(1, n=4, size=6).astype(jnp.float64)

        def loss(p, x, hard, index):
            return jnp.sum(jnp.sin(net.apply(p, x, hard, index)))

        def grads_and_hvp(p, x, hard, index):
            """Gradients in (params, x) and their product with the Hessian along dp."""
            g = jax.grad(loss, (0, 1))(p, x, hard, index)
            dp = jax.tree.map(jnp.cos, p)  # a fixed direction, dense in every kernel
            return g, jax.jvp(lambda p: jax.grad(loss)(p, x, hard, index), (p,), (dp,))[1]

        single_path = jax.jit(grads_and_hvp)
        mixed = jax.jit(functools.partial(grads_and_hvp, index=None))
        for shift in range(space.num_ops):  # every op on every edge
            index = (jnp.arange(space.num_edges) + shift) % space.num_ops
            hard = jax.nn.one_hot(index, space.num_ops, dtype=jnp.float64)
            got, want = single_path(params, x, hard, index), mixed(params, x, hard)
            for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
                np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-10)


def test_nb201_supernet_scanned_cells_equal_unrolled_cells():
    net = NB201().supernet(channels=4, cells_per_stage=2, num_classes=5, rngs=nnx.Rngs(3))
    x = images(1, n=6)
    w = jax.nn.softmax(jax.random.normal(jax.random.key(2), (6, 5)))
    scanned = jax.jit(lambda w: net(x, w))(w)
    for stage in net.stages:
        stage.scan = False
    np.testing.assert_allclose(jax.jit(lambda w: net(x, w))(w), scanned, rtol=1e-5, atol=1e-5)


def test_backward_keeps_the_mixed_cells_inner_nodes_and_not_the_single_paths():
    """The checkpoint policy saves each mixed cell's two inner nodes (NB201 nodes 1 and 2,
    the ones with edges leaving them) for the backward pass instead of recomputing them:
    3 stages x 2 cells x 2 nodes. The single-path (GDAS) cell saves them too, as the
    inputs its ops' backward recomputes from, and nothing from inside an op (no patches,
    no pre-norm products: a `lax.switch` would keep those of every branch)."""
    import contextlib
    import io

    from jax.ad_checkpoint import print_saved_residuals

    net = NB201().supernet(channels=4, cells_per_stage=2, num_classes=5, rngs=nnx.Rngs(3))
    for stage in net.stages:
        stage.scan = False  # the same policy; residuals of unrolled cells are listed one by one
    x = images(1)
    w = jax.nn.softmax(jax.random.normal(jax.random.key(2), (6, 5)))

    def saved(index):
        text = io.StringIO()
        with contextlib.redirect_stdout(text):
            print_saved_residuals(lambda w: net(x, w, index).sum(), w)
        return text.getvalue()

    assert saved(None).count("named 'nb201_search_node'") == 3 * 2 * 2
    single_path = saved(jnp.array([0, 1, 2, 3, 4, 1]))
    assert single_path.count("named 'nb201_search_node'") == 3 * 2 * 2
    assert "_single_op" not in single_path
    # on the CPU path ("native") the convolutions are `custom_vjp`s, not bare dots: their
    # wide outputs (3x3 and 1x1, one each per node with edges leaving it: nodes 0, 1, 2)
    # are kept by name, not recomputed in the backward pass
    for stage in net.stages:
        stage.conv_impl = "native"
    assert saved(None).count("named 'nb201_search_conv'") == 3 * 2 * 3 * 2


def test_the_cpu_path_runs_every_mixed_convolution_through_the_canonical_rules():
    """conv_impl="native": each node's wide 3x3 and 1x1 convolution is `canonical_conv` /
    `canonical_dot` (their derivatives are XLA:CPU's fast forms, tests/nn/
    test_canonical_conv.py); "patches" keeps JAX's own rules (forward mode works there)."""
    x, w = images(1), jnp.full((6, 5), 0.2)

    def calls(conv_impl):
        net = NB201().supernet(
            channels=4, cells_per_stage=1, num_classes=5, conv_impl=conv_impl, rngs=nnx.Rngs(3)
        )
        text = str(jax.make_jaxpr(lambda x: net(x, w))(x))
        return text.count("name=_conv"), text.count("name=_dot")

    assert calls("native") == (3 * 3, 3 * 3)  # 3 stages x nodes 0, 1, 2
    assert calls("patches") == (0, 0)


def test_nb201_supernet_rejects_an_unknown_conv_impl():
    with pytest.raises(ValueError, match="conv_impl"):
        NB201().supernet(channels=4, cells_per_stage=1, conv_impl="winograd")


def test_nb201_supernet_with_one_hot_weights_is_the_discrete_network():
    """The discrete NB201 network (affine BN at its initial identity, batch statistics)
    given the supernet's weights for the chosen ops computes the same logits."""
    space = NB201()
    arch = space.from_string(
        "|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|avg_pool_3x3~0|none~1|nor_conv_3x3~2|"
    )
    net = space.supernet(channels=4, cells_per_stage=2, num_classes=5, rngs=nnx.Rngs(0))
    model = space.build(arch, channels=4, cells_per_stage=2, num_classes=5, rngs=nnx.Rngs(1))
    assert isinstance(model, NB201Network)
    model.stem_conv.kernel[...] = net.stem_conv.kernel[...]
    cells = [layer for layer in model.layers if not isinstance(layer, ResNetBasicBlock)]
    blocks = [layer for layer in model.layers if isinstance(layer, ResNetBasicBlock)]
    for block, ref in zip(blocks, net.reductions, strict=True):
        for part in ("conv_a", "conv_b"):
            getattr(block, part).conv.kernel[...] = getattr(ref, part).conv.kernel[...]
        block.down.kernel[...] = ref.down.kernel[...]
    ops = np.asarray(arch.ops).tolist()
    for c, cell in enumerate(cells):
        stage = net.stages[c // 2]
        width = stage.channels
        for e, (i, _) in enumerate(space.edges):
            name = space.ops[ops[e]]
            if name in ("nor_conv_1x1", "nor_conv_3x3"):
                k = 1 if name == "nor_conv_1x1" else 3
                slot = stage.out_edges[i].index(e)
                kernel = stage.kernels[name][i][...][c % 2, :, slot * width : (slot + 1) * width]
                cell.ops[e].conv.kernel[...] = kernel.reshape(k, k, width, width)
    model.classifier.kernel[...] = net.classifier.kernel[...]
    model.classifier.bias[...] = net.classifier.bias[...]
    x = images(4, n=6)
    index = space.supernet_index(arch)
    one_hot = jax.nn.one_hot(index, space.num_ops)
    want = model(x)
    np.testing.assert_allclose(net(x, one_hot), want, rtol=2e-5, atol=2e-5)
    np.testing.assert_allclose(net(x, one_hot, index), want, rtol=2e-5, atol=2e-5)


def test_nb201_search_network_has_the_references_weights_less_its_dead_biases():
    """AutoDL-Projects' search network (C=16, N=5) has 1,692,826 weights; its cells'
    convolutions carry biases (`bias=not affine`) that the BN after them cancels: 2 convs x
    6 edges x C per cell, 5 cells per stage at C = 16, 32, 64."""
    net = nnx.eval_shape(lambda: NB201().supernet(rngs=nnx.Rngs(0)))
    assert count_params(net) == 1_692_826 - 2 * 6 * 5 * (16 + 32 + 64)


def test_nb201_supernet_rejects_misshapen_weights():
    net = NB201().supernet(channels=2, cells_per_stage=1, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="weights"):
        net(images(0, n=2), jnp.ones((5, 6)))
    with pytest.raises(ValueError, match="op_names"):
        NB201(ops=("none", "skip_connect", "conv_5x5")).supernet(channels=2)
