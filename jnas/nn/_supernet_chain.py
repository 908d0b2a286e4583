"""The ProxylessNAS over-parameterised network for a `Chain` space.

The chain network's fixed layers (stem, first MBConv, feature mix, classifier) around one
`MixedEdge` per searchable block whose candidates are every kernel x expansion MBConv
and, last, the skip choice: the identity where the block may be skipped, else a zero op
(a candidate the derivation never picks, so every block has the same K candidates).
BN uses batch statistics only, as in jnas' other supernets.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from jnas._checks import check_positive
from jnas.nn._chain import ConvBNAct, MBConv
from jnas.nn._ops import Identity, Zero, linear
from jnas.nn._rngs import init_rngs
from jnas.nn._supernet import MixedEdge


class ChainSupernet(nnx.Module):
    """`model(x, weights, index=None)`: `weights` float[B, K] per block and candidate
    (`Chain` choice order), `index` int[B] runs only the indexed candidate per block."""

    def __init__(
        self,
        space: Any,
        *,
        num_classes: int = 1000,
        in_channels: int = 3,
        stem_stride: int = 2,
        rngs: nnx.Rngs | None = None,
    ):
        check_positive("ChainSupernet", num_classes=num_classes, in_channels=in_channels)
        if stem_stride not in (1, 2):
            raise ValueError(f"ChainSupernet: `stem_stride` must be 1 or 2; got {stem_stride}")
        rngs = rngs or init_rngs(0)
        norm = {"track_stats": False, "rngs": rngs}
        self.stem = ConvBNAct(in_channels, space.stem_channels, 3, stem_stride, **norm)
        self.first = MBConv(space.stem_channels, space.first_block_channels, 3, 1, 1, **norm)
        blocks, c = [], space.first_block_channels
        for width, n, stride in space.stages:
            for i in range(n):
                s = stride if i == 0 else 1
                candidates: list[nnx.Module] = [
                    MBConv(c, width, k, s, e, **norm)
                    for k in space.kernels
                    for e in space.expansions
                ]
                candidates.append(Identity() if i > 0 else Zero(width, s))
                blocks.append(MixedEdge(candidates))
                c = width
        self.blocks = nnx.List(blocks)
        self.head = ConvBNAct(c, space.head_channels, 1, **norm)
        self.classifier = linear(space.head_channels, num_classes, rngs=rngs)

    def __call__(
        self, x: jax.Array, weights: jax.Array, index: jax.Array | None = None
    ) -> jax.Array:
        """Logits for NHWC images under the given candidate weights (and sampled ones)."""
        x = self.first(self.stem(x))
        for b, block in enumerate(self.blocks):
            x = block(x, weights[b], None if index is None else index[b])
        return self.classifier(jnp.mean(self.head(x), axis=(1, 2)))
