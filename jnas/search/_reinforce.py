"""REINFORCE over independent per-decision logits with a moving-average baseline (the
NAS-Bench-201 paper's REINFORCE baseline; Williams 1992)."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jnas.search._base import (
    Searcher,
    check_positive,
    clean_fitness,
    require,
    update_incumbent,
)


class ReinforceState(NamedTuple):
    logits: jax.Array  # float32[D, K]: the policy; -inf where a decision has fewer choices
    opt_state: Any  # the optimiser's state (optax)
    baseline: jax.Array  # float32[]: moving average of the reward
    num_told: jax.Array  # int32[]
    best: Any
    best_fitness: jax.Array  # float32[]


def reinforce(space: Any, batch_size: int = 1, learning_rate: float = 0.01,
              baseline_decay: float = 0.9, optimizer: optax.GradientTransformation | None = None
              ) -> Searcher:
    """Sample every decision from its own softmax; after each `tell`, one policy-gradient
    step on `-(reward - baseline) * log p(arch)` (Adam, `learning_rate`), then the
    baseline moves toward the batch's mean reward (`baseline_decay`, NB201's EMA momentum).

    The space must offer categorical decisions (`decision_sizes`, `to_decisions`,
    `from_decisions`: NB201, NATSSize, Chain). A NaN reward never becomes the incumbent
    and takes no part in the update (its advantage is zero).
    """
    check_positive("reinforce", batch_size=batch_size)
    require("reinforce", space, "to_decisions", "from_decisions")
    if not hasattr(space, "decision_sizes"):
        raise ValueError(f"reinforce: the space {type(space).__name__} lacks "
                         "['decision_sizes'], which this searcher needs")
    if not learning_rate > 0:
        raise ValueError(f"reinforce: `learning_rate` must be > 0; got {learning_rate!r}")
    if not 0.0 <= baseline_decay < 1.0:
        raise ValueError(f"reinforce: `baseline_decay` must be in [0, 1); got "
                         f"{baseline_decay!r}")
    sizes = jnp.asarray(space.decision_sizes)
    num_choices = int(max(space.decision_sizes))
    valid = jnp.arange(num_choices)[None, :] < sizes[:, None]
    tx = optimizer if optimizer is not None else optax.adam(learning_rate)

    def init(key: jax.Array) -> ReinforceState:
        logits = jnp.where(valid, 0.0, -jnp.inf).astype(jnp.float32)
        return ReinforceState(logits, tx.init(jnp.zeros_like(logits)),
                              jnp.zeros((), jnp.float32), jnp.zeros((), jnp.int32),
                              space.sample(key), jnp.full((), -jnp.inf, jnp.float32))

    def ask(key: jax.Array, state: ReinforceState) -> tuple[Any, ReinforceState]:
        decisions = jax.random.categorical(key, state.logits, axis=-1,
                                           shape=(batch_size, sizes.shape[0]))
        return jax.vmap(space.from_decisions)(decisions), state

    def log_prob(logits: jax.Array, decisions: jax.Array) -> jax.Array:
        logp = jax.nn.log_softmax(jnp.where(valid, logits, -1e9), axis=-1)
        return jnp.sum(jnp.take_along_axis(logp, decisions[:, None], axis=-1))

    def tell(state: ReinforceState, archs: Any, fitness: jax.Array) -> ReinforceState:
        fitness = jnp.asarray(fitness, jnp.float32)
        ok = ~jnp.isnan(fitness)
        reward = jnp.where(ok, fitness, 0.0)
        mean = jnp.sum(reward) / jnp.maximum(jnp.sum(ok), 1)
        baseline = jnp.where(state.num_told == 0, mean, state.baseline)
        advantage = jnp.where(ok, reward - baseline, 0.0)
        decisions = jax.vmap(space.to_decisions)(archs)

        def loss(logits):
            lp = jax.vmap(log_prob, in_axes=(None, 0))(logits, decisions)
            return -jnp.mean(advantage * lp)

        grad = jax.grad(loss)(jnp.where(valid, state.logits, 0.0))
        grad = jnp.where(valid, grad, 0.0)
        updates, opt_state = tx.update(grad, state.opt_state)
        logits = jnp.where(valid, state.logits + updates, -jnp.inf)
        any_ok = jnp.any(ok)
        new_baseline = jnp.where(any_ok, baseline_decay * baseline
                                 + (1 - baseline_decay) * mean, baseline)
        best, best_fitness = update_incumbent(state.best, state.best_fitness, archs,
                                              clean_fitness(fitness))
        num_told = state.num_told + any_ok.astype(jnp.int32)
        return ReinforceState(logits, opt_state, new_baseline, num_told, best, best_fitness)

    return Searcher(init, ask, tell, batch_size)
