"""The NAS-Bench-201 network (the NATS-Bench size-space network, built on the same
`_TinyNetwork`, is in `_nats.py`).

It follows AutoDL-Projects (`TinyNetwork` / `DynamicShapeTinyNet` with `InferCell`):
a 3x3 conv-BN stem, stages of cells separated by residual reduction blocks, then
BN-ReLU, global average pooling and a linear classifier.
"""

from __future__ import annotations

from typing import Any, cast

import jax
import numpy as np
from flax import nnx

from jnas._checks import check_positive
from jnas.nn._ops import (
    FactorizedReduce,
    Identity,
    Pooling,
    ReLUConvBN,
    ResNetBasicBlock,
    Zero,
    batch_norm,
    classifier_head,
    conv,
    linear,
)
from jnas.nn._rngs import init_rngs


def nb201_op(
    name: str,
    cin: int,
    cout: int,
    stride: int,
    *,
    affine: bool = True,
    track_stats: bool = True,
    rngs: nnx.Rngs,
) -> nnx.Module:
    """One NB201 candidate operation (AutoDL-Projects' `OPS`).

    The search cells use `affine=False, track_stats=False` (the NB201 search setting).
    """
    norm = {"affine": affine, "track_stats": track_stats, "rngs": rngs}
    if name == "none":
        return Zero(cout, stride)
    if name == "skip_connect":
        if stride == 1 and cin == cout:
            return Identity()
        return FactorizedReduce(cin, cout, stride, **norm)
    if name == "nor_conv_1x1":
        return ReLUConvBN(cin, cout, 1, stride, 0, **norm)
    if name == "nor_conv_3x3":
        return ReLUConvBN(cin, cout, 3, stride, 1, **norm)
    if name == "avg_pool_3x3":
        return Pooling(cin, cout, stride, "avg", **norm)
    if name == "max_pool_3x3":
        return Pooling(cin, cout, stride, "max", **norm)
    raise ValueError(
        f"nb201_op: unknown op `name` {name!r}; expected one of none, "
        "skip_connect, nor_conv_1x1, nor_conv_3x3, avg_pool_3x3, max_pool_3x3"
    )


class InferCell(nnx.Module):
    """A discrete NB201 cell: node j is the sum of its input edges' ops."""

    def __init__(
        self,
        edges: tuple[tuple[int, int, str], ...],
        cin: int,
        cout: int,
        *,
        track_stats: bool = True,
        rngs: nnx.Rngs,
    ):
        self.edges = tuple((i, j) for i, j, _ in edges)
        self.num_nodes = max(j for _, j in self.edges) + 1
        self.ops = nnx.List(
            [
                nb201_op(op, cin if i == 0 else cout, cout, 1, track_stats=track_stats, rngs=rngs)
                for i, _, op in edges
            ]
        )

    def __call__(self, x: jax.Array) -> jax.Array:
        nodes = [x]
        for j in range(1, self.num_nodes):
            into = (op(nodes[i]) for op, (i, t) in zip(self.ops, self.edges, strict=True) if t == j)
            nodes.append(cast(jax.Array, sum(into)))
        return nodes[-1]


class _TinyNetwork(nnx.Module):
    """Stem, cells and reduction blocks at the given widths, then the classifier head."""

    def __init__(
        self,
        widths: list[int],
        reductions: list[bool],
        cell_edges,
        *,
        num_classes: int,
        in_channels: int = 3,
        track_stats: bool = True,
        rngs: nnx.Rngs,
    ):
        self.stem_conv = conv(in_channels, widths[0], 3, 1, 1, rngs=rngs)
        self.stem_bn = batch_norm(widths[0], track_stats=track_stats, rngs=rngs)
        layers, prev = [], widths[0]
        for width, reduction in zip(widths, reductions, strict=True):
            if reduction:
                layers.append(ResNetBasicBlock(prev, width, 2, track_stats=track_stats, rngs=rngs))
            else:
                layers.append(
                    InferCell(cell_edges, prev, width, track_stats=track_stats, rngs=rngs)
                )
            prev = width
        self.layers = nnx.List(layers)
        self.head_bn = batch_norm(prev, track_stats=track_stats, rngs=rngs)
        self.classifier = linear(prev, num_classes, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        """Logits for NHWC images."""
        x = self.stem_bn(self.stem_conv(x))
        for layer in self.layers:
            x = layer(x)
        return classifier_head(x, self.head_bn, self.classifier)


class NB201Network(_TinyNetwork):
    """The NB201 evaluation network (`TinyNetwork`): stem 16, 3 stages x N cells.

    Its parameter count equals the benchmark's `params_M` and its multiply-accumulates
    the benchmark's `flops_M` (see `jnas.nn.count_params`, `jnas.nn.count_flops`).
    """

    def __init__(
        self,
        space: Any,
        arch: Any,
        *,
        channels: int = 16,
        cells_per_stage: int = 5,
        num_classes: int = 10,
        rngs: nnx.Rngs | None = None,
    ):
        check_positive(
            "NB201Network",
            channels=channels,
            cells_per_stage=cells_per_stage,
            num_classes=num_classes,
        )
        ops = np.asarray(arch.ops).tolist()
        edges = tuple((i, j, space.ops[op]) for (i, j), op in zip(space.edges, ops, strict=True))
        n = cells_per_stage
        widths = [channels] * n + [2 * channels] * (n + 1) + [4 * channels] * (n + 1)
        reductions = [False] * n + [True] + [False] * n + [True] + [False] * n
        super().__init__(
            widths, reductions, edges, num_classes=num_classes, rngs=rngs or init_rngs(0)
        )
