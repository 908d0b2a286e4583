"""SNAIL, the memory-based meta-learner (Mishra, Rohaninejad, Chen & Abbeel, ICLR 2018):
a task is a sequence, the support set's (embedding, one-hot label) pairs followed by a query's
(embedding, zeros), and a causal sequence model of temporal convolutions and soft attention
reads the support to label the query at the last position; no inner loop.

The few-shot classification architecture of the paper's appendix: AttentionBlock(64, 32),
TCBlock(T, 128), AttentionBlock(256, 128), TCBlock(T, 128), AttentionBlock(512, 256), a
linear map to the classes; TCBlock(T, D) stacks DenseBlock(2^i, D) for i = 1..ceil(log2 T),
each a gated causal convolution (kernel 2, dilation 2^i) whose output is concatenated to its
input; AttentionBlock(K, V) concatenates a causally masked single-head read.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from jnas.meta._core import MetaLearner
from jnas.meta._metric import _check_ways, metric_learner
from jnas.meta._models import Model, from_module
from jnas.nn import linear


class AttentionBlock(nnx.Module):
    """[T, d] -> [T, d + value_size]: the input and a causal single-head attention read."""

    def __init__(self, d_in: int, key_size: int, value_size: int, *, rngs: nnx.Rngs):
        self.query = linear(d_in, key_size, rngs=rngs)
        self.key = linear(d_in, key_size, rngs=rngs)
        self.value = linear(d_in, value_size, rngs=rngs)
        self.scale = 1.0 / math.sqrt(key_size)

    def __call__(self, x: jax.Array) -> jax.Array:
        t = x.shape[0]
        logits = (self.query(x) @ self.key(x).T) * self.scale
        logits = jnp.where(jnp.tril(jnp.ones((t, t), bool)), logits, -jnp.inf)
        return jnp.concatenate([x, jax.nn.softmax(logits, -1) @ self.value(x)], -1)


class DenseBlock(nnx.Module):
    """[T, d] -> [T, d + filters]: tanh(f) * sigmoid(g) of a causal convolution (kernel 2,
    `dilation`: position t sees t and t - dilation) concatenated to the input."""

    def __init__(self, d_in: int, filters: int, dilation: int, *, rngs: nnx.Rngs):
        self.conv = linear(2 * d_in, 2 * filters, rngs=rngs)
        self.dilation = dilation
        self.filters = filters

    def __call__(self, x: jax.Array) -> jax.Array:
        past = jnp.pad(x, ((self.dilation, 0), (0, 0)))[: x.shape[0]]
        out = self.conv(jnp.concatenate([past, x], -1))
        gated = jnp.tanh(out[:, : self.filters]) * jax.nn.sigmoid(out[:, self.filters :])
        return jnp.concatenate([x, gated], -1)


class SNAIL(nnx.Module):
    """The paper's few-shot classification sequence model on [T, features + ways] inputs;
    returns the class logits at every position, [T, ways]. `width` scales every block's
    key, value and filter counts (1: the paper's)."""

    def __init__(
        self, features: int, ways: int, seq_len: int, width: float = 1.0, *, rngs: nnx.Rngs
    ):
        layers = max(1, math.ceil(math.log2(seq_len)))
        size = lambda n: max(1, round(n * width))
        blocks: list[nnx.Module] = []
        d = features + ways

        def attention(k: int, v: int) -> None:
            nonlocal d
            blocks.append(AttentionBlock(d, size(k), size(v), rngs=rngs))
            d += size(v)

        def tc(filters: int) -> None:
            nonlocal d
            for i in range(1, layers + 1):
                blocks.append(DenseBlock(d, size(filters), 2**i, rngs=rngs))
                d += size(filters)

        attention(64, 32)
        tc(128)
        attention(256, 128)
        tc(128)
        attention(512, 256)
        self.blocks = nnx.List(blocks)
        self.out = linear(d, ways, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        for block in self.blocks:
            x = block(x)
        return self.out(x)


def snail_model(features: int, ways: int, seq_len: int, width: float = 1.0) -> Model:
    """The SNAIL sequence model as a pure `(init, apply)` pair."""
    if not width > 0:
        raise ValueError(f"snail: `width` must be > 0; got {width!r}")
    return from_module(lambda rngs: SNAIL(features, ways, seq_len, width, rngs=rngs))


def snail(
    embed: Model,
    ways: int,
    shots: int,
    features: int,
    *,
    width: float = 1.0,
    optimizer: optax.GradientTransformation | None = None,
    task_map: str = "auto",
) -> MetaLearner:
    """SNAIL over an embedding model of `features` outputs (the paper's Omniglot embedding is
    conv4 without its head): each query is the last step of a sequence of the `ways * shots`
    support pairs (in the support set's order), trained end to end by cross-entropy, Adam
    1e-3 by default (the paper's 1e-4 decays; on CPU budgets 1e-3 learns in fewer steps).
    `width` scales the sequence model's blocks (1: the paper's sizes)."""
    _check_ways("snail", ways)
    for name, v in (("shots", shots), ("features", features)):
        if not isinstance(v, int) or v < 1:
            raise ValueError(f"snail: `{name}` must be an int >= 1; got {v!r}")
    module = snail_model(features, ways, ways * shots + 1, width)

    def compare(extra, zq: jax.Array, zs: jax.Array, onehot: jax.Array) -> jax.Array:
        support = jnp.concatenate([zs, onehot], -1)

        def one(q: jax.Array) -> jax.Array:
            last = jnp.concatenate([q, jnp.zeros((ways,), q.dtype)])[None]
            return module.apply(extra, jnp.concatenate([support, last], 0))[-1]

        return jax.vmap(one)(zq)

    return metric_learner(
        "snail", embed, ways, compare, extra=module, optimizer=optimizer, task_map=task_map
    )
