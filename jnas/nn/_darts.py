"""The DARTS CIFAR evaluation network (`NetworkCIFAR` of the DARTS code, Liu et al. 2019).

A 3C stem, `num_cells` cells with reductions at 1/3 and 2/3 of the depth, the cell output
the concatenation of its intermediate nodes, an optional auxiliary head after the second
reduction, global average pooling and a linear classifier. Drop-path is per sample.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from jnas._checks import check_positive
from jnas.nn._ops import (
    FactorizedReduce,
    Identity,
    ReLUConvBN,
    Zero,
    avg_pool,
    batch_norm,
    conv,
    linear,
    max_pool,
)
from jnas.nn._rngs import init_rngs
from jnas.nn._taps import relu


class SepConv(nnx.Module):
    """Two stacked ReLU -> depthwise conv -> 1x1 conv -> BN blocks (the first strided)."""

    def __init__(
        self,
        cin: int,
        cout: int,
        kernel: int,
        stride: int,
        padding: int,
        *,
        affine: bool = True,
        track_stats: bool = True,
        rngs: nnx.Rngs,
    ):
        norm = {"affine": affine, "track_stats": track_stats, "rngs": rngs}
        self.dw1 = conv(cin, cin, kernel, stride, padding, groups=cin, rngs=rngs)
        self.pw1 = conv(cin, cin, 1, rngs=rngs)
        self.bn1 = batch_norm(cin, **norm)
        self.dw2 = conv(cin, cin, kernel, 1, padding, groups=cin, rngs=rngs)
        self.pw2 = conv(cin, cout, 1, rngs=rngs)
        self.bn2 = batch_norm(cout, **norm)

    def __call__(self, x: jax.Array) -> jax.Array:
        x = self.bn1(self.pw1(self.dw1(relu(x))))
        return self.bn2(self.pw2(self.dw2(relu(x))))


class DilConv(nnx.Module):
    """ReLU -> dilated depthwise conv -> 1x1 conv -> BN."""

    def __init__(
        self,
        cin: int,
        cout: int,
        kernel: int,
        stride: int,
        padding: int,
        dilation: int,
        *,
        affine: bool = True,
        track_stats: bool = True,
        rngs: nnx.Rngs,
    ):
        self.dw = conv(cin, cin, kernel, stride, padding, dilation=dilation, groups=cin, rngs=rngs)
        self.pw = conv(cin, cout, 1, rngs=rngs)
        self.bn = batch_norm(cout, affine=affine, track_stats=track_stats, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.bn(self.pw(self.dw(relu(x))))


class _Pool(nnx.Module):
    def __init__(self, mode: str, stride: int):
        self.mode, self.stride = mode, stride

    def __call__(self, x: jax.Array) -> jax.Array:
        pool = avg_pool if self.mode == "avg" else max_pool
        return pool(x, 3, self.stride, 1)


def darts_op(
    name: str,
    channels: int,
    stride: int,
    *,
    affine: bool = True,
    track_stats: bool = True,
    rngs: nnx.Rngs,
) -> nnx.Module:
    """One DARTS candidate operation (the DARTS code's `OPS`); the search network uses
    `affine=False` (and jnas' supernets `track_stats=False`)."""
    c = channels
    norm = {"affine": affine, "track_stats": track_stats, "rngs": rngs}
    table = {
        "none": lambda: Zero(c, stride),
        "avg_pool_3x3": lambda: _Pool("avg", stride),
        "max_pool_3x3": lambda: _Pool("max", stride),
        "skip_connect": lambda: Identity() if stride == 1 else FactorizedReduce(c, c, 2, **norm),
        "sep_conv_3x3": lambda: SepConv(c, c, 3, stride, 1, **norm),
        "sep_conv_5x5": lambda: SepConv(c, c, 5, stride, 2, **norm),
        "sep_conv_7x7": lambda: SepConv(c, c, 7, stride, 3, **norm),
        "dil_conv_3x3": lambda: DilConv(c, c, 3, stride, 2, 2, **norm),
        "dil_conv_5x5": lambda: DilConv(c, c, 5, stride, 4, 2, **norm),
    }
    if name not in table:
        raise ValueError(f"darts_op: unknown op `name` {name!r}; expected one of {sorted(table)}")
    return table[name]()


class DARTSCell(nnx.Module):
    """A discrete DARTS cell: node k sums its two chosen inputs' ops."""

    def __init__(
        self,
        genotype: tuple[tuple[str, int], ...],
        c_prev_prev: int,
        c_prev: int,
        channels: int,
        *,
        reduction: bool,
        reduction_prev: bool,
        drop_path: float,
        rngs: nnx.Rngs,
    ):
        self.pre0 = (
            FactorizedReduce(c_prev_prev, channels, 2, rngs=rngs)
            if reduction_prev
            else ReLUConvBN(c_prev_prev, channels, 1, 1, 0, rngs=rngs)
        )
        self.pre1 = ReLUConvBN(c_prev, channels, 1, 1, 0, rngs=rngs)
        self.inputs = tuple(s for _, s in genotype)
        self.ops = nnx.List(
            [
                darts_op(name, channels, 2 if reduction and s < 2 else 1, rngs=rngs)
                for name, s in genotype
            ]
        )
        self.drop = nnx.List(
            [
                nnx.Dropout(drop_path, broadcast_dims=(1, 2, 3), rngs=rngs)
                if drop_path > 0 and not isinstance(op, Identity)
                else Identity()
                for op in self.ops
            ]
        )
        self.multiplier = len(genotype) // 2

    def __call__(self, s0: jax.Array, s1: jax.Array) -> jax.Array:
        states = [self.pre0(s0), self.pre1(s1)]
        for k in range(len(self.inputs) // 2):
            h = [self.drop[e](self.ops[e](states[self.inputs[e]])) for e in (2 * k, 2 * k + 1)]
            states.append(h[0] + h[1])
        return jnp.concatenate(states[2:], axis=-1)


class AuxiliaryHead(nnx.Module):
    """The DARTS CIFAR auxiliary classifier (expects 8x8 inputs)."""

    def __init__(self, channels: int, num_classes: int, *, rngs: nnx.Rngs):
        self.conv1 = conv(channels, 128, 1, rngs=rngs)
        self.bn1 = batch_norm(128, rngs=rngs)
        self.conv2 = conv(128, 768, 2, rngs=rngs)
        self.bn2 = batch_norm(768, rngs=rngs)
        self.classifier = linear(768, num_classes, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        x = nnx.avg_pool(relu(x), (5, 5), (3, 3), "VALID")
        x = relu(self.bn1(self.conv1(x)))
        x = relu(self.bn2(self.conv2(x)))
        return self.classifier(x.reshape(x.shape[0], -1))


class DARTSNetwork(nnx.Module):
    """`NetworkCIFAR`: the network DARTS-family genotypes are evaluated with.

    Call it as `logits = net(x)`; with `auxiliary=True` in train mode it returns
    `(logits, aux_logits)`. Count parameters as the papers do with
    `count_params(net, exclude=("aux",))`.
    """

    def __init__(
        self,
        genotype: tuple[tuple[tuple[str, int], ...], ...],
        *,
        channels: int = 36,
        num_cells: int = 20,
        num_classes: int = 10,
        auxiliary: bool = False,
        drop_path: float = 0.0,
        stem_multiplier: int = 3,
        rngs: nnx.Rngs | None = None,
    ):
        check_positive(
            "DARTSNetwork", channels=channels, num_cells=num_cells, num_classes=num_classes
        )
        if num_cells < 3:
            raise ValueError(f"DARTSNetwork: `num_cells` must be >= 3; got {num_cells}")
        if not 0.0 <= drop_path < 1.0:
            raise ValueError(f"DARTSNetwork: `drop_path` must be in [0, 1); got {drop_path}")
        rngs = rngs or init_rngs(0)
        c_curr = stem_multiplier * channels
        self.stem_conv = conv(3, c_curr, 3, 1, 1, rngs=rngs)
        self.stem_bn = batch_norm(c_curr, rngs=rngs)
        c_pp, c_p, c_curr = c_curr, c_curr, channels
        cells, reduction_prev, c_aux = [], False, None
        self.aux_index = 2 * num_cells // 3
        for i in range(num_cells):
            reduction = i in (num_cells // 3, 2 * num_cells // 3)
            if reduction:
                c_curr *= 2
            cell = DARTSCell(
                genotype[1 if reduction else 0],
                c_pp,
                c_p,
                c_curr,
                reduction=reduction,
                reduction_prev=reduction_prev,
                drop_path=drop_path,
                rngs=rngs,
            )
            cells.append(cell)
            reduction_prev = reduction
            c_pp, c_p = c_p, cell.multiplier * c_curr
            if i == self.aux_index:
                c_aux = c_p
        self.cells = nnx.List(cells)
        assert c_aux is not None or not auxiliary  # aux_index < num_cells: set in the loop
        head = (
            None if not auxiliary or c_aux is None else AuxiliaryHead(c_aux, num_classes, rngs=rngs)
        )
        self.aux = head  # one assignment: flax keeps a first None as a static attribute
        self.classifier = linear(c_p, num_classes, rngs=rngs)
        self.deterministic = False  # flipped by nnx's train() / eval()

    def __call__(self, x: jax.Array) -> jax.Array | tuple[jax.Array, jax.Array]:
        s0 = s1 = self.stem_bn(self.stem_conv(x))
        aux = None
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1)
            if i == self.aux_index and self.aux is not None and not self.deterministic:
                aux = self.aux(s1)
        logits = self.classifier(jnp.mean(s1, axis=(1, 2)))
        return logits if aux is None else (logits, aux)
