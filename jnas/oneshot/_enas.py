"""ENAS: efficient neural architecture search via parameter sharing (Pham, Guan, Zoph,
Le & Dean, ICML 2018).

An LSTM controller (`jnas.search.lstm_controller`) samples a cell; the shared supernet
weights train on it (training batch); the controller is updated by REINFORCE with the
sampled cell's supernet accuracy on the validation batch as the reward, an exponential
moving-average baseline and an entropy bonus. ENAS alternates whole phases (an epoch of
weights, then controller steps); jnas interleaves one of each per step. The derived cell
is the best of `num_candidates` controller samples by supernet accuracy.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax

from jnas._checks import check_positive
from jnas.oneshot._base import (
    Batch,
    OneShot,
    OneShotState,
    accuracy,
    best_of,
    check_config,
    cross_entropy,
    make_supernet,
    need_data,
    optimizers,
    w_update,
)


def enas(space: Any, *, epochs: int = 250, steps_per_epoch: int = 391,
         controller_lr: float = 1e-3, entropy_weight: float = 1e-4,
         baseline_decay: float = 0.95, hidden: int = 32, num_candidates: int = 100,
         w_lr: optax.ScalarOrSchedule | None = None,
         w_optimizer: optax.GradientTransformation | None = None,
         **supernet: Any) -> OneShot:
    """ENAS on `space.supernet(**supernet)`; `state.alpha` holds the controller's
    parameters and the reward baseline."""
    from jnas.nn import lstm_controller

    check_config("enas", epochs=epochs, steps_per_epoch=steps_per_epoch)
    check_positive("enas", num_candidates=num_candidates, hidden=hidden)
    if not 0 <= baseline_decay < 1:
        raise ValueError(f"enas: `baseline_decay` must be in [0, 1); got {baseline_decay}")
    if not hasattr(space, "decision_sizes"):
        raise ValueError(f"enas: the controller samples the space's decisions; "
                         f"{type(space).__name__} has no `decision_sizes`")
    controller = lstm_controller(space.decision_sizes, hidden=hidden)
    net = make_supernet(space, supernet)
    num_candidates_per_slot = space.supernet_shape[1]
    _, w_opt, _ = optimizers(epochs, steps_per_epoch, w_lr, w_optimizer, None)
    c_opt = optax.adam(controller_lr)

    def init(key: jax.Array) -> OneShotState:
        k_w, k_c = jax.random.split(key)
        params = net.init_params(k_w)
        ctrl = {"controller": controller.init(k_c), "baseline": jnp.zeros(())}
        return OneShotState(params, ctrl, w_opt.init(params), c_opt.init(ctrl["controller"]),
                            jnp.zeros((), jnp.int32))

    def step(state: OneShotState, train: Batch, val: Batch,
             key: jax.Array) -> tuple[OneShotState, dict]:
        k_w, k_c = jax.random.split(key)
        ctrl = state.alpha["controller"]
        index = space.supernet_index(space.from_decisions(controller.sample(ctrl, k_w)[0]))
        weights = jax.nn.one_hot(index, num_candidates_per_slot)

        def of_params(p):
            logits = net.apply(p, train[0], weights, index)
            return cross_entropy(logits, train[1]), accuracy(logits, train[1])

        params, w_state, w_loss, w_acc = w_update(of_params, w_opt, state.params, state.w_opt)
        arch, _, _ = controller.sample(ctrl, k_c)
        arch_index = space.supernet_index(space.from_decisions(arch))
        reward = accuracy(net.apply(params, val[0],
                                    jax.nn.one_hot(arch_index, num_candidates_per_slot),
                                    arch_index), val[1])
        baseline = state.alpha["baseline"]
        baseline = jnp.where(state.step == 0, reward,
                             baseline_decay * baseline + (1 - baseline_decay) * reward)

        def policy_loss(c):
            logp, entropy = controller.log_prob(c, arch)
            return -(reward - baseline) * logp - entropy_weight * entropy

        grads = jax.grad(policy_loss)(ctrl)
        updates, c_state = c_opt.update(grads, state.alpha_opt, ctrl)
        new_ctrl = {"controller": optax.apply_updates(ctrl, updates), "baseline": baseline}
        new = OneShotState(params, new_ctrl, w_state, c_state, state.step + 1)
        return new, {"w_loss": w_loss, "w_acc": w_acc, "reward": reward}

    def derive(state: OneShotState, key: jax.Array | None = None, batch: Batch | None = None):
        need_data("enas", key, batch)
        ops = jax.vmap(lambda k: controller.sample(state.alpha["controller"], k)[0])(
            jax.random.split(key, num_candidates))
        return best_of(net, space, state.params, jax.vmap(space.from_decisions)(ops), batch)

    return OneShot(init, step, derive, net.apply)
