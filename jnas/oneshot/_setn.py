"""SETN: one-shot neural architecture search via self-evaluated template network
(Dong & Yang, ICCV 2019), as in the NB201 authors' code.

The weights train on uniformly sampled single paths (the template sampler's exploration);
α trains on the validation batch through the softmax-weighted supernet (the evaluator).
The derived cell is the best, by supernet accuracy on a validation batch, of
`num_candidates` cells sampled from softmax(α).
"""

from __future__ import annotations

from typing import Any

import jax
import optax

from jnas._checks import check_positive
from jnas.oneshot._base import (
    Batch,
    OneShot,
    OneShotState,
    accuracy,
    alpha_init_fn,
    alpha_update,
    best_of,
    check_config,
    cross_entropy,
    make_supernet,
    need_data,
    optimizers,
    sample_from_alpha,
    sample_index,
    w_update,
)


def setn(space: Any, *, epochs: int = 250, steps_per_epoch: int = 391,
         num_candidates: int = 100, w_lr: optax.ScalarOrSchedule | None = None,
         w_optimizer: optax.GradientTransformation | None = None,
         alpha_optimizer: optax.GradientTransformation | None = None,
         alpha_init_scale: float = 1e-3, **supernet: Any) -> OneShot:
    """SETN on `space.supernet(**supernet)`; `derive(state, key, batch)` samples
    `num_candidates` cells from softmax(α) and keeps the best on `batch`."""
    check_config("setn", epochs=epochs, steps_per_epoch=steps_per_epoch)
    check_positive("setn", num_candidates=num_candidates)
    net = make_supernet(space, supernet)
    _, w_opt, a_opt = optimizers(epochs, steps_per_epoch, w_lr, w_optimizer, alpha_optimizer)
    init = alpha_init_fn(net, space, w_opt, a_opt, alpha_init_scale)

    def step(state: OneShotState, train: Batch, val: Batch,
             key: jax.Array) -> tuple[OneShotState, dict]:
        weights, index = sample_index(space, key)

        def of_params(p):
            logits = net.apply(p, train[0], weights, index)
            return cross_entropy(logits, train[1]), accuracy(logits, train[1])

        params, w_state, w_loss, w_acc = w_update(of_params, w_opt, state.params, state.w_opt)
        a_loss, a_grad = jax.value_and_grad(lambda a: cross_entropy(
            net.apply(params, val[0], jax.nn.softmax(a, -1)), val[1]))(state.alpha)
        alpha, a_state = alpha_update(a_opt, state.alpha, state.alpha_opt, a_grad)
        new = OneShotState(params, alpha, w_state, a_state, state.step + 1)
        return new, {"w_loss": w_loss, "w_acc": w_acc, "alpha_loss": a_loss}

    def derive(state: OneShotState, key: jax.Array | None = None, batch: Batch | None = None):
        need_data("setn", key, batch)
        keys = jax.random.split(key, num_candidates)
        archs = jax.vmap(lambda k: sample_from_alpha(space, k, state.alpha))(keys)
        return best_of(net, space, state.params, archs, batch)

    return OneShot(init, step, derive, net.apply)
