"""ENAS: efficient neural architecture search via parameter sharing (Pham, Guan, Zoph,
Le & Dean, ICML 2018).

An LSTM controller (`jnas.nn.lstm_controller`) samples a cell; the shared supernet
weights train on it (training batch); the controller is updated by REINFORCE with the
sampled cell's supernet accuracy on the validation batch as the reward, an exponential
moving-average baseline and an entropy bonus. ENAS alternates whole phases (an epoch of
weights, then controller steps); jnas interleaves one of each per step. The derived cell
is the best of `num_candidates` controller samples by supernet accuracy.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jnas._checks import check_positive
from jnas.oneshot._base import (
    Batch,
    OneShot,
    accuracy,
    best_of,
    check_config,
    make_supernet,
    need_data,
    optimizers,
)
from jnas.oneshot._bilevel import weight_step
from jnas.oneshot._relaxations import Relaxation
from jnas.spaces import Decisions, HasSupernet, require


class ENASState(NamedTuple):
    """ENAS' search state: shared weights, the LSTM controller's parameters and the
    REINFORCE reward baseline (an exponential moving average)."""

    params: Any
    controller: Any
    baseline: jax.Array  # float32[]
    w_opt: Any
    controller_opt: Any
    step: jax.Array


def enas(
    space: Any,
    *,
    epochs: int = 250,
    steps_per_epoch: int = 391,
    controller_lr: float = 1e-3,
    entropy_weight: float = 1e-4,
    baseline_decay: float = 0.95,
    hidden: int = 32,
    num_candidates: int = 100,
    w_lr: optax.ScalarOrSchedule | None = None,
    w_optimizer: optax.GradientTransformation | None = None,
    **supernet: Any,
) -> OneShot[ENASState]:
    """ENAS on `space.supernet(**supernet)` (a space with `Decisions`, which the controller
    samples)."""
    from jnas.nn import lstm_controller

    check_config("enas", epochs=epochs, steps_per_epoch=steps_per_epoch)
    check_positive("enas", num_candidates=num_candidates, hidden=hidden)
    if not 0 <= baseline_decay < 1:
        raise ValueError(f"enas: `baseline_decay` must be in [0, 1); got {baseline_decay}")
    require("enas (the controller samples the space's decisions)", space, Decisions, HasSupernet)
    controller = lstm_controller(space.decision_sizes, hidden=hidden)
    net = make_supernet(space, supernet)
    num_ops = space.supernet_shape[1]
    _, w_opt, _ = optimizers(epochs, steps_per_epoch, w_lr, w_optimizer, None)
    c_opt = optax.adam(controller_lr)

    def cell(ctrl: Any, key: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        """(decisions, one-hot op weights, index) of a controller sample."""
        decisions = controller.sample(ctrl, key)[0]
        index = space.supernet_index(space.from_decisions(decisions))
        return decisions, jax.nn.one_hot(index, num_ops), index

    def init(key: jax.Array) -> ENASState:
        k_w, k_c = jax.random.split(key)
        params = net.init_params(k_w)
        ctrl = controller.init(k_c)
        return ENASState(
            params,
            ctrl,
            jnp.zeros(()),
            w_opt.init(params),
            c_opt.init(ctrl),
            jnp.zeros((), jnp.int32),
        )

    def step(key: jax.Array, state: ENASState, train: Batch, val: Batch) -> tuple[ENASState, dict]:
        k_w, k_c = jax.random.split(key)
        sampled = Relaxation(lambda k, ctrl, s: cell(ctrl, k)[1:], lambda a: a)
        params, w_state, w_loss, w_acc = weight_step(
            net, w_opt, sampled, state.params, state.w_opt, state.controller, train, k_w, state.step
        )
        arch, weights, index = cell(state.controller, k_c)
        reward = accuracy(net.apply(params, val[0], weights, index), val[1])
        baseline = jnp.where(
            state.step == 0, reward, baseline_decay * state.baseline + (1 - baseline_decay) * reward
        )

        def policy_loss(c):
            logp, entropy = controller.log_prob(c, arch)
            return -(reward - baseline) * logp - entropy_weight * entropy

        grads = jax.grad(policy_loss)(state.controller)
        updates, c_state = c_opt.update(grads, state.controller_opt, state.controller)
        new = ENASState(
            params,
            optax.apply_updates(state.controller, updates),
            baseline,
            w_state,
            c_state,
            state.step + 1,
        )
        return new, {"w_loss": w_loss, "w_acc": w_acc, "reward": reward}

    def derive(state: ENASState, key: jax.Array | None = None, batch: Batch | None = None):
        key, batch = need_data("enas", key, batch)
        ops = jax.vmap(lambda k: controller.sample(state.controller, k)[0])(
            jax.random.split(key, num_candidates)
        )
        return best_of(net, space, state.params, jax.vmap(space.from_decisions)(ops), batch)

    return OneShot(init, step, derive, net.apply)
