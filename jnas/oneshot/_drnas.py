"""DrNAS: Dirichlet neural architecture search (Chen, Wang, Cheng, Tang & Hsieh, ICLR 2021).

α parameterises a Dirichlet over each edge's op weights (concentration `elu(α) + 1`). Each
forward draws op weights from it by the reparameterised (implicit-gradient) Dirichlet
sample, so α is learned by gradient through the samples; the α loss adds the anchor
regulariser `reg * KL(Dir(β) || Dir(1))` that keeps the concentration from exploding.
Bilevel like first-order DARTS: a weight step on the training batch, an α step on the
validation batch.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax
from jax.scipy.special import digamma, gammaln

from jnas.oneshot._base import (
    Batch,
    OneShot,
    OneShotState,
    accuracy,
    alpha_init_fn,
    alpha_update,
    argmax_derive,
    check_config,
    cross_entropy,
    make_supernet,
    optimizers,
    w_update,
)


def concentration(alpha: jax.Array) -> jax.Array:
    """DrNAS' Dirichlet concentration, positive: elu(α) + 1."""
    return jax.nn.elu(alpha) + 1.0


def dirichlet_kl_to_uniform(beta: jax.Array) -> jax.Array:
    """KL(Dir(β) || Dir(1, ..., 1)) summed over the leading (edge) axis."""
    k = beta.shape[-1]
    b0 = jnp.sum(beta, -1)
    kl = (gammaln(b0) - jnp.sum(gammaln(beta), -1) - gammaln(float(k))
          + jnp.sum((beta - 1.0) * (digamma(beta) - digamma(b0)[..., None]), -1))
    return jnp.sum(kl)


def drnas(space: Any, *, epochs: int = 50, steps_per_epoch: int = 391, reg: float = 1e-3,
          w_lr: optax.ScalarOrSchedule | None = None,
          w_optimizer: optax.GradientTransformation | None = None,
          alpha_optimizer: optax.GradientTransformation | None = None,
          alpha_init_scale: float = 1e-3, **supernet: Any) -> OneShot:
    """DrNAS on `space.supernet(**supernet)`; the derived cell takes each edge's op of
    highest expected weight (the Dirichlet mean, ∝ β)."""
    check_config("drnas", epochs=epochs, steps_per_epoch=steps_per_epoch)
    if reg < 0:
        raise ValueError(f"drnas: `reg` must be >= 0; got {reg}")
    net = make_supernet(space, supernet)
    _, w_opt, a_opt = optimizers(epochs, steps_per_epoch, w_lr, w_optimizer, alpha_optimizer)
    init = alpha_init_fn(net, space, w_opt, a_opt, alpha_init_scale)

    def step(state: OneShotState, train: Batch, val: Batch,
             key: jax.Array) -> tuple[OneShotState, dict]:
        k_w, k_a = jax.random.split(key)
        weights = jax.random.dirichlet(k_w, concentration(jax.lax.stop_gradient(state.alpha)))

        def of_params(p):
            logits = net.apply(p, train[0], weights)
            return cross_entropy(logits, train[1]), accuracy(logits, train[1])

        params, w_state, w_loss, w_acc = w_update(of_params, w_opt, state.params, state.w_opt)

        def of_alpha(a):
            beta = concentration(a)
            ce = cross_entropy(net.apply(params, val[0], jax.random.dirichlet(k_a, beta)),
                               val[1])
            return ce + reg * dirichlet_kl_to_uniform(beta), ce

        (_, a_loss), a_grad = jax.value_and_grad(of_alpha, has_aux=True)(state.alpha)
        alpha, a_state = alpha_update(a_opt, state.alpha, state.alpha_opt, a_grad)
        new = OneShotState(params, alpha, w_state, a_state, state.step + 1)
        return new, {"w_loss": w_loss, "w_acc": w_acc, "alpha_loss": a_loss}

    derive = argmax_derive(space, concentration)
    return OneShot(init, step, derive, net.apply)
