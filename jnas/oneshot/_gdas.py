"""GDAS: searching for a robust neural architecture in four GPU hours (Dong & Yang, 2019).

Each forward samples one op per edge with the hard Gumbel-softmax: the forward uses the
one-hot, the backward the relaxed probabilities (straight-through), and only the sampled
op is computed. The temperature falls linearly per epoch from `tau_max` to `tau_min`.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax

from jnas.oneshot._base import (
    Batch,
    OneShot,
    OneShotState,
    accuracy,
    alpha_shape,
    argmax_arch,
    check_config,
    cross_entropy,
    make_supernet,
    nb201_alpha_optimizer,
    nb201_w_lr,
    nb201_w_optimizer,
    w_update,
)


def hard_gumbel(key: jax.Array, alpha: jax.Array, tau: jax.Array
                ) -> tuple[jax.Array, jax.Array]:
    """(straight-through one-hot weights float[E, K], sampled index int32[E])."""
    gumbel = jax.random.gumbel(key, alpha.shape)
    probs = jax.nn.softmax((jax.nn.log_softmax(alpha, -1) + gumbel) / tau, -1)
    index = jnp.argmax(probs, -1)
    hard = jax.nn.one_hot(index, alpha.shape[-1], dtype=probs.dtype)
    return hard - jax.lax.stop_gradient(probs) + probs, index


def gdas_tau(step: jax.Array, steps_per_epoch: int, epochs: int, tau_max: float,
             tau_min: float) -> jax.Array:
    """The temperature at `step`: linear in the epoch from tau_max to tau_min."""
    epoch = jnp.minimum(step // steps_per_epoch, epochs - 1)
    return tau_max - (tau_max - tau_min) * epoch / max(epochs - 1, 1)


def gdas(space: Any, *, epochs: int = 250, steps_per_epoch: int = 391,
         tau_max: float = 10.0, tau_min: float = 0.1,
         w_lr: optax.ScalarOrSchedule | None = None,
         w_optimizer: optax.GradientTransformation | None = None,
         alpha_optimizer: optax.GradientTransformation | None = None,
         alpha_init_scale: float = 1e-3, **supernet: Any) -> OneShot:
    """GDAS on `space.supernet(**supernet)`: a weight step on the training batch and an α
    step on the validation batch, each through a freshly sampled hard Gumbel cell.

    Under `vmap` over seeds the sampled indices are batched and every op runs (a select);
    one architecture at a time computes only the sampled ops.
    """
    check_config("gdas", epochs=epochs, steps_per_epoch=steps_per_epoch)
    if not 0 < tau_min <= tau_max:
        raise ValueError(f"gdas: need 0 < `tau_min` <= `tau_max`; got {tau_min}, {tau_max}")
    net = make_supernet(space, supernet)
    lr = nb201_w_lr(epochs, steps_per_epoch) if w_lr is None else w_lr
    w_opt = w_optimizer or nb201_w_optimizer(lr)
    a_opt = alpha_optimizer or nb201_alpha_optimizer()

    def init(key: jax.Array) -> OneShotState:
        k_w, k_a = jax.random.split(key)
        params = net.init_params(k_w)
        alpha = alpha_init_scale * jax.random.normal(k_a, alpha_shape(space))
        return OneShotState(params, alpha, w_opt.init(params), a_opt.init(alpha),
                            jnp.zeros((), jnp.int32))

    def step(state: OneShotState, train: Batch, val: Batch,
             key: jax.Array) -> tuple[OneShotState, dict]:
        tau = gdas_tau(state.step, steps_per_epoch, epochs, tau_max, tau_min)
        k_w, k_a = jax.random.split(key)
        hard, index = hard_gumbel(k_w, jax.lax.stop_gradient(state.alpha), tau)

        def of_params(p):
            logits = net.apply(p, train[0], hard, index)
            return cross_entropy(logits, train[1]), accuracy(logits, train[1])

        params, w_state, w_loss, w_acc = w_update(of_params, w_opt, state.params, state.w_opt)

        def of_alpha(a):
            weights, idx = hard_gumbel(k_a, a, tau)
            return cross_entropy(net.apply(params, val[0], weights, idx), val[1])

        a_loss, a_grad = jax.value_and_grad(of_alpha)(state.alpha)
        updates, a_state = a_opt.update(a_grad, state.alpha_opt, state.alpha)
        alpha = optax.apply_updates(state.alpha, updates)
        new = OneShotState(params, alpha, w_state, a_state, state.step + 1)
        return new, {"w_loss": w_loss, "w_acc": w_acc, "alpha_loss": a_loss, "tau": tau}

    def derive(state: OneShotState, key: jax.Array | None = None, batch: Batch | None = None):
        return argmax_arch(space, state.alpha)

    return OneShot(init, step, derive, net.apply)
