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
    alpha_init_fn,
    alpha_update,
    argmax_derive,
    check_config,
    check_tau,
    cross_entropy,
    linear_tau,
    make_supernet,
    optimizers,
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


gdas_tau = linear_tau  # GDAS: linear in the epoch from 10 to 0.1


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
    check_tau("gdas", tau_max, tau_min)
    net = make_supernet(space, supernet)
    _, w_opt, a_opt = optimizers(epochs, steps_per_epoch, w_lr, w_optimizer, alpha_optimizer)
    init = alpha_init_fn(net, space, w_opt, a_opt, alpha_init_scale)

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
        alpha, a_state = alpha_update(a_opt, state.alpha, state.alpha_opt, a_grad)
        new = OneShotState(params, alpha, w_state, a_state, state.step + 1)
        return new, {"w_loss": w_loss, "w_acc": w_acc, "alpha_loss": a_loss, "tau": tau}

    derive = argmax_derive(space)
    return OneShot(init, step, derive, net.apply)
