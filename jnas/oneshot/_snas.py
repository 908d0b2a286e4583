"""SNAS: stochastic neural architecture search (Xie, Zheng, Liu & Lin, ICLR 2019).

Weights and α are trained together on the training batch (single level): every forward
draws relaxed Gumbel-softmax op weights (the concrete distribution, no hard sample), and the
loss adds a resource penalty, the expected cost `sum_e sum_k p_ek cost_ek` under
softmax(α), as SNAS' resource constraint.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jnas.oneshot._base import (
    Batch,
    OneShot,
    OneShotState,
    accuracy,
    alpha_init_fn,
    alpha_update,
    argmax_derive,
    check_config,
    check_tau,
    cross_entropy,
    linear_tau,
    make_supernet,
    optimizers,
)

# Relative multiply-accumulates of the NB201 ops at equal channels (3x3 conv = 1).
NB201_OP_COST = {"none": 0.0, "skip_connect": 0.0, "nor_conv_1x1": 1 / 9,
                 "nor_conv_3x3": 1.0, "avg_pool_3x3": 0.0}


# Relative multiply-accumulates of the DARTS ops at C = 16 (sep_conv_3x3 = 1).
DARTS_OP_COST = {"none": 0.0, "max_pool_3x3": 0.0, "avg_pool_3x3": 0.0, "skip_connect": 0.0,
                 "sep_conv_3x3": 1.0, "sep_conv_5x5": 1.64, "sep_conv_7x7": 2.6,
                 "dil_conv_3x3": 0.5, "dil_conv_5x5": 0.82}


def default_op_costs(space: Any) -> Any:
    """A space's own cost table: Chain's per-block MFLOPs (224 px), the NATS size space's
    relative widths, else the relative MACs of the NB201 / DARTS ops."""
    if callable(getattr(space, "op_flops", None)):
        return space.op_flops()
    if callable(getattr(space, "widths", None)) and hasattr(space, "channels"):
        return np.asarray(space.channels, np.float32) / max(space.channels)
    return NB201_OP_COST | DARTS_OP_COST


def op_costs(space: Any, costs: Any = None) -> jax.Array:
    """float32[E, K] cost of each op on each edge: `costs` as given (a dict op -> cost or an
    [E, K] / [K] array), else `default_op_costs(space)`."""
    if costs is None:
        costs = default_op_costs(space)
    if isinstance(costs, dict):
        missing = [op for op in space.ops if op not in costs]
        if missing:
            raise ValueError(f"op costs: no cost for ops {missing}")
        costs = [costs[op] for op in space.ops]
    costs = np.broadcast_to(np.asarray(costs, np.float32), tuple(space.supernet_shape))
    return jnp.asarray(costs)


def relaxed_gumbel(key: jax.Array, alpha: jax.Array, tau: jax.Array) -> jax.Array:
    """Concrete-distribution op weights float[E, K] (differentiable in α)."""
    gumbel = jax.random.gumbel(key, alpha.shape)
    return jax.nn.softmax((jax.nn.log_softmax(alpha, -1) + gumbel) / tau, -1)


def snas(space: Any, *, epochs: int = 50, steps_per_epoch: int = 391,
         tau_max: float = 1.0, tau_min: float = 0.03, resource_weight: float = 0.0,
         costs: Any = None, w_lr: optax.ScalarOrSchedule | None = None,
         w_optimizer: optax.GradientTransformation | None = None,
         alpha_optimizer: optax.GradientTransformation | None = None,
         alpha_init_scale: float = 1e-3, **supernet: Any) -> OneShot:
    """SNAS: relaxed Gumbel weights, temperature linear in the epoch from `tau_max` to
    `tau_min`, loss = CE + `resource_weight` * expected cost (`costs`: see `op_costs`)."""
    check_config("snas", epochs=epochs, steps_per_epoch=steps_per_epoch)
    check_tau("snas", tau_max, tau_min)
    if resource_weight < 0:
        raise ValueError(f"snas: `resource_weight` must be >= 0; got {resource_weight}")
    cost = op_costs(space, costs)
    net = make_supernet(space, supernet)
    _, w_opt, a_opt = optimizers(epochs, steps_per_epoch, w_lr, w_optimizer, alpha_optimizer)
    init = alpha_init_fn(net, space, w_opt, a_opt, alpha_init_scale)

    def step(state: OneShotState, train: Batch, val: Batch,
             key: jax.Array) -> tuple[OneShotState, dict]:
        del val  # single level: both on the training batch
        tau = linear_tau(state.step, steps_per_epoch, epochs, tau_max, tau_min)

        def loss(params, alpha):
            logits = net.apply(params, train[0], relaxed_gumbel(key, alpha, tau))
            ce = cross_entropy(logits, train[1])
            resource = jnp.sum(jax.nn.softmax(alpha, -1) * cost)
            return ce + resource_weight * resource, (ce, accuracy(logits, train[1]), resource)

        (_, (ce, acc, resource)), (g_w, g_a) = jax.value_and_grad(
            loss, argnums=(0, 1), has_aux=True)(state.params, state.alpha)
        updates, w_state = w_opt.update(g_w, state.w_opt, state.params)
        alpha, a_state = alpha_update(a_opt, state.alpha, state.alpha_opt, g_a)
        new = OneShotState(optax.apply_updates(state.params, updates), alpha, w_state,
                           a_state, state.step + 1)
        return new, {"w_loss": ce, "w_acc": acc, "resource": resource, "tau": tau}

    derive = argmax_derive(space)
    return OneShot(init, step, derive, net.apply)
