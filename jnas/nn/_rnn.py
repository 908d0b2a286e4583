"""Recurrent language models of NAS-Bench-NLP recipe cells (Klyuchnikov et al., 2022),
with the AWD-LSTM regularisers the benchmark trains with (Merity et al., "Regularizing
and Optimizing LSTM Language Models", ICLR 2018).

A recipe cell (`RecipeCell`) computes its nodes in topological order; a `linear` node is
NAS-Bench-NLP's `MultiLinear`: one weight matrix per input, summed, plus **one** bias.
`RecurrentLM` stacks cells, each layer run over the sequence in one `lax.scan`, between an
embedding and a decoder tied to it (the last layer's hidden size is then the embedding
size, as in the benchmark's `AWDRNNModel`). Regularisers, all drawn from an explicit key
(no key: evaluation, deterministic): embedding dropout (whole words), locked (variational)
dropout on the embeddings, between layers and on the output (one mask per sequence),
weight drop (DropConnect on every recurrent weight: the weights of inputs other than `x`,
one mask per sequence); `lm_loss` adds AR and TAR.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from jnas.nn._rngs import init_uniform

_ACTIVATIONS = {
    "activation_tanh": jnp.tanh,
    "activation_sigm": jax.nn.sigmoid,
    "activation_leaky_relu": lambda x: jax.nn.leaky_relu(x, 0.01),  # torch's default slope
}
_OPS = ("linear", "blend", "elementwise_prod", "elementwise_sum", *_ACTIVATIONS)


def recipe_order(recipe: Mapping[str, Mapping[str, Any]]) -> tuple[list[str], int]:
    """(live nodes in depth-first post-order from `h_new_0`, `h_new_1`, ..., the number of
    hidden states); raises `ValueError` on a malformed recipe."""
    if not isinstance(recipe, Mapping) or not recipe:
        raise ValueError(f"recipe: expected a non-empty dict of nodes; got {recipe!r}")
    size = 0
    while f"h_new_{size}" in recipe:
        size += 1
    if size == 0:
        raise ValueError(f"recipe: expected an `h_new_0` node; got nodes {sorted(recipe)}")
    sources = {"x", *(f"h_prev_{i}" for i in range(size))}
    order: list[str] = []
    state: dict[str, int] = {}

    def visit(name: str) -> None:
        if name in sources or state.get(name) == 2:
            return
        if state.get(name) == 1 or name not in recipe:
            raise ValueError(f"recipe: node {name!r} is part of a cycle or not defined")
        node = recipe[name]
        if node.get("op") not in _OPS or not isinstance(node.get("input"), Sequence):
            raise ValueError(
                f"recipe: node {name!r} must be {{'op': one of {_OPS}, 'input': [...]}}"
            )
        state[name] = 1
        for parent in node["input"]:
            visit(parent)
        state[name] = 2
        order.append(name)

    for i in range(size):
        visit(f"h_new_{i}")
    return order, size


def dropout_rates(where: str, **rates: float) -> dict[str, float]:
    """The dropout rates, each checked to be in [0, 1)."""
    for name, p in rates.items():
        if not 0.0 <= p < 1.0:
            raise ValueError(f"{where}: `{name}` must be in [0, 1); got {p!r}")
    return rates


def _uniform(scale: float):
    def init(key: jax.Array, shape: tuple[int, ...], dtype: Any = jnp.float32) -> jax.Array:
        return init_uniform(key, shape, dtype, -scale, scale)

    return init


class MultiLinear(nnx.Module):
    """`sum_i x_i @ W_i + b`: NAS-Bench-NLP's `linear` op (one bias for all inputs)."""

    def __init__(self, input_sizes: Sequence[int], features: int, *, rngs: nnx.Rngs):
        init = _uniform(1.0 / math.sqrt(features))  # CustomRNN.reset_parameters
        self.kernels = nnx.List(
            [nnx.Param(init(rngs.params(), (fin, features))) for fin in input_sizes]
        )
        self.bias = nnx.Param(init(rngs.params(), (features,)))


class RecipeCell(nnx.Module):
    """One recurrent cell of a recipe: `(x, hidden tuple) -> new hidden tuple`."""

    def __init__(
        self,
        recipe: Mapping[str, Mapping[str, Any]],
        input_size: int,
        hidden_size: int,
        *,
        rngs: nnx.Rngs,
    ):
        order, size = recipe_order(recipe)
        self.order = tuple(order)
        self.inputs = tuple(tuple(recipe[n]["input"]) for n in order)
        self.ops = tuple(recipe[n]["op"] for n in order)
        self.tuple_size = size
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.linears = nnx.Dict(
            {
                name: MultiLinear(
                    [input_size if s == "x" else hidden_size for s in ins],
                    hidden_size,
                    rngs=rngs,
                )
                for name, op, ins in zip(self.order, self.ops, self.inputs, strict=True)
                if op == "linear"
            }
        )

    def recurrent_weights(self) -> dict[str, jax.Array]:
        """The weights weight drop acts on: those of every input that is not `x`."""
        return {
            f"{name}/{i}": self.linears[name].kernels[i].get_value()
            for name, ins in zip(self.order, self.inputs, strict=True)
            if name in self.linears
            for i, s in enumerate(ins)
            if s != "x"
        }

    def step(
        self,
        x: jax.Array,
        hidden: tuple[jax.Array, ...],
        weight_masks: Mapping[str, jax.Array] | None = None,
    ) -> tuple[jax.Array, ...]:
        """One time step; `weight_masks` (from `RecurrentLM`) scale the recurrent weights."""
        values: dict[str, jax.Array] = {"x": x}
        values.update({f"h_prev_{i}": h for i, h in enumerate(hidden)})
        for name, op, ins in zip(self.order, self.ops, self.inputs, strict=True):
            args = [values[s] for s in ins]
            if op == "linear":
                lin = self.linears[name]
                out = lin.bias.get_value()[None, :]
                for i, a in enumerate(args):
                    w = lin.kernels[i].get_value()
                    mask = None if weight_masks is None else weight_masks.get(f"{name}/{i}")
                    out = out + a @ (w if mask is None else w * mask)
            elif op == "blend":
                out = args[0] * args[1] + (1 - args[0]) * args[2]
            elif op == "elementwise_prod":
                out = args[0] * args[1]
            elif op == "elementwise_sum":
                out = args[0] + args[1]
            else:
                out = _ACTIVATIONS[op](args[0])
            values[name] = out
        return tuple(values[f"h_new_{i}"] for i in range(self.tuple_size))

    def __call__(
        self,
        xs: jax.Array,
        hidden: tuple[jax.Array, ...],
        weight_masks: Mapping[str, jax.Array] | None = None,
    ) -> tuple[jax.Array, tuple[jax.Array, ...]]:
        """Run over `xs` [B, T, in] (one `lax.scan`): (`h_new_0` at every step [B, T, H],
        the final hidden tuple)."""

        def body(h, x):
            new = self.step(x, h, weight_masks)
            return new, new[0]

        last, outs = jax.lax.scan(body, tuple(hidden), jnp.swapaxes(xs, 0, 1))
        return jnp.swapaxes(outs, 0, 1), last


class RecurrentLM(nnx.Module):
    """A word-level language model of a recipe cell with NAS-Bench-NLP's defaults
    (WikiText-2 vocabulary 33,278, emsize 400, nhid 600, 3 layers, tied; dropout 0.1,
    dropouth 0.25, dropouti 0.4, dropoute 0.0, wdrop 0.1)."""

    def __init__(
        self,
        recipe: Mapping[str, Mapping[str, Any]],
        *,
        vocab_size: int = 33_278,
        emsize: int = 400,
        nhid: int = 600,
        nlayers: int = 3,
        tie_weights: bool = True,
        dropout: float = 0.1,
        dropouth: float = 0.25,
        dropouti: float = 0.4,
        dropoute: float = 0.0,
        wdrop: float = 0.1,
        rngs: nnx.Rngs,
    ):
        for name, value in (("vocab_size", vocab_size), ("emsize", emsize), ("nhid", nhid)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"RecurrentLM: `{name}` must be an integer >= 1; got {value!r}")
        if not isinstance(nlayers, int) or nlayers < 1:
            raise ValueError(f"RecurrentLM: `nlayers` must be an integer >= 1; got {nlayers!r}")
        self.rates = dropout_rates(
            "RecurrentLM",
            dropout=dropout,
            dropouth=dropouth,
            dropouti=dropouti,
            dropoute=dropoute,
            wdrop=wdrop,
        )
        self.tie_weights = tie_weights
        self.encoder = nnx.Embed(vocab_size, emsize, embedding_init=_uniform(0.1), rngs=rngs)
        sizes = [
            nhid if i != nlayers - 1 else (emsize if tie_weights else nhid) for i in range(nlayers)
        ]
        self.layers = nnx.List(
            [
                RecipeCell(recipe, emsize if i == 0 else nhid, sizes[i], rngs=rngs)
                for i in range(nlayers)
            ]
        )
        if not tie_weights:
            self.decoder = nnx.Param(_uniform(0.1)(rngs.params(), (sizes[-1], vocab_size)))
        self.decoder_bias = nnx.Param(jnp.zeros((vocab_size,)))

    def init_hidden(self, batch: int) -> list[tuple[jax.Array, ...]]:
        """Zero hidden tuples, one per layer."""
        return [
            tuple(jnp.zeros((batch, cell.hidden_size)) for _ in range(cell.tuple_size))
            for cell in self.layers
        ]

    def __call__(
        self,
        tokens: jax.Array,
        hidden: list[tuple[jax.Array, ...]] | None = None,
        *,
        key: jax.Array | None = None,
    ) -> tuple[jax.Array, list[tuple[jax.Array, ...]], dict[str, jax.Array]]:
        """`tokens` int[B, T] -> (logits [B, T, V], new hidden per layer, `raw` / `dropped`:
        the last layer's output before / after its dropout, for AR and TAR). With `key`
        the model trains (all dropouts drawn from it); without, it evaluates."""
        b = tokens.shape[0]
        hidden = self.init_hidden(b) if hidden is None else hidden
        keys = iter(jax.random.split(key, 3 + 2 * len(self.layers)) if key is not None else [])
        emb_table = self.encoder.embedding.get_value()
        if key is not None and self.rates["dropoute"] > 0:  # drop whole words
            p = self.rates["dropoute"]
            keep = jax.random.bernoulli(next(keys), 1 - p, (emb_table.shape[0], 1))
            emb_table = emb_table * keep / (1 - p)
        else:
            next(keys, None)
        out = self._locked(emb_table[tokens], "dropouti", next(keys, None))
        new_hidden = []
        raw = out
        for i, cell in enumerate(self.layers):
            masks = self._weight_masks(cell, next(keys, None))
            raw, last = cell(out, hidden[i], masks)
            new_hidden.append(last)
            rate = "dropouth" if i != len(self.layers) - 1 else "dropout"
            out = self._locked(raw, rate, next(keys, None))
        # a tied decoder reads the table without embedding dropout (AWD's embedded_dropout)
        w = self.encoder.embedding.get_value().T if self.tie_weights else self.decoder.get_value()
        logits = out @ w + self.decoder_bias.get_value()[None, None, :]
        return logits, new_hidden, {"raw": raw, "dropped": out}

    def _locked(self, x: jax.Array, rate: str, key: jax.Array | None) -> jax.Array:
        """Locked dropout: one mask per sequence, shared over time."""
        p = self.rates[rate]
        if key is None or p == 0:
            return x
        keep = jax.random.bernoulli(key, 1 - p, (x.shape[0], 1, x.shape[2]))
        return x * keep / (1 - p)

    def _weight_masks(self, cell: RecipeCell, key: jax.Array | None) -> dict[str, jax.Array] | None:
        p = self.rates["wdrop"]
        if key is None or p == 0:
            return None
        weights = cell.recurrent_weights()
        ks = jax.random.split(key, max(len(weights), 1))
        return {
            name: jax.random.bernoulli(k, 1 - p, w.shape) / (1 - p)
            for k, (name, w) in zip(ks, sorted(weights.items()), strict=False)
        }


def lm_loss(
    model: Any,
    tokens: jax.Array,
    targets: jax.Array,
    hidden: list[tuple[jax.Array, ...]] | None = None,
    *,
    key: jax.Array | None = None,
    alpha: float = 2.0,
    beta: float = 1.0,
    **call: Any,
) -> tuple[jax.Array, tuple[jax.Array, list[tuple[jax.Array, ...]]]]:
    """AWD-LSTM's training loss (for `RecurrentLM`, `DARTSRecurrentLM`, any model with
    their call signature; `**call` goes to the model, e.g. a search model's `weights`): cross-entropy (nats per token) + `alpha` x mean squared
    dropped last-layer output (AR) + `beta` x mean squared step-to-step change of the raw
    last-layer output (TAR). Returns (loss, (cross-entropy, new hidden)); AR and TAR only
    with a `key` (training)."""
    logits, new_hidden, extra = model(tokens, hidden, key=key, **call)
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, targets).mean()
    loss = ce
    if key is not None:
        loss = loss + alpha * jnp.mean(extra["dropped"] ** 2)
        loss = loss + beta * jnp.mean((extra["raw"][:, 1:] - extra["raw"][:, :-1]) ** 2)
    return loss, (ce, new_hidden)
