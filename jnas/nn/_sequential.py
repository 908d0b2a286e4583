"""Networks of a layer sequence (MetaQNN / Zoph & Le style)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from jnas._checks import check_positive
from jnas.nn._ops import batch_norm as make_bn
from jnas.nn._ops import linear, max_pool
from jnas.nn._rngs import init_rngs
from jnas.nn._taps import relu


class _ConvLayer(nnx.Module):
    def __init__(self, cin: int, cout: int, kernel: int, stride: int, *, bn: bool, rngs: nnx.Rngs):
        pad = ((kernel - 1) // 2, kernel // 2)  # 'SAME' for odd and even kernels
        self.conv = nnx.Conv(
            cin,
            cout,
            (kernel, kernel),
            strides=stride,
            padding=(pad, pad),
            use_bias=not bn,
            rngs=rngs,
        )
        self.bn = make_bn(cout, rngs=rngs) if bn else None

    def __call__(self, x: jax.Array) -> jax.Array:
        x = self.conv(x)
        if self.bn is not None:
            x = self.bn(x)
        return relu(x)


class _PoolLayer(nnx.Module):
    def __init__(self, kernel: int, stride: int):
        self.kernel, self.stride = kernel, stride

    def __call__(self, x: jax.Array) -> jax.Array:
        return max_pool(x, self.kernel, self.stride, 0)


class _FCLayer(nnx.Module):
    def __init__(self, fin: int, units: int, *, dropout: float, rngs: nnx.Rngs):
        self.linear = linear(fin, units, rngs=rngs)
        self.dropout = nnx.Dropout(dropout, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.dropout(relu(self.linear(x)))


class SequentialNetwork(nnx.Module):
    """Conv layers (conv [-BN] - ReLU), max-pool layers and fully-connected layers in order.

    The first fully-connected layer reads the global average of the feature map; without
    one, the classifier does (MetaQNN's global-average-pooling terminal).
    """

    def __init__(
        self,
        layers: list[tuple],
        *,
        num_classes: int = 10,
        in_channels: int = 3,
        batch_norm: bool = True,
        dropout: float = 0.0,
        rngs: nnx.Rngs | None = None,
    ):
        check_positive("SequentialNetwork", num_classes=num_classes)
        rngs = rngs or init_rngs(0)
        mods, c = [], in_channels
        for layer in layers:
            if layer[0] == "conv":
                _, k, f, s = layer
                mods.append(_ConvLayer(c, f, k, s, bn=batch_norm, rngs=rngs))
                c = f
            elif layer[0] == "pool":
                mods.append(_PoolLayer(layer[1], layer[2]))
            elif layer[0] == "fc":
                mods.append(_FCLayer(c, layer[1], dropout=dropout, rngs=rngs))
                c = layer[1]
            else:
                raise ValueError(f"SequentialNetwork: unknown layer {layer!r} in `layers`")
        self.layers = nnx.List(mods)
        self.classifier = linear(c, num_classes, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        for layer in self.layers:
            if isinstance(layer, _FCLayer) and x.ndim == 4:
                x = jnp.mean(x, axis=(1, 2))
            x = layer(x)
        if x.ndim == 4:
            x = jnp.mean(x, axis=(1, 2))
        return self.classifier(x)
