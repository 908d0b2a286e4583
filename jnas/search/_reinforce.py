"""REINFORCE with a moving-average baseline (Williams 1992) over independent per-decision
logits (the NAS-Bench-201 paper's baseline) or an LSTM controller (Zoph & Le, ICLR 2017)."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jnas._checks import check_positive
from jnas.nn import lstm_controller
from jnas.search._base import (
    Searcher,
    clean_fitness,
    update_incumbent,
)
from jnas.spaces import Decisions, DecisionSpace, Space, require


class ReinforceState(NamedTuple):
    policy: Any  # float32[D, K] logits, or the LSTM controller's params
    opt_state: Any  # the optimiser's state (optax)
    baseline: jax.Array  # float32[]: moving average of the reward
    num_told: jax.Array  # int32[]
    best: Any
    best_fitness: jax.Array  # float32[]


CONTROLLERS = ("logits", "lstm")


def reinforce(
    space: DecisionSpace,
    batch_size: int = 1,
    learning_rate: float = 0.01,
    baseline_decay: float = 0.9,
    optimizer: optax.GradientTransformation | None = None,
    *,
    controller: str = "logits",
    hidden: int = 64,
    entropy_weight: float = 0.0,
    initial_policy: Any = None,
) -> Searcher:
    """REINFORCE (Williams 1992) with a moving-average baseline over a space's decisions.

    `controller="logits"`: every decision from its own softmax (the NB201 paper's
    REINFORCE baseline; the policy is float32[D, K] logits). `controller="lstm"`: Zoph &
    Le's LSTM controller (ICLR 2017; `lstm_controller`, `hidden` units), each decision
    conditioned on the previous ones. After each `tell`, one policy-gradient step on
    `-(reward - baseline) * log p(arch) - entropy_weight * H` (Adam, `learning_rate`, or
    `optimizer`), then the baseline moves toward the batch's mean reward (`baseline_decay`,
    NB201's EMA momentum).

    `initial_policy`: the policy to start from instead of uniform logits or a random LSTM,
    e.g. one meta-learned on earlier tasks (`jnas.transfer.meta_train_policy`): float[D, K]
    logits, or the LSTM controller's params (the structure and shapes `lstm_controller`
    makes for this space and `hidden`).

    The space must offer categorical decisions (`decision_sizes`, `to_decisions`,
    `from_decisions`: NB201, NATSSize, Chain). A NaN reward never becomes the incumbent
    and takes no part in the update (its advantage is zero).
    """
    check_positive("reinforce", batch_size=batch_size, hidden=hidden)
    require("reinforce", space, Space, Decisions)
    if controller not in CONTROLLERS:
        raise ValueError(
            f"reinforce: `controller` must be one of {CONTROLLERS}; got {controller!r}"
        )
    if not learning_rate > 0:
        raise ValueError(f"reinforce: `learning_rate` must be > 0; got {learning_rate!r}")
    if not 0.0 <= baseline_decay < 1.0:
        raise ValueError(f"reinforce: `baseline_decay` must be in [0, 1); got {baseline_decay!r}")
    if not entropy_weight >= 0:
        raise ValueError(f"reinforce: `entropy_weight` must be >= 0; got {entropy_weight!r}")
    sizes = jnp.asarray(space.decision_sizes)
    num_decisions, num_choices = len(space.decision_sizes), int(max(space.decision_sizes))
    lstm = lstm_controller(space.decision_sizes, hidden)
    if initial_policy is not None:
        want_struct = (
            jax.ShapeDtypeStruct((num_decisions, num_choices), jnp.float32)
            if controller == "logits"
            else jax.eval_shape(lstm.init, jax.random.key(0))
        )
        want = jax.tree.map(lambda w: tuple(w.shape), want_struct)
        try:
            got = jax.tree.map(lambda w, a: tuple(jnp.shape(a)), want_struct, initial_policy)
        except (ValueError, TypeError):  # another tree structure
            got = jax.tree.map(jnp.shape, initial_policy)
        if got != want:
            raise ValueError(
                f"reinforce: `initial_policy` for controller={controller!r} must have the "
                f"shapes {want}; got {jax.tree.map(jnp.shape, initial_policy)}"
            )
        initial_policy = jax.tree.map(lambda a: jnp.asarray(a, jnp.float32), initial_policy)
    valid = jnp.arange(num_choices)[None, :] < sizes[:, None]
    tx = optimizer if optimizer is not None else optax.adam(learning_rate)

    def init_policy(key: jax.Array) -> Any:
        if initial_policy is not None:
            return initial_policy
        if controller == "lstm":
            return lstm.init(key)
        return jnp.zeros((num_decisions, num_choices), jnp.float32)

    if controller == "lstm":

        def log_prob(policy: Any, decisions: jax.Array) -> tuple[jax.Array, jax.Array]:
            return lstm.log_prob(policy, decisions)

        def sample(policy: Any, key: jax.Array) -> jax.Array:
            keys = jax.random.split(key, batch_size)
            return jax.vmap(lambda k: lstm.sample(policy, k)[0])(keys)
    else:

        def sample(policy: Any, key: jax.Array) -> jax.Array:
            return jax.random.categorical(
                key, jnp.where(valid, policy, -jnp.inf), axis=-1, shape=(batch_size, num_decisions)
            )

        def log_prob(policy: Any, decisions: jax.Array) -> tuple[jax.Array, jax.Array]:
            logp = jax.nn.log_softmax(jnp.where(valid, policy, -1e9), axis=-1)
            entropy = -jnp.sum(jnp.where(valid, jnp.exp(logp) * logp, 0.0))
            return jnp.sum(jnp.take_along_axis(logp, decisions[:, None], axis=-1)), entropy

    def init(key: jax.Array) -> ReinforceState:
        k_policy, k_arch = jax.random.split(key)
        policy = init_policy(k_policy)
        return ReinforceState(
            policy,
            tx.init(policy),
            jnp.zeros((), jnp.float32),
            jnp.zeros((), jnp.int32),
            space.sample(k_arch),
            jnp.full((), -jnp.inf, jnp.float32),
        )

    def ask(key: jax.Array, state: ReinforceState) -> tuple[Any, ReinforceState]:
        return jax.vmap(space.from_decisions)(sample(state.policy, key)), state

    def tell(state: ReinforceState, archs: Any, fitness: jax.Array) -> ReinforceState:
        fitness = jnp.asarray(fitness, jnp.float32)
        ok = ~jnp.isnan(fitness)
        reward = jnp.where(ok, fitness, 0.0)
        mean = jnp.sum(reward) / jnp.maximum(jnp.sum(ok), 1)
        baseline = jnp.where(state.num_told == 0, mean, state.baseline)
        advantage = jnp.where(ok, reward - baseline, 0.0)
        decisions = jax.vmap(space.to_decisions)(archs).astype(jnp.int32)

        def loss(policy):
            lp, entropy = jax.vmap(log_prob, in_axes=(None, 0))(policy, decisions)
            return -jnp.mean(advantage * lp) - entropy_weight * jnp.mean(entropy)

        grads = jax.grad(loss)(state.policy)
        updates, opt_state = tx.update(grads, state.opt_state, state.policy)
        policy = optax.apply_updates(state.policy, updates)
        any_ok = jnp.any(ok)
        new_baseline = jnp.where(
            any_ok, baseline_decay * baseline + (1 - baseline_decay) * mean, baseline
        )
        best, best_fitness = update_incumbent(
            state.best, state.best_fitness, archs, clean_fitness(fitness)
        )
        num_told = state.num_told + any_ok.astype(jnp.int32)
        return ReinforceState(policy, opt_state, new_baseline, num_told, best, best_fitness)

    return Searcher(init, ask, tell, batch_size)
