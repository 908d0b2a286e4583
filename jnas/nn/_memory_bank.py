"""Networks of SMASH's memory-bank space (`jnas.spaces.MemoryBank`; Brock et al., ICLR 2018).

Stage s has width `channels * 2**s` and `space.banks` banks; bank 0 starts as the stage's
input, the others at zero. A block reads a 1x1 convolution of the concatenation of the
banks it reads (computed as the sum of one 1x1 convolution per read bank, which is the
same product), applies its op (`depth` x [BN, ReLU, k x k conv of dilation d]) and adds the
result to every bank it writes. A stage ends with BN, ReLU and a 1x1 convolution of all its
banks to the next width, then a 2x2 average pool; the last stage ends with BN, ReLU, global
average pooling and the classifier. The stem is a 3x3 convolution.

`MemoryBankSupernet` holds every read, every write and every op of every block and mixes
them by op weights `[stages * blocks * 3, K]` (the space's decision order: read, write, op
per block): a read or a write of subset weights w reads bank b with coefficient
`sum_c w[c] * mask[c, b]`, which is the discrete read for one-hot w. Its batch norm uses
batch statistics without affine parameters (jnas' supernets); `MemoryBankNetwork` is one
architecture with the chosen convolutions only and tracked batch norm.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jnas._checks import check_positive
from jnas.nn._ops import avg_pool, batch_norm, conv, linear
from jnas.nn._rngs import init_rngs
from jnas.nn._supernet import MixedEdge
from jnas.nn._taps import relu, tap


class BankOp(nnx.Module):
    """`depth` x (BN, ReLU, k x k conv with dilation d, 'same' padding), width kept."""

    def __init__(
        self,
        width: int,
        kernel: int,
        dilation: int,
        depth: int,
        *,
        track_stats: bool,
        rngs: nnx.Rngs,
    ):
        pad = dilation * (kernel - 1) // 2
        affine = track_stats  # supernet BN: batch statistics, no affine parameters
        self.norms = nnx.List(
            [
                batch_norm(width, affine=affine, track_stats=track_stats, rngs=rngs)
                for _ in range(depth)
            ]
        )
        self.convs = nnx.List(
            [conv(width, width, kernel, 1, pad, dilation=dilation, rngs=rngs) for _ in range(depth)]
        )

    def __call__(self, x: jax.Array) -> jax.Array:
        for norm, c in zip(self.norms, self.convs, strict=True):
            x = c(relu(norm(x)))
        return x


class _Transition(nnx.Module):
    """BN, ReLU, 1x1 conv of the concatenated banks to `cout`, 2x2 average pool."""

    def __init__(self, cin: int, cout: int, *, track_stats: bool, rngs: nnx.Rngs):
        self.norm = batch_norm(cin, affine=track_stats, track_stats=track_stats, rngs=rngs)
        self.conv = conv(cin, cout, 1, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return avg_pool(self.conv(relu(self.norm(x))), 2, 2, 0)


class _Head(nnx.Module):
    def __init__(self, cin: int, num_classes: int, *, track_stats: bool, rngs: nnx.Rngs):
        self.norm = batch_norm(cin, affine=track_stats, track_stats=track_stats, rngs=rngs)
        self.linear = linear(cin, num_classes, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        x = tap("features", relu(self.norm(x)))
        return self.linear(jnp.mean(x, axis=(1, 2)))


def _check(where: str, channels: int, num_classes: int, in_channels: int) -> None:
    check_positive(where, channels=channels, num_classes=num_classes, in_channels=in_channels)


class MemoryBankSupernet(nnx.Module):
    """`model(x, weights, index=None)`: NHWC images, `weights` float[S*N*3, K] (read,
    write and op weights of every block), `index` int[S*N*3] runs only the indexed op of
    every block (reads and writes always use `weights`)."""

    def __init__(
        self,
        space: Any,
        *,
        channels: int = 16,
        num_classes: int = 10,
        in_channels: int = 3,
        rngs: nnx.Rngs | None = None,
    ):
        _check("MemoryBankSupernet", channels, num_classes, in_channels)
        rngs = rngs or init_rngs(0)
        self.num_stages, self.num_blocks, self.num_banks = space.stages, space.blocks, space.banks
        self.masks = tuple(map(tuple, space.subset_masks().tolist()))  # [K, banks] constant
        self.stem = conv(in_channels, channels, 3, 1, 1, rngs=rngs)
        reads, ops, transitions = [], [], []
        for s in range(space.stages):
            w = channels * 2**s
            for _ in range(space.blocks):
                reads.append(nnx.List([conv(w, w, 1, rngs=rngs) for _ in range(space.banks)]))
                ops.append(
                    MixedEdge(
                        [
                            BankOp(w, *space.op(c), track_stats=False, rngs=rngs)
                            for c in range(space.num_ops)
                        ]
                    )
                )
            if s < space.stages - 1:
                transitions.append(
                    _Transition(space.banks * w, 2 * w, track_stats=False, rngs=rngs)
                )
        self.reads, self.ops = nnx.List(reads), nnx.List(ops)
        self.transitions = nnx.List(transitions)
        width = channels * 2 ** (space.stages - 1)
        self.head = _Head(space.banks * width, num_classes, track_stats=False, rngs=rngs)

    def __call__(
        self, x: jax.Array, weights: jax.Array, index: jax.Array | None = None
    ) -> jax.Array:
        masks = jnp.asarray(self.masks, weights.dtype)
        x = self.stem(x)
        for s in range(self.num_stages):
            banks = [x] + [jnp.zeros_like(x)] * (self.num_banks - 1)
            for i in range(self.num_blocks):
                b = s * self.num_blocks + i
                read = weights[3 * b] @ masks  # [banks]
                write = weights[3 * b + 1] @ masks
                h = sum(read[j] * c(banks[j]) for j, c in enumerate(self.reads[b]))
                out = self.ops[b](
                    h, weights[3 * b + 2], None if index is None else index[3 * b + 2]
                )
                banks = [bank + write[j] * out for j, bank in enumerate(banks)]
            x = jnp.concatenate(banks, -1)
            if s < self.num_stages - 1:
                x = self.transitions[s](x)
        return self.head(x)


class MemoryBankNetwork(nnx.Module):
    """One memory-bank architecture: the convolutions it uses, tracked batch norm."""

    def __init__(
        self,
        space: Any,
        arch: Any,
        *,
        channels: int = 16,
        num_classes: int = 10,
        in_channels: int = 3,
        rngs: nnx.Rngs | None = None,
    ):
        _check("MemoryBankNetwork", channels, num_classes, in_channels)
        rngs = rngs or init_rngs(0)
        masks = space.subset_masks().astype(bool)
        r, wr, o = (np.asarray(a).reshape(-1) for a in arch)
        self.num_stages, self.num_blocks, self.num_banks = space.stages, space.blocks, space.banks
        self.read_banks = tuple(tuple(np.flatnonzero(masks[c]).tolist()) for c in r)
        self.write_banks = tuple(tuple(np.flatnonzero(masks[c]).tolist()) for c in wr)
        self.stem = conv(in_channels, channels, 3, 1, 1, rngs=rngs)
        reads, ops, transitions = [], [], []
        for s in range(space.stages):
            w = channels * 2**s
            for i in range(space.blocks):
                b = s * space.blocks + i
                reads.append(nnx.List([conv(w, w, 1, rngs=rngs) for _ in self.read_banks[b]]))
                ops.append(BankOp(w, *space.op(int(o[b])), track_stats=True, rngs=rngs))
            if s < space.stages - 1:
                transitions.append(_Transition(space.banks * w, 2 * w, track_stats=True, rngs=rngs))
        self.reads, self.ops = nnx.List(reads), nnx.List(ops)
        self.transitions = nnx.List(transitions)
        width = channels * 2 ** (space.stages - 1)
        self.head = _Head(space.banks * width, num_classes, track_stats=True, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        x = self.stem(x)
        for s in range(self.num_stages):
            banks = [x] + [jnp.zeros_like(x)] * (self.num_banks - 1)
            for i in range(self.num_blocks):
                b = s * self.num_blocks + i
                h = sum(c(banks[j]) for j, c in zip(self.read_banks[b], self.reads[b], strict=True))
                out = self.ops[b](h)
                banks = [
                    bank + out if j in self.write_banks[b] else bank for j, bank in enumerate(banks)
                ]
            x = jnp.concatenate(banks, -1)
            if s < self.num_stages - 1:
                x = self.transitions[s](x)
        return self.head(x)
