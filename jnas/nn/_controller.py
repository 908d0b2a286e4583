"""An LSTM controller over a space's categorical decisions (Zoph & Le, ICLR 2017; ENAS).

Pure functions over a params pytree: `sample(params, key) -> (decisions, log_prob,
entropy)` draws the decisions one after another, each conditioned through the LSTM on the
previous ones; `log_prob(params, decisions)` scores given decisions (teacher forcing);
`log_probs(params)` scores every decision tuple of the space at once, walking the tree of
prefixes level by level (one LSTM step per prefix: 3,906 for NB201's 15,625 cells, not 6 per
cell), so that an objective summed over a whole table is exact and cheap.
Logits are `tanh_constant * tanh(l / temperature)` as in ENAS.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jnas.nn._rngs import init_uniform


class Controller(NamedTuple):
    init: Callable[[jax.Array], Any]
    sample: Callable[[Any, jax.Array], tuple[jax.Array, jax.Array, jax.Array]]
    log_prob: Callable[[Any, jax.Array], tuple[jax.Array, jax.Array]]
    log_probs: Callable[[Any], jax.Array]


def lstm_controller(
    decision_sizes: Sequence[int],
    hidden: int = 64,
    temperature: float = 5.0,
    tanh_constant: float = 2.5,
) -> Controller:
    """An LSTM policy over decisions with `decision_sizes[t]` choices each."""
    sizes = tuple(int(s) for s in decision_sizes)
    if not sizes or min(sizes) < 1:
        raise ValueError(f"lstm_controller: `decision_sizes` must be positive; got {sizes}")
    if hidden < 1:
        raise ValueError(f"lstm_controller: `hidden` must be >= 1; got {hidden}")
    steps, width = len(sizes), max(sizes)
    valid = jnp.arange(width)[None, :] < jnp.asarray(sizes)[:, None]  # [T, width]

    def init(key: jax.Array) -> dict:
        k = jax.random.split(key, 4)
        u = lambda kk, shape: init_uniform(kk, shape, minval=-0.1, maxval=0.1)
        return {
            "start": u(k[0], (hidden,)),
            "embed": u(k[1], (steps, width, hidden)),
            "lstm_w": u(k[2], (2 * hidden, 4 * hidden)),
            "lstm_b": jnp.zeros(4 * hidden),
            "head": u(k[3], (steps, hidden, width)),
        }

    def cell(params, x, carry):
        h, c = carry
        z = jnp.concatenate([x, h]) @ params["lstm_w"] + params["lstm_b"]
        i, f, g, o = jnp.split(z, 4)
        c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
        h = jax.nn.sigmoid(o) * jnp.tanh(c)
        return h, (h, c)

    def logits_at(params, h, t):
        raw = h @ params["head"][t]
        return jnp.where(valid[t], tanh_constant * jnp.tanh(raw / temperature), -jnp.inf)

    def run(params, key, forced):
        zeros = jnp.zeros(hidden)

        def body(carry, inputs):
            x, state = carry
            t, k, f = inputs
            h, state = cell(params, x, state)
            logits = logits_at(params, h, t)
            choice = jax.random.categorical(k, logits) if forced is None else f
            logp = jax.nn.log_softmax(logits)
            # -inf at choices a decision lacks: mask logp itself, or p * logp's gradient
            # there is 0 * inf = NaN and one update turns the whole controller into NaN
            safe = jnp.where(valid[t], logp, 0.0)
            entropy = -jnp.sum(jnp.where(valid[t], jnp.exp(safe) * safe, 0.0))
            return (params["embed"][t, choice], state), (choice, logp[choice], entropy)

        keys = jax.random.split(key, steps)
        fs = jnp.zeros(steps, jnp.int32) if forced is None else jnp.asarray(forced, jnp.int32)
        _, (choices, logps, ents) = jax.lax.scan(
            body, (params["start"], (zeros, zeros)), (jnp.arange(steps), keys, fs)
        )
        return choices.astype(jnp.int32), jnp.sum(logps), jnp.sum(ents)

    def sample(params, key):
        return run(params, key, None)

    def log_prob(params, decisions):
        _, logp, ent = run(params, jax.random.key(0), decisions)
        return logp, ent

    def log_probs(params):
        """float[prod(sizes)]: log p of every decision tuple, in row-major order (the
        last decision varies fastest, `numpy.ravel_multi_index`)."""
        zeros = jnp.zeros((1, hidden))
        x, state, total = params["start"][None], (zeros, zeros), jnp.zeros(1)
        for t, size in enumerate(sizes):  # static: one level of the prefix tree per step
            h, state = jax.vmap(lambda xi, si: cell(params, xi, si))(x, state)
            logp = jax.nn.log_softmax(jax.vmap(logits_at, (None, 0, None))(params, h, t))
            total = (total[:, None] + logp[:, :size]).reshape(-1)  # prefix-major
            if t + 1 < len(sizes):
                x = jnp.tile(params["embed"][t, :size], (h.shape[0], 1))
                state = jax.tree.map(functools.partial(jnp.repeat, repeats=size, axis=0), state)
        return total

    return Controller(init, sample, log_prob, log_probs)
