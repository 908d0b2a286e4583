"""Training a recurrent language model of a recipe cell (NAS-Bench-NLP's protocol, scaled
down): AWD-LSTM's truncated back-propagation through time with hidden states carried
from window to window, Adam with L2 weight decay, gradient clipping, AR/TAR."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from jnas.data import TextCorpus, bptt_batches
from jnas.nn import RecurrentLM, lm_loss


class LMRun(NamedTuple):
    """A trained language model and its curves (per epoch; losses in nats per token)."""

    model: RecurrentLM
    train_loss: np.ndarray  # float[epochs]: mean cross-entropy of the training windows
    valid_loss: np.ndarray  # float[epochs]
    test_loss: float  # at the end

    @property
    def valid_ppl(self) -> np.ndarray:
        return np.exp(self.valid_loss)

    @property
    def test_ppl(self) -> float:
        return math.exp(self.test_loss)


def train_lm(
    key: jax.Array,
    cell: Mapping[str, Mapping[str, Any]] | Callable[..., Any],
    corpus: TextCorpus,
    *,
    epochs: int = 1,
    batch_size: int = 20,
    bptt: int = 35,
    eval_batch_size: int = 10,
    lr: float = 1e-3,
    wdecay: float = 1.2e-6,
    clip: float = 0.25,
    alpha: float = 2.0,
    beta: float = 1.0,
    **model: Any,
) -> LMRun:
    """Train a language model for `epochs` on `corpus.train`; validation after every
    epoch, test at the end. One compiled program per epoch (`lax.scan` over the BPTT
    windows). `cell`: a NAS-Bench-NLP recipe (the model is `RecurrentLM(recipe,
    vocab_size=len(corpus.vocab), **model)`) or `make(vocab_size=..., rngs=..., **model)`
    returning a model with `RecurrentLM`'s call signature (e.g. a `DARTSRecurrent`
    space's `build` with the cell bound). NAS-Bench-NLP trains with batch 20, bptt 70,
    Adam 1e-3, weight decay 1.2e-6, clip 0.25, alpha 2, beta 1 (its defaults here but
    bptt)."""
    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"train_lm: `epochs` must be an integer >= 1; got {epochs!r}")
    k_init, key = jax.random.split(key)
    make = cell if callable(cell) else functools.partial(RecurrentLM, cell)
    net = make(vocab_size=len(corpus.vocab), rngs=nnx.Rngs(k_init), **model)
    graph, params = nnx.split(net)
    tx = optax.chain(
        optax.clip_by_global_norm(clip), optax.add_decayed_weights(wdecay), optax.adam(lr)
    )
    opt_state = tx.init(params)
    xs, ys = (jnp.asarray(a) for a in bptt_batches(corpus.train, batch_size, bptt))

    def loss_fn(p, x, y, hidden, k):
        loss, (ce, new_hidden) = lm_loss(
            nnx.merge(graph, p), x, y, hidden, key=k, alpha=alpha, beta=beta
        )
        return loss, (ce, new_hidden)

    @jax.jit
    def epoch(params, opt_state, key, xs, ys):
        hidden = nnx.merge(graph, params).init_hidden(xs.shape[1])

        def step(carry, batch):
            params, opt_state, hidden = carry
            x, y, k = batch
            hidden = jax.lax.stop_gradient(hidden)
            (_, (ce, hidden)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
                params, x, y, hidden, k
            )
            updates, opt_state = tx.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state, hidden), ce

        keys = jax.random.split(key, xs.shape[0])
        (params, opt_state, _), ces = jax.lax.scan(
            step, (params, opt_state, hidden), (xs, ys, keys)
        )
        return params, opt_state, jnp.mean(ces)

    @jax.jit
    def evaluate(params, xs, ys):
        model = nnx.merge(graph, params)

        def step(hidden, batch):
            x, y = batch
            _, (ce, hidden) = lm_loss(model, x, y, hidden)
            return hidden, ce

        _, ces = jax.lax.scan(step, model.init_hidden(xs.shape[1]), (xs, ys))
        return jnp.mean(ces)

    valid = [jnp.asarray(a) for a in bptt_batches(corpus.valid, eval_batch_size, bptt)]
    train_curve, valid_curve = [], []
    for e in range(epochs):
        params, opt_state, ce = epoch(params, opt_state, jax.random.fold_in(key, e), xs, ys)
        train_curve.append(float(ce))
        valid_curve.append(float(evaluate(params, *valid)))
    test = [jnp.asarray(a) for a in bptt_batches(corpus.test, eval_batch_size, bptt)]
    test_loss = float(evaluate(params, *test))
    return LMRun(
        nnx.merge(graph, params), np.asarray(train_curve), np.asarray(valid_curve), test_loss
    )
