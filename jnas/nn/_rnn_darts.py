"""DARTS' recurrent language model (Liu et al., ICLR 2019; `rnn/model.py`,
`rnn/model_search.py` of the authors' code), discrete or as the search model.

One recurrent layer of a highway cell between a tied embedding and decoder. The initial
state s0 = h + sigmoid(c0) * (tanh(h0) - h) with (c0, h0) = [x, h] @ W0; node i computes
s = s_p + sigmoid(c) * (f(h') - s_p) with (c, h') = s_p @ W_i; the output is the mean of
nodes 1..steps. No biases. Search model (`genotype=None`): node i sums, over its inputs j
and ops k, weights[edge(i, j), k] times that update of s_j (`none` adds nothing), with
batch norm (no affine, batch statistics) after s0 and every node, as `DARTSCellSearch`.
Dropouts as DARTS trains (all from an explicit key; none without): embedding dropout
(`dropoute`), locked dropout on the embeddings (`dropouti`) and the output (`dropout`),
one mask per sequence on x (`dropoutx`) and on the states entering each W (`dropouth`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from jnas.nn._ops import batch_stats_norm
from jnas.nn._rngs import init_uniform
from jnas.nn._rnn import dropout_rates

INIT_RANGE = 0.04  # DARTS' INITRANGE
_FN = {
    "tanh": jnp.tanh,
    "relu": jax.nn.relu,
    "sigmoid": jax.nn.sigmoid,
    "identity": lambda x: x,
}


def _uniform(key: jax.Array, shape: tuple[int, ...], scale: float) -> jax.Array:
    return init_uniform(key, shape, jnp.float32, -scale, scale)


class DARTSRecurrentLM(nnx.Module):
    """DARTS' recurrent LM; DARTS' PTB setting by default (vocabulary 10,000,
    emsize = nhid = 850, dropout 0.75, dropouth 0.25, dropoutx 0.75, dropouti 0.2,
    dropoute 0.1). `genotype`: DARTS' `recurrent` list of (op, input), or None for the
    search model (then `__call__` takes `weights`)."""

    def __init__(
        self,
        genotype: Sequence[tuple[str, int]] | None,
        *,
        ops: Sequence[str] = ("none", "tanh", "relu", "sigmoid", "identity"),
        steps: int = 8,
        vocab_size: int = 10_000,
        emsize: int = 850,
        nhid: int = 850,
        dropout: float = 0.75,
        dropouth: float = 0.25,
        dropoutx: float = 0.75,
        dropouti: float = 0.2,
        dropoute: float = 0.1,
        rngs: nnx.Rngs,
    ):
        if emsize != nhid:
            raise ValueError(
                f"DARTSRecurrentLM: DARTS ties the decoder, so `emsize` must equal `nhid`; "
                f"got {emsize} and {nhid}"
            )
        if genotype is not None:
            genotype = [(str(o), int(p)) for o, p in genotype]
            if len(genotype) != steps or any(
                o not in _FN or not 0 <= p <= i for i, (o, p) in enumerate(genotype)
            ):
                raise ValueError(
                    f"DARTSRecurrentLM: `genotype` must be {steps} (op in {sorted(_FN)}, "
                    f"input in [0, i]) pairs; got {genotype}"
                )
        self.rates = dropout_rates(
            "DARTSRecurrentLM",
            dropout=dropout,
            dropouth=dropouth,
            dropoutx=dropoutx,
            dropouti=dropouti,
            dropoute=dropoute,
        )
        self.genotype = None if genotype is None else tuple(genotype)
        self.ops = tuple(ops)
        self.steps = steps
        self.nhid = nhid
        self.encoder = nnx.Embed(
            vocab_size,
            emsize,
            embedding_init=lambda k, s, d=jnp.float32: _uniform(k, s, INIT_RANGE).astype(d),
            rngs=rngs,
        )
        self.w0 = nnx.Param(_uniform(rngs.params(), (emsize + nhid, 2 * nhid), INIT_RANGE))
        self.ws = nnx.Param(_uniform(rngs.params(), (steps, nhid, 2 * nhid), INIT_RANGE))
        self.decoder_bias = nnx.Param(jnp.zeros((vocab_size,)))

    @property
    def num_edges(self) -> int:
        return self.steps * (self.steps + 1) // 2

    def init_hidden(self, batch: int) -> list[tuple[jax.Array, ...]]:
        """One layer, one hidden state: `[(zeros[B, nhid],)]`."""
        return [(jnp.zeros((batch, self.nhid)),)]

    def _cell(self, x, h, x_mask, h_mask, weights, index=None):
        w0, ws = self.w0.get_value(), self.ws.get_value()
        search = self.genotype is None
        genotype = self.genotype or ()
        c0, h0 = jnp.split(jnp.concatenate([x * x_mask, h * h_mask], -1) @ w0, 2, axis=-1)
        s0 = h + jax.nn.sigmoid(c0) * (jnp.tanh(h0) - h)
        states = [batch_stats_norm(s0) if search else s0]
        offset = 0
        for i in range(self.steps):
            if not search:
                op, p = genotype[i]
                sp = states[p]
                c, hh = jnp.split((sp * h_mask) @ ws[i], 2, axis=-1)
                states.append(sp + jax.nn.sigmoid(c) * (_FN[op](hh) - sp))
                continue
            stacked = jnp.stack(states)  # [i + 1, B, H]
            c, hh = jnp.split((stacked * h_mask[None]) @ ws[i], 2, axis=-1)
            c = jax.nn.sigmoid(c)
            s = jnp.zeros_like(s0)
            w_node = weights[offset : offset + i + 1]
            if index is not None:  # only each edge's indexed op (GDAS, single-path methods)
                picked = jax.nn.one_hot(index[offset : offset + i + 1], len(self.ops))
                w_node = w_node * picked
            for k, name in enumerate(self.ops):
                if name == "none":
                    continue
                update = stacked + c * (_FN[name](hh) - stacked)
                s = s + jnp.einsum("j,jbh->bh", w_node[:, k], update)
            states.append(batch_stats_norm(s))
            offset += i + 1
        return jnp.mean(jnp.stack(states[1:]), axis=0)

    def __call__(
        self,
        tokens: jax.Array,
        hidden: list[tuple[jax.Array, ...]] | None = None,
        *,
        weights: jax.Array | None = None,
        index: jax.Array | None = None,
        key: jax.Array | None = None,
    ) -> tuple[jax.Array, list[tuple[jax.Array, ...]], dict[str, jax.Array]]:
        """`tokens` int[B, T] -> (logits [B, T, V], `[(last hidden,)]`, `raw` / `dropped`
        outputs); the search model needs op `weights` float[steps (steps + 1) / 2, K]
        (and, for single-path methods, `index` int[E]: one op per edge)."""
        if (self.genotype is None) != (weights is not None):
            raise ValueError(
                "DARTSRecurrentLM: pass `weights` to the search model (genotype=None) "
                "and only to it"
            )
        if weights is not None and weights.shape != (self.num_edges, len(self.ops)):
            raise ValueError(
                f"DARTSRecurrentLM: `weights` must have shape "
                f"{(self.num_edges, len(self.ops))}; got {weights.shape}"
            )
        b = tokens.shape[0]
        h = (self.init_hidden(b) if hidden is None else hidden)[0][0]
        keys = list(jax.random.split(key, 5)) if key is not None else [None] * 5
        table = self.encoder.embedding.get_value()
        if keys[0] is not None and self.rates["dropoute"] > 0:
            p = self.rates["dropoute"]
            table = table * jax.random.bernoulli(keys[0], 1 - p, (table.shape[0], 1)) / (1 - p)
        emb = self._locked(table[tokens], "dropouti", keys[1])
        x_mask = self._mask(keys[2], "dropoutx", (b, emb.shape[-1]))
        h_mask = self._mask(keys[3], "dropouth", (b, self.nhid))

        def body(h, x):
            new = self._cell(x, h, x_mask, h_mask, weights, index)
            return new, new

        last, raw = jax.lax.scan(body, h, jnp.swapaxes(emb, 0, 1))
        raw = jnp.swapaxes(raw, 0, 1)
        out = self._locked(raw, "dropout", keys[4])
        logits = (
            out @ self.encoder.embedding.get_value().T
            + self.decoder_bias.get_value()[None, None, :]
        )
        return logits, [(last,)], {"raw": raw, "dropped": out}

    def _mask(self, key: jax.Array | None, rate: str, shape: tuple[int, ...]) -> Any:
        p = self.rates[rate]
        if key is None or p == 0:
            return jnp.ones(shape)
        return jax.random.bernoulli(key, 1 - p, shape) / (1 - p)

    def _locked(self, x: jax.Array, rate: str, key: jax.Array | None) -> jax.Array:
        return x * self._mask(key, rate, (x.shape[0], 1, x.shape[2]))


class DARTSRecurrentSupernet(nnx.Module):
    """The search model as the one-shot methods call a supernet: `(tokens, weights,
    index=None) -> logits` on batches of (tokens int[B, T], next tokens int[B, T]).
    Each batch starts from a zero hidden state and runs without dropout (DARTS carries
    the hidden state across BPTT windows and searches with dropout; the one-shot
    protocol's batches are stateless)."""

    def __init__(self, **config: Any):
        self.lm = DARTSRecurrentLM(None, **config)

    def __call__(
        self, tokens: jax.Array, weights: jax.Array, index: jax.Array | None = None
    ) -> jax.Array:
        return self.lm(tokens, weights=weights, index=index)[0]
