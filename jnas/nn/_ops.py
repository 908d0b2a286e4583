"""Primitive operations shared by the compiled networks (NHWC, PyTorch-exact shapes).

Padding is explicit (PyTorch's symmetric padding), not `'SAME'`, so strided convolutions
see the same pixels as the reference implementations. Batch norm uses PyTorch's defaults
(momentum 0.1, i.e. Flax momentum 0.9, and epsilon 1e-5).
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jnas.nn._rngs import torch_default_init  # PyTorch's conv / linear init, drawn flat
from jnas.nn._taps import relu, tap

_NO_BATCH_NORM = contextvars.ContextVar("jnas_no_batch_norm", default=False)


@contextlib.contextmanager
def without_batch_norm() -> Iterator[None]:
    """Every batch norm of a jnas network is the identity while tracing inside this block:
    the networks as zero-cost proxies score them, "batch norm removed" (SynFlow on an
    all-ones input: batch statistics of constant features would zero every signal).
    Enter it inside the function that is jitted, so its trace sees it."""
    token = _NO_BATCH_NORM.set(True)
    try:
        yield
    finally:
        _NO_BATCH_NORM.reset(token)


_STATISTICS_ROWS: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "jnas_statistics_rows", default=None
)


@contextlib.contextmanager
def batch_statistics_from(rows: int) -> Iterator[None]:
    """Every batch-statistics norm (`BatchStatsNorm`, `batch_stats_norm`) computes its mean
    and variance from the first `rows` examples of the batch only and normalises all of
    them with those: a few-shot learner run on `[support; query]` normalises each query
    image with the support set's statistics, so a query's prediction does not depend on
    which other query images share its batch. Enter it inside the traced function."""
    if not isinstance(rows, int) or rows < 1:
        raise ValueError(f"batch_statistics_from: `rows` must be an int >= 1; got {rows!r}")
    token = _STATISTICS_ROWS.set(rows)
    try:
        yield
    finally:
        _STATISTICS_ROWS.reset(token)


def conv(
    cin: int,
    cout: int,
    kernel: int,
    stride: int = 1,
    padding: int = 0,
    *,
    dilation: int = 1,
    groups: int = 1,
    bias: bool = False,
    matmul: bool = False,
    rngs: nnx.Rngs,
) -> nnx.Module:
    """A 2-D convolution with PyTorch's symmetric padding and no bias by default.

    `matmul=True` gives a `MatmulConv` (same parameters, same initial values): patches
    times a matrix, for networks that run inside loops (see `matmul_conv`).
    """
    if matmul:
        if dilation != 1 or groups != 1 or bias:
            raise ValueError(
                "conv: `matmul=True` supports dilation 1, groups 1, no bias; "
                f"got dilation={dilation}, groups={groups}, bias={bias}"
            )
        return MatmulConv(cin, cout, kernel, stride, padding, rngs=rngs)
    return Conv(
        cin,
        cout,
        (kernel, kernel),
        strides=stride,
        padding=((padding, padding), (padding, padding)),
        kernel_dilation=dilation,
        feature_group_count=groups,
        use_bias=bias,
        kernel_init=torch_default_init,
        rngs=rngs,
    )


def conv_patches(x: jax.Array, kernel: int, stride: int, padding: int) -> jax.Array:
    """im2col: NHWC `x` -> [N, H', W', kernel*kernel*C], the window's pixels in HWIO order
    (row a, column b, channel), so `patches @ w.reshape(-1, cout)` is the convolution."""
    x = jnp.pad(x, ((0, 0), (padding, padding), (padding, padding), (0, 0)))
    h = (x.shape[1] - kernel) // stride + 1
    w = (x.shape[2] - kernel) // stride + 1
    cols = [
        x[:, a : a + stride * (h - 1) + 1 : stride, b : b + stride * (w - 1) + 1 : stride]
        for a in range(kernel)
        for b in range(kernel)
    ]
    return cols[0] if len(cols) == 1 else jnp.concatenate(cols, axis=-1)


def matmul_conv(x: jax.Array, kernel: jax.Array, stride: int = 1, padding: int = 0) -> jax.Array:
    """A 2-D convolution (NHWC, HWIO kernel, PyTorch padding) as one matrix product.

    Why: XLA:CPU runs `conv_general_dilated` and its gradients 10-40x slower inside a loop
    body (`scan`, `while`, a `switch` branch; jax-ml/jax#12868): measured here, 5 stacked
    64x32x32x16 -> 48 3x3 convolutions forward and backward, 0.40 s unrolled and 10.7 s in
    `lax.scan`. Patches times a matrix is a dot, which XLA runs at full speed everywhere
    (0.46 s in the same scan), and its backward pass is two dots and a pad-add.
    """
    k = kernel.shape[0]
    patches = conv_patches(x, k, stride, padding)
    return jax.lax.dot_general(
        patches, kernel.reshape(-1, kernel.shape[-1]), (((3,), (0,)), ((), ()))
    )


class MatmulConv(nnx.Module):
    """A bias-free 2-D convolution computed by `matmul_conv`; its `kernel` parameter is an
    `nnx.Conv`'s (HWIO, PyTorch's default init, one key drawn), so the two interchange."""

    def __init__(
        self, cin: int, cout: int, kernel: int, stride: int = 1, padding: int = 0, *, rngs: nnx.Rngs
    ):
        self.stride, self.padding = stride, padding
        self.kernel = nnx.Param(
            torch_default_init(rngs.params(), (kernel, kernel, cin, cout), jnp.float32)
        )

    def __call__(self, x: jax.Array) -> jax.Array:
        y = matmul_conv(x, self.kernel[...].astype(x.dtype), self.stride, self.padding)
        return tap("layer", y)


class Conv(nnx.Conv):
    """`nnx.Conv` whose output is the `"layer"` tap (`jnas.nn.record_taps`)."""

    def __call__(self, x: jax.Array, *args, **kwargs) -> jax.Array:
        return tap("layer", super().__call__(x, *args, **kwargs))


class Linear(nnx.Linear):
    """`nnx.Linear` whose output is the `"layer"` tap."""

    def __call__(self, x: jax.Array, *args, **kwargs) -> jax.Array:
        return tap("layer", super().__call__(x, *args, **kwargs))


def linear(fin: int, fout: int, *, rngs: nnx.Rngs) -> nnx.Linear:
    """A dense layer with PyTorch's default weight initialisation."""
    return Linear(fin, fout, kernel_init=torch_default_init, rngs=rngs)


def batch_norm(
    channels: int, *, affine: bool = True, track_stats: bool = True, rngs: nnx.Rngs
) -> nnx.Module:
    """Batch norm with PyTorch's momentum and epsilon.

    `track_stats=False` gives PyTorch's `track_running_stats=False`: always batch
    statistics, no running averages, no mutable state (the NB201 search setting).
    """
    if not track_stats:
        return BatchStatsNorm(channels, affine=affine, rngs=rngs)
    return BatchNorm(
        channels, momentum=0.9, epsilon=1e-5, use_bias=affine, use_scale=affine, rngs=rngs
    )


class BatchNorm(nnx.BatchNorm):
    """`nnx.BatchNorm` that `without_batch_norm()` turns into the identity."""

    def __call__(self, x: jax.Array, use_running_average: bool | None = None, **kwargs):
        if _NO_BATCH_NORM.get():
            return x
        x = tap("norm", x)
        return super().__call__(x, use_running_average=use_running_average, **kwargs)


class BatchStatsNorm(nnx.Module):
    """Batch norm that always normalises with the batch's statistics and keeps no state."""

    def __init__(
        self, channels: int, *, affine: bool = True, epsilon: float = 1e-5, rngs: nnx.Rngs
    ):
        self.epsilon = epsilon
        self.scale = nnx.Param(jnp.ones((channels,))) if affine else None
        self.bias = nnx.Param(jnp.zeros((channels,))) if affine else None

    def __call__(self, x: jax.Array) -> jax.Array:
        """Normalised `x`; statistics in float32 at least (for bfloat16 inputs too)."""
        if self.scale is None or self.bias is None:  # both or neither (`affine`)
            return batch_stats_norm(x, self.epsilon)
        return batch_stats_norm(x, self.epsilon, self.scale[...], self.bias[...])


def batch_stats_norm(
    x: jax.Array,
    epsilon: float = 1e-5,
    scale: jax.Array | None = None,
    bias: jax.Array | None = None,
) -> jax.Array:
    """Batch norm over all axes but the last with the batch's own statistics (biased
    variance, as PyTorch normalises in training); float32 statistics at least. The
    identity inside `without_batch_norm()`; statistics from the first rows only inside
    `batch_statistics_from(rows)`."""
    if _NO_BATCH_NORM.get():
        return x
    x = tap("norm", x)
    dtype = x.dtype
    x = x.astype(jnp.promote_types(dtype, jnp.float32))
    axes = tuple(range(x.ndim - 1))
    rows = _STATISTICS_ROWS.get()
    stats = x if rows is None else x[:rows]
    mean = jnp.mean(stats, axis=axes, keepdims=True)
    var = jnp.mean(jnp.square(stats - mean), axis=axes, keepdims=True)
    y = (x - mean) * jax.lax.rsqrt(var + epsilon)
    if scale is not None:
        if bias is None:
            raise ValueError("batch_stats_norm: give `scale` and `bias` together")
        shape = (1,) * (x.ndim - 1) + (-1,)
        y = y * scale.reshape(shape) + bias.reshape(shape)
    return y.astype(dtype)


def avg_pool(
    x: jax.Array, kernel: int, stride: int, padding: int, *, ceil_mode: bool = False
) -> jax.Array:
    """Average pooling that ignores the padding (PyTorch `count_include_pad=False`);
    `ceil_mode` keeps a last partial window, as PyTorch's `ceil_mode=True`."""
    pad = [(padding, padding), (padding, padding)]
    if ceil_mode:  # pad the end so the last window fits
        pad = [
            (lo, hi + (kernel - n - lo - hi) % stride)
            for (lo, hi), n in zip(pad, x.shape[-3:-1], strict=True)
        ]
    y = nnx.avg_pool(  # flax annotates `padding` as str; it takes (low, high) pairs too
        x,
        (kernel, kernel),
        (stride, stride),
        tuple(pad),  # pyright: ignore[reportArgumentType]
        count_include_pad=False,
    )
    return y.astype(x.dtype)  # the padding count is float32


def avg_pool_3x3(x: jax.Array) -> jax.Array:
    """`avg_pool(x, 3, 1, 1)` (padding not counted) as separable shifted sums: plain
    elementwise adds that fuse with their neighbours, forward and backward, where a
    `reduce_window` and its transpose are separate loops."""
    h, w = x.shape[-3], x.shape[-2]
    pad_h = [(0, 0)] * x.ndim
    pad_h[-3] = (1, 1)
    xp = jnp.pad(x, pad_h)
    rows = xp[..., :-2, :, :] + xp[..., 1:-1, :, :] + xp[..., 2:, :, :]
    pad_w = [(0, 0)] * x.ndim
    pad_w[-2] = (1, 1)
    rp = jnp.pad(rows, pad_w)
    total = rp[..., :-2, :] + rp[..., 1:-1, :] + rp[..., 2:, :]
    count = np.outer(_window_count(h), _window_count(w)).reshape((1,) * (x.ndim - 3) + (h, w, 1))
    return total / count.astype(x.dtype)


def _window_count(n: int) -> np.ndarray:
    """How many of a 3-wide, stride-1, pad-1 window's pixels fall inside, per position."""
    count = np.full(n, 3.0, np.float32)
    count[0] -= 1
    count[-1] -= 1
    if n == 1:
        count[0] = 1
    return count


def max_pool(x: jax.Array, kernel: int, stride: int, padding: int) -> jax.Array:
    pad = ((padding, padding), (padding, padding))
    return nnx.max_pool(x, (kernel, kernel), (stride, stride), pad)  # pyright: ignore[reportArgumentType]


class Identity(nnx.Module):
    def __call__(self, x: jax.Array) -> jax.Array:
        return x


class Zero(nnx.Module):
    """The `none` op: zeros shaped like the op's output."""

    def __init__(self, cout: int, stride: int):
        self.cout, self.stride = cout, stride

    def __call__(self, x: jax.Array) -> jax.Array:
        x = x[:, :: self.stride, :: self.stride, :1]
        return jnp.zeros((*x.shape[:3], self.cout), x.dtype)


class ReLUConvBN(nnx.Module):
    """ReLU -> conv -> BN, the convolution of NB201 and DARTS cells."""

    def __init__(
        self,
        cin: int,
        cout: int,
        kernel: int,
        stride: int,
        padding: int,
        *,
        dilation: int = 1,
        affine: bool = True,
        track_stats: bool = True,
        matmul: bool = False,
        rngs: nnx.Rngs,
    ):
        self.conv = conv(
            cin, cout, kernel, stride, padding, dilation=dilation, matmul=matmul, rngs=rngs
        )
        self.bn = batch_norm(cout, affine=affine, track_stats=track_stats, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.bn(self.conv(relu(x)))


class FactorizedReduce(nnx.Module):
    """Channel change (stride 1) or 2x down-sampling by two offset 1x1 convs (stride 2)."""

    def __init__(
        self,
        cin: int,
        cout: int,
        stride: int = 2,
        *,
        affine: bool = True,
        track_stats: bool = True,
        rngs: nnx.Rngs,
    ):
        if stride not in (1, 2):
            raise ValueError(f"FactorizedReduce: `stride` must be 1 or 2; got {stride}")
        self.stride = stride
        if stride == 2:
            half = cout // 2
            self.convs = nnx.List(
                [conv(cin, half, 1, 2, rngs=rngs), conv(cin, cout - half, 1, 2, rngs=rngs)]
            )
        else:
            self.convs = nnx.List([conv(cin, cout, 1, 1, rngs=rngs)])
        self.bn = batch_norm(cout, affine=affine, track_stats=track_stats, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        if self.stride == 1:
            return self.bn(self.convs[0](x))
        x = relu(x)
        shifted = jnp.pad(x, ((0, 0), (0, 1), (0, 1), (0, 0)))[:, 1:, 1:]
        return self.bn(jnp.concatenate([self.convs[0](x), self.convs[1](shifted)], axis=-1))


class Pooling(nnx.Module):
    """3x3 average or max pooling, preceded by a 1x1 ReLU-conv-BN when channels change."""

    def __init__(
        self,
        cin: int,
        cout: int,
        stride: int,
        mode: str,
        *,
        affine: bool = True,
        track_stats: bool = True,
        rngs: nnx.Rngs,
    ):
        if mode not in ("avg", "max"):
            raise ValueError(f"Pooling: `mode` must be 'avg' or 'max'; got {mode!r}")
        self.mode, self.stride = mode, stride
        self.pre = (
            ReLUConvBN(cin, cout, 1, 1, 0, affine=affine, track_stats=track_stats, rngs=rngs)
            if cin != cout
            else Identity()
        )

    def __call__(self, x: jax.Array) -> jax.Array:
        x = self.pre(x)
        pool = avg_pool if self.mode == "avg" else max_pool
        return pool(x, 3, self.stride, 1)


class ResNetBasicBlock(nnx.Module):
    """The residual reduction block between NB201 stages."""

    def __init__(
        self,
        cin: int,
        cout: int,
        stride: int,
        *,
        track_stats: bool = True,
        matmul: bool = False,
        rngs: nnx.Rngs,
    ):
        same = {"track_stats": track_stats, "matmul": matmul, "rngs": rngs}
        self.conv_a = ReLUConvBN(cin, cout, 3, stride, 1, **same)
        self.conv_b = ReLUConvBN(cout, cout, 3, 1, 1, **same)
        self.stride = stride
        if stride == 2:
            self.down = conv(cin, cout, 1, matmul=matmul, rngs=rngs)  # after a 2x2 avg pool
        elif cin != cout:
            self.down = ReLUConvBN(cin, cout, 1, 1, 0, **same)
        else:
            self.down = Identity()

    def __call__(self, x: jax.Array) -> jax.Array:
        y = self.conv_b(self.conv_a(x))
        if self.stride == 2:
            # ceil mode matches the 3x3 stride-2 path on odd sizes (7 -> 4); on even
            # sizes (all of NB201's) it is the plain 2x2 pool
            x = avg_pool(x, 2, 2, 0, ceil_mode=True)
        return self.down(x) + y


def classifier_head(
    x: jax.Array, bn: Callable[[jax.Array], jax.Array], linear: nnx.Linear
) -> jax.Array:
    """BN -> ReLU -> global average pool -> linear (the pooled map is the `"features"` tap)."""
    x = tap("features", relu(bn(x)))
    return linear(jnp.mean(x, axis=(1, 2)))


Op = Callable[[jax.Array], jax.Array]
