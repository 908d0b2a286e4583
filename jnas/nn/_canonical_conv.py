"""A stride-1 NHWC convolution whose derivatives are again forward NHWC convolutions.

Why: XLA:CPU runs a convolution fast (YNNPACK / Eigen) only in the forward orientation
(input NHWC, kernel HWIO, output NHWC). Outside loops its canonicalisation pass rewrites the
two convolutions of JAX's transpose rules (input gradient: kernel `01oi`; kernel gradient:
`f01b_i01o->01bf`) into that form; inside a loop body (`lax.scan`, `while`, a `switch`
branch) it does not, and they run through a generic loop (jax-ml/jax#12868). Measured on
one core (64x32x32x16 -> 48, 3x3, five scanned cells, forward and backward): JAX's rules
13.7 s, the forward alone 65 ms; im2col patches times a matrix 423 ms; this module's rules
225 ms. In the NB201 search network a DARTS-V1 step (C=16, N=5, batch 64, one core) went
from 6.1 s with patches to 4.0 s.

The backward pass writes both gradients as forward convolutions:
- input: the output cotangent convolved with the kernel flipped in space and with its
  in / out channels swapped, padded by `k - 1 - pad`;
- kernel: the input with batch and channels swapped (C, H, W, N) convolved with the
  cotangent as an (H', W', N, O) kernel, padded as the forward; its (C, k, k, O) output
  is the kernel gradient in (k, k, C, O) order after a transpose.
It is a `custom_vjp`: `jax.grad` goes through it, and so does forward-over-reverse
(`jax.jvp` of a gradient: exact DARTS-V2's hypergradient, GraSP) where the inner gradient
is taken in the convolution's inputs (the backward's convolutions are plain ones, whose
tangents are forward convolutions again); `jax.jvp` of the convolution itself does not.
A second reverse pass differentiates those plain convolutions with JAX's own rules:
right, but inside a loop in the slow forms again.

`canonical_dot` does the same for a 1x1 convolution (a matrix product over the last
axis): its kernel gradient is one matrix product of the input and the cotangent, each
flattened to (rows, channels), contracted over the rows. From JAX's transpose rule XLA:CPU
instead wrote the cotangent transposed, (channels, rows), inside the fusion before it, and
ran the product with both operands transposed on Eigen's slow path: relu, 1x1 convolution
16 -> 48 channels and batch norm at 64x32x32, forward and backward, one core: 43.9 ms
with JAX's rule, 9.8 ms with this one (16 -> 16: 7.4 -> 4.5 ms; 64 -> 192 at 8x8:
7.1 -> 3.8 ms).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

_DIMS = ("NHWC", "HWIO", "NHWC")


def canonical_conv(x: jax.Array, kernel: jax.Array, padding: tuple[int, int]) -> jax.Array:
    """`lax.conv_general_dilated(x, kernel, (1, 1), (padding, padding))` for NHWC `x` and an
    HWIO `kernel`, `padding` = (low, high) on both spatial axes, each in [0, k - 1]."""
    k = kernel.shape[0]
    if kernel.ndim != 4 or kernel.shape[1] != k:
        raise ValueError(f"canonical_conv: `kernel` must be square HWIO; got {kernel.shape}")
    if x.ndim != 4 or x.shape[-1] != kernel.shape[2]:
        raise ValueError(
            f"canonical_conv: `x` must be NHWC with {kernel.shape[2]} channels; got {x.shape}"
        )
    low, high = padding
    if not (0 <= low < k and 0 <= high < k):
        raise ValueError(
            f"canonical_conv: `padding` must lie in [0, {k - 1}] (kernel {k}); got {padding}"
        )
    pad = (int(low), int(high))
    return _conv(x, kernel, (pad, pad))


def plain_conv(x: jax.Array, kernel: jax.Array, padding: tuple[int, int]) -> jax.Array:
    """The same convolution with JAX's own derivatives: for a forward pass that is never
    differentiated in reverse, where a nested `custom_vjp` would stop forward-over-reverse
    (the single-path cell's forward branches)."""
    pad = (int(padding[0]), int(padding[1]))
    return _forward(x, kernel, (pad, pad))


Pads = tuple[tuple[int, int], tuple[int, int]]


def _forward(x: jax.Array, kernel: jax.Array, pads: Pads) -> jax.Array:
    """The convolution, accumulated in float32 at least (bfloat16 mixed precision)."""
    y = jax.lax.conv_general_dilated(
        x,
        kernel,
        (1, 1),
        pads,
        dimension_numbers=_DIMS,
        preferred_element_type=jnp.promote_types(x.dtype, jnp.float32),
    )
    return y.astype(x.dtype)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _conv(x: jax.Array, kernel: jax.Array, pads: Pads) -> jax.Array:
    return _forward(x, kernel, pads)


def _conv_fwd(x: jax.Array, kernel: jax.Array, pads: Pads) -> tuple:
    return _forward(x, kernel, pads), (x, kernel)


def _conv_bwd(pads: Pads, res: tuple, g: jax.Array) -> tuple:
    x, kernel = res
    flipped = jnp.flip(kernel, (0, 1)).transpose(0, 1, 3, 2)
    (low_h, high_h), (low_w, high_w) = pads
    kh, kw = kernel.shape[0], kernel.shape[1]
    inverse = ((kh - 1 - low_h, kh - 1 - high_h), (kw - 1 - low_w, kw - 1 - high_w))
    dx = _forward(g, flipped, inverse)
    # dK[a, b, i, o] = sum_{n, h, w} xpad[n, h + a, w + b, i] g[n, h, w, o]: a forward
    # convolution with batch i and features n, the cotangent as an image-sized kernel
    dk = _forward(x.transpose(3, 1, 2, 0), g.transpose(1, 2, 0, 3), pads)
    return dx, dk.transpose(1, 2, 0, 3)


_conv.defvjp(_conv_fwd, _conv_bwd)


def canonical_dot(x: jax.Array, matrix: jax.Array) -> jax.Array:
    """`x @ matrix` over x's last axis (a 1x1 convolution of NHWC `x`), its kernel
    gradient one (rows, C)^T (rows, C') matrix product (why: the module docstring)."""
    if matrix.ndim != 2 or x.shape[-1] != matrix.shape[0]:
        raise ValueError(
            f"canonical_dot: `matrix` must be ({x.shape[-1]}, C') for `x` of shape "
            f"{x.shape}; got {matrix.shape}"
        )
    return _dot(x, matrix)


def plain_dot(x: jax.Array, matrix: jax.Array) -> jax.Array:
    """`x @ matrix` over x's last axis with JAX's own derivatives (see `plain_conv`)."""
    return jax.lax.dot_general(x, matrix, (((x.ndim - 1,), (0,)), ((), ())))


@jax.custom_vjp
def _dot(x: jax.Array, matrix: jax.Array) -> jax.Array:
    return plain_dot(x, matrix)


def _dot_fwd(x: jax.Array, matrix: jax.Array) -> tuple:
    return plain_dot(x, matrix), (x, matrix)


def _dot_bwd(res: tuple, g: jax.Array) -> tuple:
    x, matrix = res
    dx = jax.lax.dot_general(g, matrix, (((g.ndim - 1,), (1,)), ((), ())))
    rows = (-1, x.shape[-1]), (-1, g.shape[-1])
    dk = jax.lax.dot_general(x.reshape(rows[0]), g.reshape(rows[1]), (((0,), (0,)), ((), ())))
    return dx, dk.astype(matrix.dtype)


_dot.defvjp(_dot_fwd, _dot_bwd)
