"""The NAS-Bench-101 network (`nasbench/lib/model_builder.py`, Ying et al. 2019).

Stem 3x3 conv-BN-ReLU (128 channels), 3 stacks of 3 cells, 2x2 max-pool and doubled
channels between stacks, global average pool, dense. Inside a cell the output channels
are split among the vertices feeding the output (`compute_vertex_channels`), the input
reaches interior vertices through 1x1 projections, and vertex outputs are concatenated.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jnas._checks import check_positive
from jnas.nn._ops import batch_norm, conv, linear, max_pool
from jnas.nn._rngs import init_rngs
from jnas.nn._taps import relu


class ConvBNReLU(nnx.Module):
    """Conv (no bias, 'same' padding, stride 1) -> BN -> ReLU (NB101 `conv_bn_relu`)."""

    def __init__(self, cin: int, cout: int, kernel: int, *, rngs: nnx.Rngs):
        self.conv = conv(cin, cout, kernel, 1, kernel // 2, rngs=rngs)
        self.bn = batch_norm(cout, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return relu(self.bn(self.conv(x)))


class _MaxPool3x3(nnx.Module):
    def __call__(self, x: jax.Array) -> jax.Array:
        return max_pool(x, 3, 1, 1)


def vertex_channels(cin: int, cout: int, matrix: np.ndarray) -> list[int]:
    """Channels of each vertex, as the NB101 release computes them."""
    n = matrix.shape[0]
    ch = [0] * n
    ch[0], ch[n - 1] = cin, cout
    if n == 2:
        return ch
    in_degree = np.sum(matrix[1:], axis=0)
    interior = cout // in_degree[n - 1]
    correction = cout % in_degree[n - 1]
    for v in range(1, n - 1):
        if matrix[v, n - 1]:
            ch[v] = int(interior)
            if correction:
                ch[v] += 1
                correction -= 1
    for v in range(n - 3, 0, -1):
        if not matrix[v, n - 1]:
            for dst in range(v + 1, n - 1):
                if matrix[v, dst]:
                    ch[v] = max(ch[v], ch[dst])
    return ch


class NB101Cell(nnx.Module):
    """One NB101 module for a pruned (matrix, op names) spec."""

    def __init__(self, matrix: np.ndarray, ops: list[str], cin: int, cout: int, *, rngs: nnx.Rngs):
        matrix = np.asarray(matrix).astype(np.int64)
        n = matrix.shape[0]
        self.channels = tuple(vertex_channels(cin, cout, matrix))
        self.matrix = tuple(tuple(bool(b) for b in row) for row in matrix)  # static
        proj, layers = [], []
        for t in range(1, n - 1):
            proj.append(
                ConvBNReLU(cin, self.channels[t], 1, rngs=rngs) if self.matrix[0][t] else None
            )
            op, c = ops[t], self.channels[t]
            if op == "conv3x3-bn-relu":
                layers.append(ConvBNReLU(c, c, 3, rngs=rngs))
            elif op == "conv1x1-bn-relu":
                layers.append(ConvBNReLU(c, c, 1, rngs=rngs))
            elif op == "maxpool3x3":
                layers.append(_MaxPool3x3())
            else:
                raise ValueError(
                    f"NB101Cell: unknown op {op!r} in `ops`; expected "
                    "conv3x3-bn-relu, conv1x1-bn-relu or maxpool3x3"
                )
        self.proj = nnx.List(proj)
        self.layers = nnx.List(layers)
        self.out_proj = ConvBNReLU(cin, cout, 1, rngs=rngs) if self.matrix[0][n - 1] else None

    def __call__(self, x: jax.Array) -> jax.Array:
        n = len(self.matrix)
        tensors, final = [x], []
        for t in range(1, n - 1):
            c = self.channels[t]
            ins = [tensors[s][..., :c] for s in range(1, t) if self.matrix[s][t]]
            if self.matrix[0][t]:
                ins.append(self.proj[t - 1](x))
            tensors.append(self.layers[t - 1](sum(ins[1:], ins[0])))
            if self.matrix[t][n - 1]:
                final.append(tensors[t])
        if not final:  # only the input reaches the output: its projection is there
            assert self.out_proj is not None
            return self.out_proj(x)
        out = final[0] if len(final) == 1 else jnp.concatenate(final, axis=-1)
        if self.out_proj is not None:
            out = out + self.out_proj(x)
        return out


class NB101Network(nnx.Module):
    """The NB101 evaluation network for one pruned cell."""

    def __init__(
        self,
        matrix: np.ndarray,
        ops: list[str],
        *,
        stem_channels: int = 128,
        num_stacks: int = 3,
        cells_per_stack: int = 3,
        num_classes: int = 10,
        rngs: nnx.Rngs | None = None,
    ):
        check_positive(
            "NB101Network",
            stem_channels=stem_channels,
            num_stacks=num_stacks,
            cells_per_stack=cells_per_stack,
            num_classes=num_classes,
        )
        rngs = rngs or init_rngs(0)
        self.stem = ConvBNReLU(3, stem_channels, 3, rngs=rngs)
        cells, c = [], stem_channels
        for stack in range(num_stacks):
            cout = c * 2 if stack > 0 else c
            for _ in range(cells_per_stack):
                cells.append(NB101Cell(matrix, ops, c, cout, rngs=rngs))
                c = cout
        self.cells = nnx.List(cells)
        self.cells_per_stack = cells_per_stack
        self.classifier = linear(c, num_classes, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        x = self.stem(x)
        for k, cell in enumerate(self.cells):
            if k > 0 and k % self.cells_per_stack == 0:
                x = max_pool(x, 2, 2, 0)
            x = cell(x)
        return self.classifier(jnp.mean(x, axis=(1, 2)))
