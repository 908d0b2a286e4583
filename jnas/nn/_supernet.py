"""Weight-sharing supernets: every candidate op on every edge, op weights as an input.

One supernet serves every one-shot method: DARTS passes softmax weights, GDAS hard
straight-through one-hots with the sampled index, RSWS/SPOS/ENAS a sampled index with
one-hot weights. The NB201 supernet follows AutoDL-Projects' `TinyNetworkDarts` /
`SearchCell`: all cells share one set of op weights; BN uses batch statistics only
(`track_running_stats=False`, the setting the NB201 authors found best), so the supernet
has no mutable state and a training step is a pure function of its parameters.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from jnas.nn._nb201 import nb201_op
from jnas.nn._ops import ResNetBasicBlock, batch_norm, classifier_head, conv, linear


class MixedEdge(nnx.Module):
    """All candidate ops of one edge, mixed by op weights.

    - `index is None`: the weighted sum `sum_k w[k] * op_k(x)` (DARTS, SNAS, DrNAS);
    - `index` given: only op `index` runs (`lax.switch`), scaled by `w[index]`, plus the
      other weights' (zero-valued, straight-through) sum so their gradients flow as in
      GDAS. Under `vmap` over a batched `index` the switch becomes a select and every op
      runs.
    """

    def __init__(self, ops: list[nnx.Module]):
        self.ops = nnx.List(ops)

    def __call__(self, x: jax.Array, w: jax.Array, index: jax.Array | None = None) -> jax.Array:
        if index is None:
            return sum(w[k] * op(x) for k, op in enumerate(self.ops))
        branches = [lambda x, op=op: op(x) for op in self.ops]
        return w[index] * jax.lax.switch(index, branches, x) + (jnp.sum(w) - w[index])


class SearchCell(nnx.Module):
    """An NB201 cell whose every edge is a `MixedEdge`; node j sums its input edges."""

    def __init__(self, edges: tuple[tuple[int, int], ...], op_names: tuple[str, ...],
                 cin: int, cout: int, *, rngs: nnx.Rngs):
        self.edges = edges
        self.num_nodes = max(j for _, j in edges) + 1
        self.mixed = nnx.List([
            MixedEdge([nb201_op(name, cin if i == 0 else cout, cout, 1, affine=False,
                                track_stats=False, rngs=rngs) for name in op_names])
            for i, _ in edges])

    def __call__(self, x: jax.Array, weights: jax.Array,
                 index: jax.Array | None = None) -> jax.Array:
        nodes = [x]
        for j in range(1, self.num_nodes):
            nodes.append(sum(
                edge(nodes[i], weights[e], None if index is None else index[e])
                for e, (edge, (i, t)) in enumerate(zip(self.mixed, self.edges, strict=True))
                if t == j))
        return nodes[-1]


class NB201Supernet(nnx.Module):
    """The NB201 search network: C-channel stem, 3 stages of N search cells, residual
    reductions, BN-ReLU-pool-linear head (C=16, N=5 in the NB201 search runs).
    `stem_stride=2` halves the resolution in the stem (the benchmark's network has 1), so
    small images such as 28x28 Omniglot cost about what MAML's conv4 costs.

    `model(x, weights, index=None)`: `weights` float[E, K] op weights shared by all cells
    (E edges, K ops); `index` int[E] runs only the indexed op per edge.
    """

    def __init__(self, space: Any, *, channels: int = 16, cells_per_stage: int = 5,
                 num_classes: int = 10, in_channels: int = 3, stem_stride: int = 1,
                 rngs: nnx.Rngs | None = None):
        for name, v in (("channels", channels), ("cells_per_stage", cells_per_stage),
                        ("num_classes", num_classes), ("in_channels", in_channels),
                        ("stem_stride", stem_stride)):
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"NB201Supernet: `{name}` must be a positive int; got {v!r}")
        rngs = rngs or nnx.Rngs(0)
        self.num_edges, self.num_ops = space.num_edges, space.num_ops
        n = cells_per_stage
        widths = [channels] * n + [2 * channels] * (n + 1) + [4 * channels] * (n + 1)
        reductions = [False] * n + [True] + [False] * n + [True] + [False] * n
        self.stem_conv = conv(in_channels, channels, 3, stem_stride, 1, rngs=rngs)
        self.stem_bn = batch_norm(channels, track_stats=False, rngs=rngs)
        layers, prev = [], channels
        for width, reduction in zip(widths, reductions, strict=True):
            layers.append(ResNetBasicBlock(prev, width, 2, track_stats=False, rngs=rngs)
                          if reduction else
                          SearchCell(tuple(space.edges), tuple(space.ops), prev, width,
                                     rngs=rngs))
            prev = width
        self.layers = nnx.List(layers)
        self.head_bn = batch_norm(prev, track_stats=False, rngs=rngs)
        self.classifier = linear(prev, num_classes, rngs=rngs)

    def __call__(self, x: jax.Array, weights: jax.Array,
                 index: jax.Array | None = None) -> jax.Array:
        """Logits for NHWC images under the given op weights (and sampled ops)."""
        x = self.stem_bn(self.stem_conv(x))
        for layer in self.layers:
            x = layer(x, weights, index) if isinstance(layer, SearchCell) else layer(x)
        return classifier_head(x, self.head_bn, self.classifier)
