"""ProxylessNAS: direct neural architecture search on target task and hardware
(Cai, Zhu & Han, ICLR 2019).

Binary gates: the weight step trains one path per edge sampled from softmax(α). The α step
samples two candidate ops per edge, picks one by their renormalised probabilities and
passes the gradient through the binary gates (`dL/dα_i = sum_j dL/dg_j p_j (δ_ij - p_i)`
over the two, which is the straight-through gradient of the two-op softmax). The α loss
adds `latency_weight` times the expected cost under softmax(α), ProxylessNAS'
differentiable latency loss; per-op costs come from a lookup table (`op_costs`), e.g.
`linear_op_costs` fitted to the NB201 latency table. The two sampled ops are computed
through the weighted supernet (the other ops carry zero weight).
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
    cross_entropy,
    make_supernet,
    optimizers,
    w_update,
)
from jnas.oneshot._snas import op_costs


def linear_op_costs(space: Any, values: Any) -> np.ndarray:
    """float32[E, K] per-op costs whose sums best fit a per-cell cost (least squares).

    `values[i]` is the cost (latency, FLOPs, ...) of cell `space.from_index(i)`, e.g. a
    column of `jnas.bench.load_latency()`; the constant is spread evenly over the edges.
    """
    values = np.asarray(values, np.float64)
    if values.shape != (space.size,):
        raise ValueError(f"linear_op_costs: `values` must have one entry per cell "
                         f"({space.size},); got {values.shape}")
    slots, k = space.supernet_shape
    ops = np.asarray(jax.vmap(space.supernet_index)(space.enumerate()))
    design = np.zeros((space.size, slots * k + 1))
    for e in range(slots):
        design[np.arange(space.size), e * k + ops[:, e]] = 1.0
    design[:, -1] = 1.0
    ok = np.isfinite(values)
    coef, *_ = np.linalg.lstsq(design[ok], values[ok], rcond=None)
    costs = coef[:-1].reshape(slots, k)
    costs -= costs.min(-1, keepdims=True)  # per edge only differences matter
    return costs.astype(np.float32)


def two_path_gates(key: jax.Array, alpha: jax.Array) -> jax.Array:
    """Binary gates float[E, K]: one-hot of the op chosen among two sampled candidates, with
    the two-op softmax's gradient (zero weight and gradient on the other ops)."""
    k_pair, k_pick = jax.random.split(key)
    scores = jax.nn.log_softmax(alpha, -1) + jax.random.gumbel(k_pair, alpha.shape)
    pair = jax.lax.top_k(scores, 2)[1]  # two distinct ops by softmax(α), without replacement
    in_pair = jax.nn.one_hot(pair, alpha.shape[-1]).sum(-2)
    probs = jax.nn.softmax(jnp.where(in_pair > 0, alpha, -jnp.inf), -1)
    pick = jax.random.categorical(k_pick, jnp.log(jnp.maximum(jax.lax.stop_gradient(probs),
                                                              1e-30)), -1)
    hard = jax.nn.one_hot(pick, alpha.shape[-1], dtype=probs.dtype)
    return hard - jax.lax.stop_gradient(probs) + probs


def proxyless(space: Any, *, epochs: int = 50, steps_per_epoch: int = 391,
              latency_weight: float = 0.0, costs: Any = None,
              w_lr: optax.ScalarOrSchedule | None = None,
              w_optimizer: optax.GradientTransformation | None = None,
              alpha_optimizer: optax.GradientTransformation | None = None,
              alpha_init_scale: float = 1e-3, **supernet: Any) -> OneShot:
    """ProxylessNAS with binary gates on `space.supernet(**supernet)`; the derived cell takes
    each edge's most probable op."""
    check_config("proxyless", epochs=epochs, steps_per_epoch=steps_per_epoch)
    if latency_weight < 0:
        raise ValueError(f"proxyless: `latency_weight` must be >= 0; got {latency_weight}")
    cost = op_costs(space, costs)
    net = make_supernet(space, supernet)
    _, w_opt, a_opt = optimizers(epochs, steps_per_epoch, w_lr, w_optimizer, alpha_optimizer)
    init = alpha_init_fn(net, space, w_opt, a_opt, alpha_init_scale)

    def step(state: OneShotState, train: Batch, val: Batch,
             key: jax.Array) -> tuple[OneShotState, dict]:
        k_w, k_a = jax.random.split(key)
        index = jax.random.categorical(k_w, jax.lax.stop_gradient(state.alpha), -1)
        weights = jax.nn.one_hot(index, state.alpha.shape[-1])

        def of_params(p):
            logits = net.apply(p, train[0], weights, index)
            return cross_entropy(logits, train[1]), accuracy(logits, train[1])

        params, w_state, w_loss, w_acc = w_update(of_params, w_opt, state.params, state.w_opt)

        def of_alpha(a):
            ce = cross_entropy(net.apply(params, val[0], two_path_gates(k_a, a)), val[1])
            latency = jnp.sum(jax.nn.softmax(a, -1) * cost)
            return ce + latency_weight * latency, (ce, latency)

        (_, (a_loss, latency)), a_grad = jax.value_and_grad(of_alpha, has_aux=True)(
            state.alpha)
        alpha, a_state = alpha_update(a_opt, state.alpha, state.alpha_opt, a_grad)
        new = OneShotState(params, alpha, w_state, a_state, state.step + 1)
        return new, {"w_loss": w_loss, "w_acc": w_acc, "alpha_loss": a_loss,
                     "expected_cost": latency}

    derive = argmax_derive(space)
    return OneShot(init, step, derive, net.apply)
