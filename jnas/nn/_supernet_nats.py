"""A channel-masking supernet for the NATS-Bench size space (FBNetV2-style masks, as
the NATS-Bench authors' size-space searches use).

The size-space network at its largest width in every layer; layer l's outputs (every
node of a cell, both convolutions of a reduction block, the stem for layer 0, the head
BN for the last layer) are multiplied by the channel mask `sum_k w[l, k] * 1[ch <
channels[k]]`. With one-hot weights of an architecture whose layers all have the same
width this is exactly the size-space network of that width on the first channels of
the shared weights; with mixed widths the skip edge from a cell's input is the identity
(the narrow network's 1x1 projection has no counterpart), as in weight-sharing size
searches.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jnas._checks import check_positive
from jnas.nn._nats import NATS_SSS_EDGES
from jnas.nn._nb201 import InferCell, _TinyNetwork
from jnas.nn._ops import avg_pool
from jnas.nn._rngs import init_rngs
from jnas.nn._taps import relu


class NATSSizeSupernet(_TinyNetwork):
    """`model(x, weights, index=None)`: `weights` float[L, K], a mixture of the K candidate
    widths of each layer; `index` is accepted for the common interface and unused (masks
    cost the same as the full-width network)."""

    def __init__(
        self,
        channels: tuple[int, ...],
        num_layers: int,
        *,
        num_classes: int = 10,
        in_channels: int = 3,
        edges: tuple[tuple[int, int, str], ...] = NATS_SSS_EDGES,
        rngs: nnx.Rngs | None = None,
    ):
        check_positive(
            "NATSSizeSupernet",
            num_classes=num_classes,
            in_channels=in_channels,
            num_layers=num_layers,
        )
        if num_layers % 3 != 2:
            raise ValueError(f"NATSSizeSupernet: `num_layers` must be 3N+2; got {num_layers}")
        self.channels = tuple(channels)
        cmax, n = max(self.channels), num_layers // 3
        reductions = [False] * n + [True] + [False] * n + [True] + [False] * n
        super().__init__(
            [cmax] * num_layers,
            reductions,
            edges,
            num_classes=num_classes,
            in_channels=in_channels,
            track_stats=False,
            rngs=rngs or init_rngs(0),
        )

    def __call__(
        self, x: jax.Array, weights: jax.Array, index: jax.Array | None = None
    ) -> jax.Array:
        """Logits for NHWC images under the given width weights."""
        del index
        ch = np.arange(max(self.channels))
        masks = weights @ jnp.asarray(ch[None] < np.asarray(self.channels)[:, None], weights.dtype)
        masks = masks[:, None, None, None, :]  # [L, 1, 1, 1, Cmax]: NHWC channel masks
        x = self.stem_bn(self.stem_conv(x)) * masks[0]
        for layer, mask in zip(self.layers, masks, strict=True):
            if isinstance(layer, InferCell):
                nodes = [x]
                for j in range(1, layer.num_nodes):
                    nodes.append(
                        mask
                        * sum(
                            op(nodes[i])
                            for op, (i, t) in zip(layer.ops, layer.edges, strict=True)
                            if t == j
                        )
                    )
                x = nodes[-1]
            else:  # the residual reduction block
                y = layer.conv_b(layer.conv_a(x) * mask)
                x = (layer.down(avg_pool(x, 2, 2, 0, ceil_mode=True)) + y) * mask
        x = relu(self.head_bn(x) * masks[-1])
        return self.classifier(jnp.mean(x, axis=(1, 2)))
