"""MobileNetV2-style networks of inverted-residual (MBConv) blocks (ProxylessNAS, FBNet).

Layout as MobileNetV2 / ProxylessNAS: 3x3 conv-BN-ReLU6 stem, an expansion-1 MBConv,
the searchable blocks (residual when stride 1 and width unchanged), a 1x1 feature-mix
conv-BN-ReLU6, global average pooling, dropout and a linear classifier.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from jnas._checks import check_positive
from jnas.nn._ops import batch_norm, conv, linear
from jnas.nn._rngs import init_rngs


class ConvBNAct(nnx.Module):
    def __init__(
        self,
        cin: int,
        cout: int,
        kernel: int,
        stride: int = 1,
        *,
        groups: int = 1,
        act: bool = True,
        track_stats: bool = True,
        rngs: nnx.Rngs,
    ):
        self.conv = conv(cin, cout, kernel, stride, (kernel - 1) // 2, groups=groups, rngs=rngs)
        self.bn = batch_norm(cout, track_stats=track_stats, rngs=rngs)
        self.act = act

    def __call__(self, x: jax.Array) -> jax.Array:
        x = self.bn(self.conv(x))
        return jax.nn.relu6(x) if self.act else x


class MBConv(nnx.Module):
    """Inverted residual: 1x1 expand, kxk depthwise (strided), 1x1 linear projection."""

    def __init__(
        self,
        cin: int,
        cout: int,
        kernel: int,
        stride: int,
        expansion: int,
        *,
        track_stats: bool = True,
        rngs: nnx.Rngs,
    ):
        hidden = cin * expansion
        norm = {"track_stats": track_stats, "rngs": rngs}
        self.expand = ConvBNAct(cin, hidden, 1, **norm) if expansion != 1 else None
        self.depthwise = ConvBNAct(hidden, hidden, kernel, stride, groups=hidden, **norm)
        self.project = ConvBNAct(hidden, cout, 1, act=False, **norm)
        self.residual = stride == 1 and cin == cout

    def __call__(self, x: jax.Array) -> jax.Array:
        y = self.expand(x) if self.expand is not None else x
        y = self.project(self.depthwise(y))
        return x + y if self.residual else y


class ChainNetwork(nnx.Module):
    """The network of one `Chain` architecture (skipped blocks are identities)."""

    def __init__(
        self,
        space: Any,
        blocks: list[tuple[int, int] | None],
        *,
        num_classes: int = 1000,
        dropout: float = 0.0,
        stem_stride: int = 2,
        rngs: nnx.Rngs | None = None,
    ):
        check_positive("ChainNetwork", num_classes=num_classes)
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"ChainNetwork: `dropout` must be in [0, 1); got {dropout}")
        if stem_stride not in (1, 2):
            raise ValueError(f"ChainNetwork: `stem_stride` must be 1 or 2; got {stem_stride}")
        rngs = rngs or init_rngs(0)
        self.stem = ConvBNAct(3, space.stem_channels, 3, stem_stride, rngs=rngs)
        self.first = MBConv(space.stem_channels, space.first_block_channels, 3, 1, 1, rngs=rngs)
        layers, c, b = [], space.first_block_channels, 0
        for width, n, stride in space.stages:
            for i in range(n):
                choice = blocks[b]
                b += 1
                if choice is None:
                    continue  # skipped: the residual path alone (identity)
                kernel, expansion = choice
                layers.append(
                    MBConv(c, width, kernel, stride if i == 0 else 1, expansion, rngs=rngs)
                )
                c = width
        self.blocks = nnx.List(layers)
        self.head = ConvBNAct(c, space.head_channels, 1, rngs=rngs)
        self.dropout = nnx.Dropout(dropout, rngs=rngs)
        self.classifier = linear(space.head_channels, num_classes, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        x = self.first(self.stem(x))
        for block in self.blocks:
            x = block(x)
        x = jnp.mean(self.head(x), axis=(1, 2))
        return self.classifier(self.dropout(x))
