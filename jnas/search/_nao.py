"""NAO: neural architecture optimization (Luo et al., NeurIPS 2018).

An encoder maps an architecture to a continuous embedding, a predictor maps the embedding
to accuracy, and a decoder maps it back to the architecture; the three are trained jointly
on `trade_off * prediction MSE + (1 - trade_off) * reconstruction cross-entropy`. Search
moves the embeddings of the best architectures along the predictor's gradient,
`e' = e + eta * d f / d e`, and decodes them; NAO raises `eta` until the decoded
architecture is new, here a fixed ladder `step_size * 2**j`, j < `num_steps`, all decoded
at once, the smallest step that yields an architecture not yet evaluated winning (a
mutation of the parent where none does; "not yet evaluated" is judged on the
architecture the space makes of the decoded decisions). The `batch_size` distinct
decoded architectures the predictor rates highest are evaluated.

In jnas the sequence NAO encodes is the space's categorical decisions (`decision_sizes`):
the encoder is an MLP over their one-hot (NAO's is an LSTM over the token sequence; with
a fixed number of decisions an MLP sees the same input), the decoder gives every decision
its logits from the embedding (normalised to the unit sphere, as NAO normalises its
encoder outputs). The paper's networks were tried on NB201 and not kept (2026-12-06: an
LSTM encoder over decision tokens, its outputs moved along the gradient, an LSTM decoder
with Luong attention, a sigmoid predictor on min-max scaled accuracies, gradients clipped
to norm 5, as the authors' `NAO_V1` code; width 16): NB201 Table 5's protocol, 100 seeds,
CIFAR-10 test accuracy 93.89 +- 0.40 against this module's 93.98 +- 0.39, the row taking
179 s against 20 s on one core (the LSTMs' training is ~10x the MLP's work). The
networks persist in the state and train `train_steps` Adam steps after every `tell`,
continuing from the last round as NAO does. Until `num_init` evaluations are told,
candidates are uniform samples.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jnas._checks import check_positive
from jnas.predictors import blocked_grad, used_rows
from jnas.search._base import (
    Searcher,
    clean_fitness,
    update_incumbent,
)
from jnas.spaces import Decisions, DecisionSpace, Space, require


class NAOState(NamedTuple):
    params: Any  # encoder, predictor and decoder weights
    opt_state: Any
    x: jax.Array  # int32[max_points, D]: evaluated decisions (ring buffer)
    y: jax.Array  # float32[max_points]: their fitness (NaN where failed)
    count: jax.Array  # int32[]
    best: Any
    best_fitness: jax.Array  # float32[]


def _dense(key: jax.Array, fin: int, fout: int) -> dict[str, jax.Array]:
    bound = 1.0 / jnp.sqrt(fin)
    return {
        "w": jax.random.uniform(key, (fin, fout), jnp.float32, -bound, bound),
        "b": jnp.zeros((fout,), jnp.float32),
    }


def _apply(layer: dict[str, jax.Array], x: jax.Array) -> jax.Array:
    return x @ layer["w"] + jnp.expand_dims(layer["b"], tuple(range(x.ndim - 1)))


def encode(params: Any, decisions: jax.Array, k: int) -> jax.Array:
    """float32[..., E]: the unit-norm embedding of int32[..., D] decisions (K choices)."""
    h = jax.nn.one_hot(decisions, k, dtype=jnp.float32).reshape(*decisions.shape[:-1], -1)
    e = _apply(params["enc2"], jnp.tanh(_apply(params["enc1"], h)))
    return e / (jnp.linalg.norm(e, axis=-1, keepdims=True) + 1e-6)


def predict(params: Any, e: jax.Array) -> jax.Array:
    """float32[...]: the predicted (standardised) fitness of embeddings."""
    return _apply(params["pred2"], jax.nn.relu(_apply(params["pred1"], e)))[..., 0]


def decode(params: Any, e: jax.Array, valid: jax.Array) -> jax.Array:
    """float32[..., D, K]: every decision's logits; `valid` bool[D, K] masks choices a
    decision lacks."""
    n, k = valid.shape
    logits = _apply(params["dec2"], jnp.tanh(_apply(params["dec1"], e)))
    return jnp.where(valid, logits.reshape(*e.shape[:-1], n, k), -1e9)


def nao(
    space: DecisionSpace,
    batch_size: int = 10,
    *,
    num_init: int = 10,
    num_parents: int = 20,
    embedding: int = 32,
    hidden: int = 64,
    trade_off: float = 0.8,
    train_steps: int = 100,
    learning_rate: float = 0.005,
    step_size: float = 0.1,
    num_steps: int = 8,
    max_points: int = 200,
) -> Searcher:
    """NAO over the space's decisions (see the module docstring)."""
    where = "nao"
    check_positive(
        where,
        batch_size=batch_size,
        num_init=num_init,
        num_parents=num_parents,
        embedding=embedding,
        hidden=hidden,
        train_steps=train_steps,
        num_steps=num_steps,
        max_points=max_points,
    )
    require(where, space, Space, Decisions)
    if batch_size > num_parents:
        raise ValueError(f"{where}: `batch_size` {batch_size} exceeds `num_parents` {num_parents}")
    if num_parents > max_points:
        raise ValueError(f"{where}: `num_parents` {num_parents} exceeds `max_points` {max_points}")
    if not 0.0 <= trade_off <= 1.0:
        raise ValueError(f"{where}: `trade_off` must be in [0, 1]; got {trade_off!r}")
    if not learning_rate > 0 or not step_size > 0:
        raise ValueError(
            f"{where}: `learning_rate` and `step_size` must be > 0; got "
            f"{learning_rate!r}, {step_size!r}"
        )
    sizes = tuple(int(s) for s in space.decision_sizes)
    n, k = len(sizes), max(sizes)
    valid = jnp.arange(k)[None, :] < jnp.asarray(sizes)[:, None]  # bool[D, K]
    tx = optax.adam(learning_rate)
    ladder = step_size * 2.0 ** jnp.arange(num_steps, dtype=jnp.float32)

    def init_params(key):
        ks = jax.random.split(key, 6)
        return {
            "enc1": _dense(ks[0], n * k, hidden),
            "enc2": _dense(ks[1], hidden, embedding),
            "pred1": _dense(ks[2], embedding, hidden),
            "pred2": _dense(ks[3], hidden, 1),
            "dec1": _dense(ks[4], embedding, hidden),
            "dec2": _dense(ks[5], hidden, n * k),
        }

    def init(key: jax.Array) -> NAOState:
        k_params, k_best = jax.random.split(key)
        params = init_params(k_params)
        return NAOState(
            params,
            tx.init(params),
            jnp.zeros((max_points, n), jnp.int32),
            jnp.full((max_points,), jnp.nan, jnp.float32),
            jnp.zeros((), jnp.int32),
            space.sample(k_best),
            jnp.full((), -jnp.inf, jnp.float32),
        )

    def standardise(y, mask):
        m = mask.astype(jnp.float32)
        count = jnp.maximum(jnp.sum(m), 1.0)
        mean = jnp.sum(jnp.where(mask, y, 0.0)) / count
        std = jnp.sqrt(jnp.sum(jnp.where(mask, jnp.square(y - mean), 0.0)) / count) + 1e-6
        return jnp.where(mask, (y - mean) / std, 0.0)

    def canonical(decisions: jax.Array) -> jax.Array:
        return space.to_decisions(space.from_decisions(decisions)).astype(jnp.int32)

    def ask(key: jax.Array, state: NAOState) -> tuple[Any, NAOState]:
        k_rand, k_mut = jax.random.split(key)
        random_batch = jax.vmap(space.sample)(jax.random.split(k_rand, batch_size))
        seen = jnp.arange(max_points) < state.count
        ok = seen & jnp.isfinite(state.y)
        parents = jax.lax.top_k(jnp.where(ok, state.y, -jnp.inf), num_parents)[1]
        e = encode(state.params, state.x[parents], k)  # [P, E]
        grad = jax.vmap(jax.grad(lambda e: predict(state.params, e)))(e)
        moved = e[:, None, :] + ladder[None, :, None] * grad[:, None, :]  # [P, S, E]
        decoded = jnp.argmax(decode(state.params, moved, valid), axis=-1).astype(jnp.int32)
        # "new" means a new architecture, so compare the decisions the space gives back
        # (a table subset snaps decisions to its nearest cell; DARTS orders node inputs)
        decoded = jax.vmap(jax.vmap(canonical))(decoded)
        known = jnp.any(
            jnp.all(decoded[:, :, None, :] == state.x[None, None, :, :], -1) & seen[None, None, :],
            axis=-1,
        )  # [P, S]
        first_new = jnp.argmax(~known, axis=1)
        found = jnp.any(~known, axis=1)
        parent_archs = jax.vmap(space.from_decisions)(state.x[parents])
        mutants = jax.vmap(space.mutate)(jax.random.split(k_mut, num_parents), parent_archs)
        new = jnp.where(
            found[:, None],
            decoded[jnp.arange(num_parents), first_new],
            jax.vmap(space.to_decisions)(mutants).astype(jnp.int32),
        )
        scores = predict(state.params, encode(state.params, new, k))
        same = jnp.all(new[:, None, :] == new[None, :, :], axis=-1)
        repeat = jnp.any(jnp.tril(same, -1), axis=1)  # an earlier parent gave the same
        scores = jnp.where(ok[parents] & ~repeat, scores, -jnp.inf)
        top_scores, top = jax.lax.top_k(scores, batch_size)
        model_batch = jax.vmap(space.from_decisions)(new[top])
        # fewer distinct candidates than the batch: the rest are uniform samples
        distinct = jnp.isfinite(top_scores)
        model_batch = jax.tree.map(
            lambda m, r: jnp.where(distinct.reshape((-1,) + (1,) * (m.ndim - 1)), m, r),
            model_batch,
            random_batch,
        )
        use_model = state.count >= num_init
        archs = jax.tree.map(lambda m, r: jnp.where(use_model, m, r), model_batch, random_batch)
        return archs, state

    def loss(params, x, z, seen, ok, num_ok, num_seen):
        """The rows' share of the loss (the MSE over `num_ok` rows, the reconstruction
        NLL over `num_seen`): additive over rows, zero on rows not seen."""
        e = encode(params, x, k)
        mse = jnp.sum(jnp.where(ok, jnp.square(predict(params, e) - z), 0.0)) / num_ok
        logp = jax.nn.log_softmax(decode(params, e, valid), axis=-1)
        nll = -jnp.sum(jnp.take_along_axis(logp, x[..., None], axis=-1)[..., 0], axis=-1)
        nll = jnp.sum(jnp.where(seen, nll, 0.0)) / num_seen
        return trade_off * mse + (1.0 - trade_off) * nll

    def tell(state: NAOState, archs: Any, fitness: jax.Array) -> NAOState:
        fitness = jnp.asarray(fitness, jnp.float32)
        slots = (state.count + jnp.arange(batch_size)) % max_points
        decisions = jax.vmap(space.to_decisions)(archs).astype(jnp.int32)
        x, y = state.x.at[slots].set(decisions), state.y.at[slots].set(fitness)
        count = state.count + batch_size
        seen = jnp.arange(max_points) < count
        ok = seen & jnp.isfinite(y)
        z = standardise(y, ok)

        num_ok = jnp.maximum(jnp.sum(ok), 1).astype(jnp.float32)
        num_seen = jnp.maximum(jnp.sum(seen), 1).astype(jnp.float32)
        used = used_rows(seen)

        def step(carry, _):
            params, opt_state = carry
            # summed over blocks of the rows told so far, not all max_points rows
            grads = blocked_grad(
                lambda p, x, z, seen, ok: loss(p, x, z, seen, ok, num_ok, num_seen),
                params,
                (x, z, seen, ok),
                used,
            )
            updates, opt_state = tx.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), None

        (params, opt_state), _ = jax.lax.scan(
            step, (state.params, state.opt_state), None, length=train_steps
        )
        best, best_fitness = update_incumbent(
            state.best, state.best_fitness, archs, clean_fitness(fitness)
        )
        return NAOState(params, opt_state, x, y, count, best, best_fitness)

    return Searcher(init, ask, tell, batch_size)
