"""The DARTS search network (`Network` of the DARTS code's `model_search.py`).

A 3C stem, `num_cells` cells (reductions at 1/3 and 2/3 of the depth, C doubled there),
every cell a DAG in which node j sums a `MixedEdge` from each of the two cell inputs and
the j earlier nodes, the cell output the concatenation of its intermediate nodes, global
average pooling and a linear classifier. As in the DARTS code the candidate ops have no
BN affine parameters and pooling ops are followed by a BN; as the NB201 authors found
best, BN always uses batch statistics (no running averages, no mutable state).

Op weights are float[2 * E, K]: the normal cell's E = sum_j (j + 2) edges (14 for 4
nodes), then the reduction cell's; edge (node j, input i) is row j (j + 3) / 2 + i.
"""

from __future__ import annotations

from typing import Any, cast

import jax
import jax.numpy as jnp
from flax import nnx

from jnas._checks import check_positive
from jnas.nn._darts import darts_op
from jnas.nn._ops import (
    BatchStatsNorm,
    FactorizedReduce,
    ReLUConvBN,
    batch_norm,
    conv,
    linear,
)
from jnas.nn._rngs import init_rngs
from jnas.nn._supernet import MixedEdge


class _PoolBN(nnx.Module):
    """A pooling op followed by an affine-free BN (the DARTS search network's MixedOp)."""

    def __init__(self, pool: nnx.Module, channels: int, *, rngs: nnx.Rngs):
        self.pool = pool
        self.bn = BatchStatsNorm(channels, affine=False, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.bn(self.pool(x))


def darts_search_op(name: str, channels: int, stride: int, *, rngs: nnx.Rngs) -> nnx.Module:
    """A candidate op of the DARTS search network (affine-free, batch-statistics BN)."""
    op = darts_op(name, channels, stride, affine=False, track_stats=False, rngs=rngs)
    return _PoolBN(op, channels, rngs=rngs) if "pool" in name else op


def edge_offsets(num_nodes: int) -> list[int]:
    """Row of edge (node j, input 0) in a cell's op weights: j (j + 3) / 2."""
    return [j * (j + 3) // 2 for j in range(num_nodes)]


class DARTSSearchCell(nnx.Module):
    """A DARTS search cell: node j sums `MixedEdge`s from the inputs and earlier nodes."""

    def __init__(
        self,
        op_names: tuple[str, ...],
        num_nodes: int,
        c_prev_prev: int,
        c_prev: int,
        channels: int,
        *,
        reduction: bool,
        reduction_prev: bool,
        rngs: nnx.Rngs,
    ):
        norm = {"affine": False, "track_stats": False, "rngs": rngs}
        self.pre0 = (
            FactorizedReduce(c_prev_prev, channels, 2, **norm)
            if reduction_prev
            else ReLUConvBN(c_prev_prev, channels, 1, 1, 0, **norm)
        )
        self.pre1 = ReLUConvBN(c_prev, channels, 1, 1, 0, **norm)
        self.num_nodes = num_nodes
        self.mixed = nnx.List(
            [
                MixedEdge(
                    [
                        darts_search_op(name, channels, 2 if reduction and i < 2 else 1, rngs=rngs)
                        for name in op_names
                    ]
                )
                for j in range(num_nodes)
                for i in range(j + 2)
            ]
        )

    def __call__(
        self, s0: jax.Array, s1: jax.Array, weights: jax.Array, index: jax.Array | None = None
    ) -> jax.Array:
        states = [self.pre0(s0), self.pre1(s1)]
        for j, offset in enumerate(edge_offsets(self.num_nodes)):
            into = (
                self.mixed[offset + i](
                    states[i], weights[offset + i], None if index is None else index[offset + i]
                )
                for i in range(j + 2)
            )
            states.append(cast(jax.Array, sum(into)))
        return jnp.concatenate(states[2:], axis=-1)


class DARTSSupernet(nnx.Module):
    """The DARTS search network (C=16, 8 cells, 4 nodes by default).

    `model(x, weights, index=None)`: `weights` float[2E, K] (normal cell's rows, then the
    reduction cell's), `index` int[2E] runs only the indexed op per edge.
    """

    def __init__(
        self,
        space: Any,
        *,
        channels: int = 16,
        num_cells: int = 8,
        num_classes: int = 10,
        in_channels: int = 3,
        stem_multiplier: int = 3,
        rngs: nnx.Rngs | None = None,
    ):
        check_positive(
            "DARTSSupernet",
            channels=channels,
            num_cells=num_cells,
            num_classes=num_classes,
            in_channels=in_channels,
            stem_multiplier=stem_multiplier,
        )
        if num_cells < 3:
            raise ValueError(
                f"DARTSSupernet: `num_cells` must be >= 3 (two reduction cells); got {num_cells}"
            )
        rngs = rngs or init_rngs(0)
        nodes = space.num_nodes
        self.edges_per_cell = sum(j + 2 for j in range(nodes))
        c_curr = stem_multiplier * channels
        self.stem_conv = conv(in_channels, c_curr, 3, 1, 1, rngs=rngs)
        self.stem_bn = batch_norm(c_curr, track_stats=False, rngs=rngs)
        c_pp, c_p, c_curr = c_curr, c_curr, channels
        cells, reduction_prev = [], False
        self.reductions = tuple(i in (num_cells // 3, 2 * num_cells // 3) for i in range(num_cells))
        for reduction in self.reductions:
            if reduction:
                c_curr *= 2
            cells.append(
                DARTSSearchCell(
                    tuple(space.ops),
                    nodes,
                    c_pp,
                    c_p,
                    c_curr,
                    reduction=reduction,
                    reduction_prev=reduction_prev,
                    rngs=rngs,
                )
            )
            reduction_prev = reduction
            c_pp, c_p = c_p, nodes * c_curr
        self.cells = nnx.List(cells)
        self.classifier = linear(c_p, num_classes, rngs=rngs)

    def __call__(
        self, x: jax.Array, weights: jax.Array, index: jax.Array | None = None
    ) -> jax.Array:
        """Logits for NHWC images under the given op weights (and sampled ops)."""
        e = self.edges_per_cell
        s0 = s1 = self.stem_bn(self.stem_conv(x))
        for cell, reduction in zip(self.cells, self.reductions, strict=True):
            rows = slice(e, 2 * e) if reduction else slice(0, e)
            s0, s1 = s1, cell(s0, s1, weights[rows], None if index is None else index[rows])
        return self.classifier(jnp.mean(s1, axis=(1, 2)))
