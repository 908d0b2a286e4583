"""A search policy meta-learned across tasks: REINFORCE's per-decision logits meta-trained
with Reptile (Nichol et al. 2018) over source tasks' tables, then adapted on the target by
its own evaluations (`search.reinforce(space, initial_logits=...)`).

The inner loop is a whole REINFORCE search of `inner_evals` evaluations on one source task
(rewards: the task's scores, standardised per task so each task weighs the same); the outer
step moves the initial logits towards the mean of the adapted ones over tasks and seeds, all
tasks and seeds `vmap`ped in one program. (MAML's exact meta-gradient through sampled
policy-gradient steps needs a score-function estimator of its own; Reptile needs none.)
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from jnas._checks import check_positive
from jnas.search import reinforce
from jnas.spaces import Decisions, Indexed, Space, require


def meta_train_policy(
    key: jax.Array,
    space: Any,
    scores: jax.Array,
    *,
    meta_steps: int = 100,
    inner_evals: int = 50,
    seeds_per_task: int = 8,
    inner_lr: float = 0.05,
    meta_lr: float = 0.5,
) -> jax.Array:
    """float32[D, K]: initial REINFORCE logits meta-learned with Reptile over the source
    tasks' `scores[T, N]` (rows of an indexed space with decisions; NaN rows score the
    task's minimum)."""
    require("meta_train_policy", space, Space, Decisions, Indexed)
    check_positive(
        "meta_train_policy",
        meta_steps=meta_steps,
        inner_evals=inner_evals,
        seeds_per_task=seeds_per_task,
    )
    if scores.ndim != 2:
        raise ValueError(f"meta_train_policy: `scores` must be [tasks, rows]; got {scores.shape}")
    lo = jnp.nanmin(scores, axis=1, keepdims=True)
    z = jnp.where(jnp.isnan(scores), lo, scores)
    z = (z - z.mean(1, keepdims=True)) / (z.std(1, keepdims=True) + 1e-8)
    shape = (len(space.decision_sizes), int(max(space.decision_sizes)))

    def inner(logits: jax.Array, column: jax.Array, k: jax.Array) -> jax.Array:
        searcher = reinforce(space, learning_rate=inner_lr, initial_logits=logits)
        k_init, k_run = jax.random.split(k)

        def one(state, kk):
            archs, state = searcher.ask(kk, state)
            fitness = column[jax.vmap(space.index)(archs)]
            return searcher.tell(state, archs, fitness), None

        state, _ = jax.lax.scan(one, searcher.init(k_init), jax.random.split(k_run, inner_evals))
        return state.policy

    def meta_step(logits: jax.Array, k: jax.Array) -> tuple[jax.Array, None]:
        keys = jax.random.split(k, (scores.shape[0], seeds_per_task))
        adapted = jax.vmap(lambda col, ks: jax.vmap(lambda kk: inner(logits, col, kk))(ks))(z, keys)
        return logits + meta_lr * (adapted.mean((0, 1)) - logits), None

    logits, _ = jax.jit(
        lambda k: jax.lax.scan(
            meta_step, jnp.zeros(shape, jnp.float32), jax.random.split(k, meta_steps)
        )
    )(key)
    return logits
