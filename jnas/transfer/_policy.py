"""A search policy meta-learned across tasks: REINFORCE's policy (per-decision logits, or
Zoph & Le's LSTM controller) meta-trained over source tasks' tables, then adapted on the
target by its own evaluations (`search.reinforce(space, initial_policy=...)`).

Two meta-learners (`method`):
- `"reptile"` (Nichol et al. 2018): the inner loop is a whole sampled REINFORCE search of
  `inner_evals` evaluations on one source task (rewards: the task's scores, standardised per
  task so each task weighs the same); the outer step moves the initial logits towards the
  mean of the adapted ones over tasks and seeds.
- `"maml"` (Finn et al. 2017) with **exact** policy gradients: on a table the expected reward
  is a finite sum, J(θ) = Σ_rows p_θ(row) z(row) (for the LSTM, p_θ of every row comes from
  one pass over the tree of decision prefixes, `Controller.log_probs`), so the inner loop
  takes `inner_evals` Adam steps on ∇J itself (the mean path of REINFORCE's sampled steps, no
  estimator variance), and the meta-gradient of J_task(θ_K) is differentiated exactly through
  all K steps (no first-order shortcut, no score-function estimator of the inner samples).
All tasks (and Reptile's seeds) are `vmap`ped in one program.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax

from jnas._checks import check_positive
from jnas.nn import lstm_controller
from jnas.search import reinforce
from jnas.spaces import Decisions, Indexed, Space, require
from jnas.transfer._resume import fingerprint, run_steps

CONTROLLERS = ("logits", "lstm")  # as `search.reinforce`'s


def meta_train_policy(
    key: jax.Array,
    space: Any,
    scores: jax.Array,
    *,
    meta_steps: int = 100,
    inner_evals: int = 50,
    seeds_per_task: int = 8,
    inner_lr: float = 0.05,
    meta_lr: float | None = None,
    method: str = "reptile",
    controller: str = "logits",
    hidden: int = 64,
    out: str | os.PathLike | None = None,
    resume: bool = False,
    checkpoint_every: int = 10,
) -> Any:
    """REINFORCE's initial policy meta-learned over the source tasks' `scores[T, N]` (rows
    of an indexed space with decisions; NaN rows score the task's minimum), by `method`
    `"reptile"` or `"maml"` (see the module docstring): float32[D, K] logits, or with
    `controller="lstm"` the LSTM controller's params (`hidden` units), for
    `search.reinforce(space, controller=..., hidden=..., initial_policy=...)`.

    meta_lr: Reptile's interpolation step (default 0.5) or MAML's outer Adam step (default
    0.05). seeds_per_task: Reptile's sampled searches per task (MAML's inner loop is exact).
    With `out`, a checkpoint every `checkpoint_every` meta-steps; `resume=True` continues a
    killed run (or extends a finished one) from its folder. Meta-step i draws from
    `fold_in(key, i)`.
    """
    require("meta_train_policy", space, Space, Decisions, Indexed)
    if method not in ("reptile", "maml"):
        raise ValueError(f"meta_train_policy: `method` must be 'reptile' or 'maml'; got {method!r}")
    if controller not in CONTROLLERS:
        raise ValueError(
            f"meta_train_policy: `controller` must be one of {CONTROLLERS}; got {controller!r}"
        )
    check_positive(
        "meta_train_policy",
        hidden=hidden,
        meta_steps=meta_steps,
        inner_evals=inner_evals,
        seeds_per_task=seeds_per_task,
    )
    if scores.ndim != 2:
        raise ValueError(f"meta_train_policy: `scores` must be [tasks, rows]; got {scores.shape}")
    lo = jnp.nanmin(scores, axis=1, keepdims=True)
    z = jnp.where(jnp.isnan(scores), lo, scores)
    z = (z - z.mean(1, keepdims=True)) / (z.std(1, keepdims=True) + 1e-8)
    meta_lr = (0.05 if method == "maml" else 0.5) if meta_lr is None else meta_lr
    settings = {
        "method": method,
        "controller": controller,
        "hidden": hidden,
        "inner_evals": inner_evals,
        "seeds_per_task": seeds_per_task,
        "inner_lr": inner_lr,
        "meta_lr": meta_lr,
        "key": fingerprint(jax.random.key_data(key)),
        "scores": fingerprint(scores),
    }
    resumable = {
        "steps": meta_steps,
        "chunk": min(checkpoint_every, meta_steps),
        "out": out,
        "resume": resume,
        "settings": settings,
    }
    policy = {"controller": controller, "hidden": hidden}
    if method == "maml":  # exact: nothing is sampled
        return _maml(space, z, inner_evals, inner_lr, meta_lr, key, resumable, policy)
    start = initial_policy(space, **policy)

    def inner(theta: Any, column: jax.Array, k: jax.Array) -> Any:
        searcher = reinforce(space, learning_rate=inner_lr, initial_policy=theta, **policy)
        k_init, k_run = jax.random.split(k)

        def one(state, kk):
            archs, state = searcher.ask(kk, state)
            fitness = column[jax.vmap(space.index)(archs)]
            return searcher.tell(state, archs, fitness), None

        state, _ = jax.lax.scan(one, searcher.init(k_init), jax.random.split(k_run, inner_evals))
        return state.policy

    def meta_step(theta: Any, i: jax.Array) -> tuple[Any, jax.Array]:
        keys = jax.random.split(jax.random.fold_in(key, i), (scores.shape[0], seeds_per_task))
        adapted = jax.vmap(lambda col, ks: jax.vmap(lambda kk: inner(theta, col, kk))(ks))(z, keys)
        new = jax.tree.map(lambda t, a: t + meta_lr * (a.mean((0, 1)) - t), theta, adapted)
        moved = jax.tree.leaves(jax.tree.map(lambda n, t: jnp.abs(n - t).ravel(), new, theta))
        return new, jnp.mean(jnp.concatenate(moved))  # how far the step moved

    theta, _ = run_steps("meta_train_policy", meta_step, start, key, **resumable)
    return theta


def initial_policy(space: Any, *, controller: str = "logits", hidden: int = 64) -> Callable:
    """`init(key) -> policy`: where meta-training starts, uniform logits or a fresh LSTM
    controller (`jnas.nn.lstm_controller`'s initialisation)."""
    if controller == "lstm":
        return lstm_controller(space.decision_sizes, hidden).init
    shape = (len(space.decision_sizes), int(max(space.decision_sizes)))
    return lambda key: jnp.zeros(shape, jnp.float32)


def row_log_probs(
    space: Any, *, controller: str = "logits", hidden: int = 64
) -> Callable[[Any], jax.Array]:
    """`log_p(policy) -> float[N]`: the log-probability REINFORCE's policy gives each row of
    an indexed space (logits: a sum over decisions; LSTM: the controller's probability of
    every decision tuple, read at the rows' tuples)."""
    decisions = row_decisions(space)
    if controller == "lstm":
        if math.prod(space.decision_sizes) > 4_000_000:
            raise ValueError(
                "row_log_probs: the LSTM's exact sum needs every decision tuple; "
                f"{math.prod(space.decision_sizes)} are too many"
            )
        lstm = lstm_controller(space.decision_sizes, hidden)
        flat = jnp.ravel_multi_index(tuple(decisions.T), space.decision_sizes, mode="clip")
        return lambda theta: lstm.log_probs(theta)[flat]
    sizes = jnp.asarray(space.decision_sizes)
    invalid = jnp.arange(int(max(space.decision_sizes)))[None, :] >= sizes[:, None]

    def logits_log_p(theta: jax.Array) -> jax.Array:
        logp = jax.nn.log_softmax(jnp.where(invalid, -jnp.inf, theta), -1)
        return jnp.sum(jnp.take_along_axis(logp, decisions.T, axis=1), 0)

    return logits_log_p


def row_decisions(space: Any) -> jax.Array:
    """int32[N, D]: the decisions of every row of an indexed space."""
    rows = jnp.arange(space.size, dtype=jnp.int32)
    return jax.vmap(lambda r: space.to_decisions(space.from_index(r)))(rows).astype(jnp.int32)


def expected_reward(logits: jax.Array, decisions: jax.Array, reward: jax.Array) -> jax.Array:
    """Σ_rows p(row) reward(row) under per-decision softmax(`logits`) [D, K] (choices past a
    decision's size carry -inf logits): the exact objective REINFORCE samples."""
    logp = jax.nn.log_softmax(logits, -1)
    row_logp = jnp.sum(jnp.take_along_axis(logp, decisions.T, axis=1), 0)
    return jnp.sum(jnp.exp(row_logp) * reward)


def maml_policy_loss(
    space: Any,
    rewards: jax.Array,
    *,
    inner_steps: int,
    inner_lr: float,
    controller: str = "logits",
    hidden: int = 64,
) -> Callable[[Any], jax.Array]:
    """`loss(policy) -> -mean over tasks of J_task(θ_K)`: MAML's meta-objective for
    REINFORCE's policy (logits [D, K] or the LSTM's params), θ_K after `inner_steps` Adam
    steps (`inner_lr`) on the exact ∇J_task from θ_0 = policy, `rewards[T, N]` per task and
    row. Differentiable end to end (`jax.grad(loss)` is the exact meta-gradient)."""
    log_p = row_log_probs(space, controller=controller, hidden=hidden)
    # Adam as REINFORCE's own steps; eps_root keeps its square root differentiable at 0
    inner_tx = optax.adam(inner_lr, eps_root=1e-12)

    def value(theta: Any, reward: jax.Array) -> jax.Array:
        return jnp.sum(jnp.exp(log_p(theta)) * reward)

    def adapted_reward(theta: Any, reward: jax.Array) -> jax.Array:
        def one(carry, _):
            theta, opt = carry
            g = jax.grad(lambda t: -value(t, reward))(theta)
            updates, opt = inner_tx.update(g, opt, theta)
            return (optax.apply_updates(theta, updates), opt), None

        (theta, _), _ = jax.lax.scan(one, (theta, inner_tx.init(theta)), None, inner_steps)
        return value(theta, reward)

    def loss(theta: Any) -> jax.Array:
        return -jnp.mean(jax.vmap(lambda r: adapted_reward(theta, r))(rewards))

    return loss


def _maml(
    space: Any,
    z: jax.Array,
    inner_steps: int,
    inner_lr: float,
    meta_lr: float,
    key: jax.Array,
    resumable: dict,
    policy: dict,
) -> Any:
    loss = maml_policy_loss(space, z, inner_steps=inner_steps, inner_lr=inner_lr, **policy)
    start = initial_policy(space, **policy)
    outer = optax.adam(meta_lr)

    def meta_step(carry: Any, i: jax.Array) -> tuple[Any, jax.Array]:
        theta, opt = carry
        value, grad = jax.value_and_grad(loss)(theta)
        updates, opt = outer.update(grad, opt, theta)
        return (optax.apply_updates(theta, updates), opt), value

    def init(k: jax.Array) -> Any:
        theta = start(k)
        return theta, outer.init(theta)

    (theta, _), _ = run_steps("meta_train_policy", meta_step, init, key, **resumable)
    if policy["controller"] == "logits":
        sizes = jnp.asarray(space.decision_sizes)
        invalid = jnp.arange(theta.shape[1])[None, :] >= sizes[:, None]
        theta = jnp.where(invalid, 0.0, theta)
    return theta
