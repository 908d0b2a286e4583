"""Networks for meta-learning as pure `(init, apply)` pairs over a parameter pytree.

Meta-learning differentiates through parameter updates, so a model here is two pure
functions rather than a stateful module: `init(key) -> params`, `apply(params, x) -> out`.
BN always uses the batch's statistics (no running averages), as in MAML's reference code.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from flax import nnx

from jnas._checks import check_positive
from jnas.nn import BatchStatsNorm, conv, functional, linear


class Model(NamedTuple):
    """`init(key) -> params` and `apply(params, x) -> outputs`, both pure."""

    init: Callable[[jax.Array], Any]
    apply: Callable[[Any, jax.Array], jax.Array]


def from_module(make: Callable[[nnx.Rngs], nnx.Module]) -> Model:
    """A pure model from a Flax NNX module factory `make(rngs)` without mutable state."""
    net = functional(make)
    return Model(net.init, net.apply)


class MLP(nnx.Module):
    """ReLU multi-layer perceptron; `sizes` = (inputs, hidden..., outputs)."""

    def __init__(self, sizes: tuple[int, ...], *, rngs: nnx.Rngs):
        self.layers = nnx.List([linear(a, b, rngs=rngs) for a, b in itertools.pairwise(sizes)])

    def __call__(self, x: jax.Array) -> jax.Array:
        for layer in self.layers[:-1]:
            x = jax.nn.relu(layer(x))
        return self.layers[-1](x)


class Conv4(nnx.Module):
    """Finn et al.'s Omniglot network: 4 x [3x3 conv (stride 2), BN, ReLU], global average
    pool, linear head (`ways=None`: no head, the 64-d embedding, as in ProtoNets;
    `pool=False`: no head and no pooling, the feature maps, 2x2 for 28x28 inputs, as a
    relation network's convolutional module reads them)."""

    def __init__(
        self,
        ways: int | None,
        *,
        channels: int = 64,
        in_channels: int = 1,
        pool: bool = True,
        rngs: nnx.Rngs,
    ):
        if not pool and ways:
            raise ValueError(
                f"conv4: `pool=False` returns feature maps; `ways` must be None, got {ways}"
            )
        self.pool = pool
        widths = [in_channels] + [channels] * 4
        self.convs = nnx.List(
            [conv(a, b, 3, 2, 1, bias=True, rngs=rngs) for a, b in itertools.pairwise(widths)]
        )
        self.norms = nnx.List([BatchStatsNorm(channels, rngs=rngs) for _ in range(4)])
        self.head = linear(channels, ways, rngs=rngs) if ways else None

    def __call__(self, x: jax.Array) -> jax.Array:
        for c, n in zip(self.convs, self.norms, strict=True):
            x = jax.nn.relu(n(c(x)))
        if not self.pool:
            return x
        x = jnp.mean(x, axis=(1, 2))
        return x if self.head is None else self.head(x)


class RelationModule(nnx.Module):
    """Relation networks' convolutional relation module (Sung et al. 2018, Omniglot): 2 x
    [3x3 conv (padding 1), BN, ReLU, 2x2 max pool (ceil)], a global max over what is left
    (1x1 on Omniglot, as in the paper), linear `hidden` + ReLU, linear 1 (the logit; the
    learner applies the sigmoid)."""

    def __init__(self, in_channels: int, *, channels: int = 64, hidden: int = 8, rngs: nnx.Rngs):
        self.convs = nnx.List(
            [
                conv(in_channels, channels, 3, 1, 1, bias=True, rngs=rngs),
                conv(channels, channels, 3, 1, 1, bias=True, rngs=rngs),
            ]
        )
        self.norms = nnx.List([BatchStatsNorm(channels, rngs=rngs) for _ in range(2)])
        self.fc1 = linear(channels, hidden, rngs=rngs)
        self.fc2 = linear(hidden, 1, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        for c, n in zip(self.convs, self.norms, strict=True):
            x = nnx.max_pool(jax.nn.relu(n(c(x))), (2, 2), (2, 2), "SAME")
        return self.fc2(jax.nn.relu(self.fc1(jnp.max(x, axis=(1, 2)))))


def mlp(sizes: tuple[int, ...] = (1, 40, 40, 1)) -> Model:
    """Finn et al.'s sinusoid regressor (1-40-40-1 ReLU) by default."""
    if len(sizes) < 2 or any(not isinstance(s, int) or s < 1 for s in sizes):
        raise ValueError(f"mlp: `sizes` must be >= 2 positive ints; got {sizes!r}")
    return from_module(lambda rngs: MLP(tuple(sizes), rngs=rngs))


def conv4(
    ways: int | None = 5, *, channels: int = 64, in_channels: int = 1, pool: bool = True
) -> Model:
    """The 4-block convolutional network of MAML/ProtoNets for 28x28 Omniglot
    (`pool=False`: its feature maps)."""
    check_positive("conv4", channels=channels, in_channels=in_channels)
    if not pool and ways:
        raise ValueError(
            f"conv4: `pool=False` returns feature maps; `ways` must be None, got {ways}"
        )
    return from_module(
        lambda rngs: Conv4(ways, channels=channels, in_channels=in_channels, pool=pool, rngs=rngs)
    )


def relation_module(in_channels: int, *, channels: int = 64, hidden: int = 8) -> Model:
    """`RelationModule` as a pure model."""
    check_positive("relation_module", in_channels=in_channels, channels=channels, hidden=hidden)
    return from_module(
        lambda rngs: RelationModule(in_channels, channels=channels, hidden=hidden, rngs=rngs)
    )


def supernet_model(space: Any, alpha_scale: float = 1e-3, **config: Any) -> Model:
    """A supernet whose architecture weights are parameters: params = {"w": weights,
    "alpha": float[E, K]}, ops mixed by softmax(alpha) (DARTS). `config` goes to
    `space.supernet` (e.g. channels, cells_per_stage, num_classes, in_channels)."""
    from jnas.oneshot import alpha_shape, make_supernet

    net = make_supernet(space, config)
    shape = alpha_shape(space)

    def init(key: jax.Array) -> dict:
        k_w, k_a = jax.random.split(key)
        return {"w": net.init_params(k_w), "alpha": alpha_scale * jax.random.normal(k_a, shape)}

    def apply(params: dict, x: jax.Array) -> jax.Array:
        return net.apply(params["w"], x, jax.nn.softmax(params["alpha"], -1))

    return Model(init, apply)
