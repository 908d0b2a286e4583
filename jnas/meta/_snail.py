"""SNAIL, the memory-based meta-learner (Mishra, Rohaninejad, Chen & Abbeel, ICLR 2018):
a task is a sequence, the support set's (embedding, one-hot label) pairs followed by a query's
(embedding, zeros), and a causal sequence model of temporal convolutions and soft attention
reads the support to label the query at the last position; no inner loop.

The few-shot classification architecture of the paper's appendix: AttentionBlock(64, 32),
TCBlock(T, 128), AttentionBlock(256, 128), TCBlock(T, 128), AttentionBlock(512, 256), a
linear map to the classes; TCBlock(T, D) stacks DenseBlock(2^i, D) for i = 1..ceil(log2 T),
each a gated causal convolution (kernel 2, dilation 2^i) whose output is concatenated to its
input; AttentionBlock(K, V) concatenates a causally masked single-head read.

Every query of a task ends the same support prefix, and the model is causal, so the prefix's
activations do not depend on the query: `model(prefix, last)` computes them once and each
query's last position on top (exactly the last row of the whole sequence's output), where
running every query's sequence would recompute the prefix per query (5-way 5-shot with 15
queries a class: 26 positions per query against 100 per task, ~20x the work).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from jnas.meta._core import MetaLearner
from jnas.meta._metric import _check_ways, metric_learner
from jnas.meta._models import Model
from jnas.nn import Functional, functional, linear


class AttentionBlock(nnx.Module):
    """[T, d] -> [T, d + value_size]: the input and a causal single-head attention read."""

    def __init__(self, d_in: int, key_size: int, value_size: int, *, rngs: nnx.Rngs):
        self.query = linear(d_in, key_size, rngs=rngs)
        self.key = linear(d_in, key_size, rngs=rngs)
        self.value = linear(d_in, value_size, rngs=rngs)
        self.scale = 1.0 / math.sqrt(key_size)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self._prefix(x)[0]

    def _prefix(self, x: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        """The block's output on [T, d] and the keys and values later positions attend to."""
        t = x.shape[0]
        keys, values = self.key(x), self.value(x)
        logits = (self.query(x) @ keys.T) * self.scale
        logits = jnp.where(jnp.tril(jnp.ones((t, t), bool)), logits, -jnp.inf)
        return jnp.concatenate([x, jax.nn.softmax(logits, -1) @ values], -1), keys, values

    def extend(self, x: jax.Array, last: jax.Array) -> tuple[jax.Array, jax.Array]:
        """The outputs on the prefix [T, d] and, for each row of `last` [Q, d], on that row
        appended to the prefix as position T (it reads the prefix and itself)."""
        out, keys, values = self._prefix(x)
        q, k, v = self.query(last), self.key(last), self.value(last)
        own = jnp.sum(q * k, -1, keepdims=True)
        weights = jax.nn.softmax(jnp.concatenate([q @ keys.T, own], -1) * self.scale, -1)
        read = weights[:, :-1] @ values + weights[:, -1:] * v
        return out, jnp.concatenate([last, read], -1)


class DenseBlock(nnx.Module):
    """[T, d] -> [T, d + filters]: tanh(f) * sigmoid(g) of a causal convolution (kernel 2,
    `dilation`: position t sees t and t - dilation) concatenated to the input."""

    def __init__(self, d_in: int, filters: int, dilation: int, *, rngs: nnx.Rngs):
        self.conv = linear(2 * d_in, 2 * filters, rngs=rngs)
        self.dilation = dilation
        self.filters = filters

    def __call__(self, x: jax.Array) -> jax.Array:
        past = jnp.pad(x, ((self.dilation, 0), (0, 0)))[: x.shape[0]]
        return self._gate(past, x)

    def _gate(self, past: jax.Array, x: jax.Array) -> jax.Array:
        out = self.conv(jnp.concatenate([past, x], -1))
        gated = jnp.tanh(out[:, : self.filters]) * jax.nn.sigmoid(out[:, self.filters :])
        return jnp.concatenate([x, gated], -1)

    def extend(self, x: jax.Array, last: jax.Array) -> tuple[jax.Array, jax.Array]:
        """The outputs on the prefix [T, d] and on each row of `last` [Q, d] as position T,
        which sees position T - dilation of the prefix (zeros before the start)."""
        t = x.shape[0]
        seen = x[t - self.dilation] if t >= self.dilation else jnp.zeros_like(x[0])
        return self(x), self._gate(jnp.broadcast_to(seen, last.shape), last)


class SNAIL(nnx.Module):
    """The paper's few-shot classification sequence model on [T, features + ways] inputs;
    returns the class logits at every position, [T, ways]; `model(prefix, last)` returns,
    for each row of `last` [Q, features + ways], the logits at that row appended to the
    prefix [T, ...] ([Q, ways]; the prefix computed once). `width` scales every block's
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

    def __call__(self, x: jax.Array, last: jax.Array | None = None) -> jax.Array:
        if last is None:
            for block in self.blocks:
                x = block(x)
            return self.out(x)
        if last.ndim != 2 or last.shape[1] != x.shape[1]:
            raise ValueError(
                f"SNAIL: `last` must be [Q, {x.shape[1]}] like the prefix's rows; got {last.shape}"
            )
        tail: jax.Array = last
        for block in self.blocks:
            assert isinstance(block, AttentionBlock | DenseBlock)
            x, tail = block.extend(x, tail)
        return self.out(tail)


def snail_model(features: int, ways: int, seq_len: int, width: float = 1.0) -> Functional:
    """The SNAIL sequence model as a pure `(init, apply)` pair: `apply(params, x)` on a whole
    sequence, `apply(params, prefix, last)` for queries after a shared prefix (`SNAIL`)."""
    if not width > 0:
        raise ValueError(f"snail: `width` must be > 0; got {width!r}")
    return functional(lambda rngs: SNAIL(features, ways, seq_len, width, rngs=rngs))


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
        last = jnp.concatenate([zq, jnp.zeros((zq.shape[0], ways), zq.dtype)], -1)
        return module.apply(extra, support, last)  # each query after the same support

    return metric_learner(
        "snail",
        embed,
        ways,
        compare,
        extra=Model(module.init, module.apply),
        optimizer=optimizer,
        task_map=task_map,
    )
