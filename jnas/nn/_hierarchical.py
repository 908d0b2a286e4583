"""The HNAS network (Liu et al. 2018): motifs of motifs, compiled recursively.

The small CIFAR model: 3x3 conv stem (C), then per stage `cells_per_stage` cells (the
top-level motif) with 3x3 separable stride-2 convolutions doubling the width between
stages, global average pooling and a linear classifier. Inside a motif, a node merges
its inputs by depthwise concatenation followed by a 1x1 conv-BN back to C channels (a
single input passes through); nodes on no input -> output path are left out.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from jnas._checks import check_positive
from jnas.nn._ops import Identity, avg_pool, batch_norm, conv, linear, max_pool
from jnas.nn._rngs import init_rngs
from jnas.nn._taps import relu


class _Primitive(nnx.Module):
    def __init__(self, name: str, c: int, *, rngs: nnx.Rngs):
        self.name = name
        dw = pw = None
        if name == "conv_1x1":
            pw = conv(c, c, 1, rngs=rngs)
        elif name == "dw_conv_3x3":
            dw = conv(c, c, 3, 1, 1, groups=c, rngs=rngs)
        elif name == "sep_conv_3x3":
            dw = conv(c, c, 3, 1, 1, groups=c, rngs=rngs)
            pw = conv(c, c, 1, rngs=rngs)
        elif name not in ("identity", "max_pool_3x3", "avg_pool_3x3"):
            raise ValueError(
                f"Hierarchical primitive: unknown op {name!r}; expected one of "
                "identity, conv_1x1, dw_conv_3x3, sep_conv_3x3, max_pool_3x3, "
                "avg_pool_3x3"
            )
        self.dw, self.pw = dw, pw
        self.bn = batch_norm(c, rngs=rngs) if dw is not None or pw is not None else None

    def __call__(self, x: jax.Array) -> jax.Array:
        if self.name == "max_pool_3x3":
            return max_pool(x, 3, 1, 1)
        if self.name == "avg_pool_3x3":
            return avg_pool(x, 3, 1, 1)
        if self.bn is None:
            return x
        if self.dw is not None:
            x = self.dw(x)
        if self.pw is not None:
            x = self.pw(x)
        return relu(self.bn(x))


class Motif(nnx.Module):
    """One motif instance: its live edges, each a primitive or a lower-level motif."""

    def __init__(
        self, space: Any, levels: tuple, level: int, index: int, c: int, *, rngs: nnx.Rngs
    ):
        n = space.num_nodes[level]
        values = levels[level][index]
        edges = [(i, j, v) for (i, j), v in zip(space.edges(level), values, strict=True) if v]
        fwd, bwd = {0}, {n - 1}
        for i, j, _ in edges:  # edges are in topological order
            if i in fwd:
                fwd.add(j)
        for i, j, _ in reversed(edges):
            if j in bwd:
                bwd.add(i)
        live = fwd & bwd
        self.edges = tuple((i, j) for i, j, _ in edges if i in live and j in live)
        self.num_nodes = n
        ops = []
        for i, j, v in edges:
            if i in live and j in live:
                if level == 0:
                    ops.append(_Primitive(space.primitives[v - 1], c, rngs=rngs))
                else:
                    ops.append(Motif(space, levels, level - 1, v - 1, c, rngs=rngs))
        self.ops = nnx.List(ops)
        merges = []
        for j in range(n):
            fan_in = sum(1 for _, t in self.edges if t == j)
            merges.append(_Merge(fan_in, c, rngs=rngs) if fan_in > 1 else Identity())
        self.merges = nnx.List(merges)

    def __call__(self, x: jax.Array) -> jax.Array:
        nodes = {0: x}
        for j in range(1, self.num_nodes):
            ins = [op(nodes[i]) for op, (i, t) in zip(self.ops, self.edges, strict=True) if t == j]
            if ins:
                nodes[j] = self.merges[j](jnp.concatenate(ins, axis=-1))
        return nodes[self.num_nodes - 1]


class _Merge(nnx.Module):
    """Depthwise concatenation, then a 1x1 conv-BN back to C channels."""

    def __init__(self, fan_in: int, c: int, *, rngs: nnx.Rngs):
        self.conv = conv(fan_in * c, c, 1, rngs=rngs)
        self.bn = batch_norm(c, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.bn(self.conv(x))


class _SepConvReduce(nnx.Module):
    def __init__(self, cin: int, cout: int, *, rngs: nnx.Rngs):
        self.dw = conv(cin, cin, 3, 2, 1, groups=cin, rngs=rngs)
        self.pw = conv(cin, cout, 1, rngs=rngs)
        self.bn = batch_norm(cout, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return relu(self.bn(self.pw(self.dw(x))))


class HierarchicalNetwork(nnx.Module):
    """HNAS's small CIFAR network around the top-level motif."""

    def __init__(
        self,
        space: Any,
        levels: tuple,
        *,
        channels: int = 16,
        num_classes: int = 10,
        cells_per_stage: int = 1,
        rngs: nnx.Rngs | None = None,
    ):
        check_positive(
            "HierarchicalNetwork",
            channels=channels,
            num_classes=num_classes,
            cells_per_stage=cells_per_stage,
        )
        rngs = rngs or init_rngs(0)
        top = space.num_levels - 1
        self.stem = conv(3, channels, 3, 1, 1, rngs=rngs)
        self.stem_bn = batch_norm(channels, rngs=rngs)
        layers, c = [], channels
        for stage in range(3):
            if stage > 0:
                layers.append(_SepConvReduce(c, 2 * c, rngs=rngs))
                c *= 2
            layers += [Motif(space, levels, top, 0, c, rngs=rngs) for _ in range(cells_per_stage)]
        self.layers = nnx.List(layers)
        self.classifier = linear(c, num_classes, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        x = self.stem_bn(self.stem(x))
        for layer in self.layers:
            x = layer(x)
        return self.classifier(jnp.mean(x, axis=(1, 2)))
