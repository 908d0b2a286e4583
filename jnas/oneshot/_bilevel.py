"""The one-shot step built from parts: a relaxation (α -> op weights), an optional penalty
on α, single- or bi-level, first order or the exact hypergradient. DARTS, GDAS, SNAS,
DrNAS, ProxylessNAS and SETN are each one call of `relaxed_search`; the α-free methods
(RSWS, SPOS, one-shot dropout) one call of `weight_sharing`.

Bi-level (DARTS' alternation): a weight step on the training batch through
`weight_relaxation(stop_gradient(α))`, then an α step on the validation batch through
`relaxation(α)` at the new weights (order 1); order 2 takes the α step first, through
one virtual weight step (`hypergradient`), then the weight step with the new α.
Single-level (SNAS): one gradient of the training loss in both weights and α.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax

from jnas.oneshot._base import (
    Batch,
    OneShot,
    OneShotState,
    SharedWeightsState,
    Supernet,
    accuracy,
    alpha_init_fn,
    alpha_update,
    argmax_derive,
    check_config,
    cross_entropy,
    make_supernet,
    nb201_w_lr,
    nb201_w_optimizer,
    optimizers,
    w_update,
)
from jnas.oneshot._penalties import Penalty
from jnas.oneshot._relaxations import Relaxation

LossFn = Callable[[Any, jax.Array, Batch], jax.Array]  # (params, alpha, batch) -> loss
DeriveWith = Callable[[Supernet], Callable[..., Any]]  # supernet -> derive(state, key, batch)


def hypergradient(
    loss: LossFn,
    params: Any,
    alpha: jax.Array,
    train: Batch,
    val: Batch,
    xi: jax.Array | float,
    method: str = "exact",
    fd_epsilon: float = 0.01,
) -> tuple[jax.Array, jax.Array]:
    """(L_val(w', alpha), d L_val(w', alpha) / d alpha) with w' = w - xi grad_w L_train
    (DARTS' eq. 6-7).

    `method="exact"` is the chain rule through the virtual step: d L_val / d alpha minus
    xi times the mixed second derivative of L_train along grad_w' L_val, formed
    forward-over-reverse (the derivative of grad_alpha L_train along w in that direction;
    Pearlmutter 1994). It holds one pass's residuals and their tangents, where
    differentiating the inner gradient in reverse also held the inner backward pass (exact
    DARTS-V2, NB201 supernet C=16, N=5, batch 64, 2 CPU cores: peak RSS 7.5 -> 3.5 GB, a
    step 28 -> 20-22 s). The inner gradient is *linearized* once: its primal value is
    the virtual step's gradient and its linear map gives the mixed term, so the training
    batch's forward and backward pass run once, not twice (XLA's CSE merged only part of
    the two; same supernet: 135 -> 123 convolutions compiled, step 8.1 -> 7.5 s, compile
    -9 %, peak RSS 3.5 -> 4.3 GB, for the residuals now held across the validation pass).
    `"finite_difference"` is DARTS' eq. 8, a central difference with
    eps = fd_epsilon / ||grad_w' L_val|| (the paper's fd_epsilon = 0.01). On ReLU
    networks that step can cross kinks: the test suite's tiny supernet shows a relative
    error of several hundred percent at 0.01 and 2e-7 at 1e-4.
    """
    if method not in ("exact", "finite_difference"):
        raise ValueError(
            f"hypergradient: `method` must be 'exact' or 'finite_difference'; got {method!r}"
        )

    def virtual_step(g: Any) -> tuple[jax.Array, tuple[Any, jax.Array]]:
        """L_val at w' = w - xi * g and its gradient in (w', alpha)."""
        unrolled = jax.tree.map(lambda w, d: w - xi * d, params, g)
        return jax.value_and_grad(loss, argnums=(0, 1))(unrolled, alpha, val)

    if method == "exact":
        # the inner gradient is taken in (w, alpha), not alpha alone, so that it sees
        # every op that `w` enters: a `custom_vjp` op (the supernet's CPU convolutions,
        # `jnas.nn.canonical_conv`) whose inputs carry only the outer tangent would meet
        # forward mode, which it does not define; the tangent of the w-gradient is dead
        (g, _), inner = jax.linearize(lambda p: jax.grad(loss, (0, 1))(p, alpha, train), params)
        val_loss, (dw, da) = virtual_step(g)
        return val_loss, da - xi * inner(dw)[1]
    val_loss, (dw, da) = virtual_step(jax.grad(loss)(params, alpha, train))
    eps = fd_epsilon / optax.tree.norm(dw)
    plus = jax.tree.map(lambda w, d: w + eps * d, params, dw)
    minus = jax.tree.map(lambda w, d: w - eps * d, params, dw)
    hvp = (jax.grad(loss, 1)(plus, alpha, train) - jax.grad(loss, 1)(minus, alpha, train)) / (
        2 * eps
    )
    return val_loss, da - xi * hvp


def weight_step(
    net: Supernet,
    w_opt: optax.GradientTransformation,
    relaxation: Relaxation,
    params: Any,
    opt_state: Any,
    alpha: Any,
    batch: Batch,
    key: jax.Array,
    step: jax.Array,
) -> tuple[Any, Any, jax.Array, jax.Array]:
    """One optimiser step on the shared weights through `relaxation` of a constant α;
    returns (params, opt_state, loss, accuracy)."""
    weights, index = relaxation.sample(key, jax.lax.stop_gradient(alpha), step)

    def of_params(p):
        logits = net.apply(p, batch[0], weights, index)
        return cross_entropy(logits, batch[1]), accuracy(logits, batch[1])

    return w_update(of_params, w_opt, params, opt_state)


def _keys(key: jax.Array | None, first: Relaxation, second: Relaxation) -> tuple[Any, Any]:
    """The keys of two relaxations: split only when both draw (so a method whose α step
    is deterministic hands its whole key to the weight step)."""
    if first.stochastic and second.stochastic:
        if key is None:
            raise ValueError("a stochastic relaxation's step needs a `key`")
        k_first, k_second = jax.random.split(key)
        return k_first, k_second
    return key, key


def _temperature(relaxation: Relaxation, step: jax.Array) -> dict:
    return {} if relaxation.temperature is None else {"tau": relaxation.temperature(step)}


def bilevel_step(
    net: Supernet,
    w_opt: optax.GradientTransformation,
    a_opt: optax.GradientTransformation,
    relaxation: Relaxation,
    *,
    weight_relaxation: Relaxation | None = None,
    penalty: Penalty | None = None,
    order: int = 1,
    lr: optax.ScalarOrSchedule = 0.0,
    hypergradient_method: str = "exact",
) -> Callable[..., tuple[OneShotState, dict]]:
    """`step(key, state, train, val) -> (state, metrics)`, bi-level (see the module).

    metrics: `w_loss`, `w_acc` (weight step), `alpha_loss` (the cross-entropy of the α
    step), the penalty's unweighted value under its name, `tau` for tempered relaxations.
    `lr` (float or schedule) is the virtual step's size for order 2.
    """
    w_relax = weight_relaxation or relaxation

    def arch_ce(
        params: Any, alpha: jax.Array, batch: Batch, key: Any, step: jax.Array
    ) -> jax.Array:
        weights, index = relaxation.sample(key, alpha, step)
        return cross_entropy(net.apply(params, batch[0], weights, index), batch[1])

    def arch_loss(params, alpha, batch, key, step):
        ce = arch_ce(params, alpha, batch, key, step)
        if penalty is None:
            return ce, (ce, {})
        value = penalty.value(alpha)
        return ce + penalty.weight * value, (ce, {penalty.name: value})

    def step(
        key: jax.Array | None, state: OneShotState, train: Batch, val: Batch
    ) -> tuple[OneShotState, dict]:
        k_w, k_a = _keys(key, w_relax, relaxation)
        if order == 1:
            params, w_state, w_loss, w_acc = weight_step(
                net, w_opt, w_relax, state.params, state.w_opt, state.alpha, train, k_w, state.step
            )
            (_, (a_loss, extra)), a_grad = jax.value_and_grad(arch_loss, 1, has_aux=True)(
                params, state.alpha, val, k_a, state.step
            )
            alpha, a_state = alpha_update(a_opt, state.alpha, state.alpha_opt, a_grad)
        else:
            xi = jnp.asarray(lr(state.step) if callable(lr) else lr)
            a_loss, a_grad = hypergradient(
                lambda p, a, b: arch_ce(p, a, b, k_a, state.step),
                state.params,
                state.alpha,
                train,
                val,
                xi,
                hypergradient_method,
            )
            extra = {}
            if penalty is not None:
                value, g = jax.value_and_grad(penalty.value)(state.alpha)
                a_grad, extra = a_grad + penalty.weight * g, {penalty.name: value}
            alpha, a_state = alpha_update(a_opt, state.alpha, state.alpha_opt, a_grad)
            params, w_state, w_loss, w_acc = weight_step(
                net, w_opt, w_relax, state.params, state.w_opt, alpha, train, k_w, state.step
            )
        new = OneShotState(params, alpha, w_state, a_state, state.step + 1)
        return new, {
            "w_loss": w_loss,
            "w_acc": w_acc,
            "alpha_loss": a_loss,
            **extra,
            **_temperature(relaxation, state.step),
        }

    return step


def single_level_step(
    net: Supernet,
    w_opt: optax.GradientTransformation,
    a_opt: optax.GradientTransformation,
    relaxation: Relaxation,
    *,
    penalty: Penalty | None = None,
) -> Callable[..., tuple[OneShotState, dict]]:
    """`step(key, state, train, val)`: weights and α from one gradient of the training
    loss (+ penalty) through `relaxation(α)`; `val` is unused (SNAS)."""

    def step(
        key: jax.Array | None, state: OneShotState, train: Batch, val: Batch
    ) -> tuple[OneShotState, dict]:
        del val

        if key is None and relaxation.stochastic:
            raise ValueError("a single-level step draws its relaxation: pass a `key`")

        def loss(params, alpha):
            weights, index = relaxation.sample(key, alpha, state.step)
            logits = net.apply(params, train[0], weights, index)
            ce = cross_entropy(logits, train[1])
            extra = {}
            if penalty is not None:
                value = penalty.value(alpha)
                ce_plus, extra = ce + penalty.weight * value, {penalty.name: value}
            else:
                ce_plus = ce
            return ce_plus, (ce, accuracy(logits, train[1]), extra)

        (_, (ce, acc, extra)), (g_w, g_a) = jax.value_and_grad(loss, argnums=(0, 1), has_aux=True)(
            state.params, state.alpha
        )
        updates, w_state = w_opt.update(g_w, state.w_opt, state.params)
        alpha, a_state = alpha_update(a_opt, state.alpha, state.alpha_opt, g_a)
        new = OneShotState(
            optax.apply_updates(state.params, updates), alpha, w_state, a_state, state.step + 1
        )
        return new, {"w_loss": ce, "w_acc": acc, **extra, **_temperature(relaxation, state.step)}

    return step


def relaxed_search(
    space: Any,
    relaxation: Relaxation,
    *,
    name: str = "relaxed_search",
    weight_relaxation: Relaxation | None = None,
    penalty: Penalty | None = None,
    levels: int = 2,
    order: int = 1,
    hypergradient_method: str = "exact",
    derive_with: DeriveWith | None = None,
    epochs: int = 50,
    steps_per_epoch: int = 391,
    w_lr: optax.ScalarOrSchedule | None = None,
    w_optimizer: optax.GradientTransformation | None = None,
    alpha_optimizer: optax.GradientTransformation | None = None,
    alpha_init_scale: float = 1e-3,
    cpu_compiler_options: tuple[tuple[str, Any], ...] = (),
    **supernet: Any,
) -> OneShot[OneShotState]:
    """A one-shot method with architecture parameters α on `space.supernet(**supernet)`.

    Args:
      relaxation: α -> op weights for the α step (and the weight step unless
        `weight_relaxation` is given), see `jnas.oneshot.softmax_relaxation` and friends.
      penalty: added to the α loss (`expected_cost_penalty`, `dirichlet_anchor_penalty`).
      levels: 2 (weights on the training batch, α on the validation batch) or 1 (both
        from the training loss); order: 1 or 2 (bi-level only: the hypergradient through
        one virtual weight step of the current learning rate, `hypergradient_method`
        `"exact"` or `"finite_difference"`).
      derive_with: `derive_with(supernet) -> derive`; by default `space.derive` of
        `relaxation.mean(α)`.
      epochs, steps_per_epoch: length of the cosine weight schedule (NB201: 50 x 391).
      w_lr / w_optimizer / alpha_optimizer: the NB201 authors' by default; α starts as
        `alpha_init_scale * N(0, 1)`.
      cpu_compiler_options: XLA:CPU options for the step (`OneShot.cpu_compiler_options`).
    """
    check_config(name, epochs=epochs, steps_per_epoch=steps_per_epoch)
    if not isinstance(cpu_compiler_options, tuple) or not all(
        isinstance(o, tuple) and len(o) == 2 and isinstance(o[0], str) for o in cpu_compiler_options
    ):
        raise ValueError(
            f"{name}: `cpu_compiler_options` must be a tuple of (name, value) pairs (e.g. "
            f"jnas._execution.CLASSIC_EMITTERS); got {cpu_compiler_options!r}"
        )
    if levels not in (1, 2):
        raise ValueError(f"{name}: `levels` must be 1 or 2; got {levels!r}")
    if order not in (1, 2) or (levels == 1 and order != 1):
        raise ValueError(f"{name}: `order` must be 1 or 2 (2 only bi-level); got {order!r}")
    if hypergradient_method not in ("exact", "finite_difference"):
        raise ValueError(
            f"{name}: `hypergradient_method` must be 'exact' or "
            f"'finite_difference'; got {hypergradient_method!r}"
        )
    net = make_supernet(space, supernet)
    lr, w_opt, a_opt = optimizers(epochs, steps_per_epoch, w_lr, w_optimizer, alpha_optimizer)
    init = alpha_init_fn(net, space, w_opt, a_opt, alpha_init_scale)
    if levels == 2:
        step = bilevel_step(
            net,
            w_opt,
            a_opt,
            relaxation,
            weight_relaxation=weight_relaxation,
            penalty=penalty,
            order=order,
            lr=lr,
            hypergradient_method=hypergradient_method,
        )
    else:
        step = single_level_step(net, w_opt, a_opt, relaxation, penalty=penalty)
    derive = (derive_with or (lambda _: argmax_derive(space, relaxation.mean)))(net)
    return OneShot(init, step, derive, net.apply, cpu_compiler_options)


def weight_sharing(
    space: Any,
    relaxation: Relaxation,
    derive_with: DeriveWith,
    *,
    name: str = "weight_sharing",
    epochs: int = 50,
    steps_per_epoch: int = 391,
    w_lr: optax.ScalarOrSchedule | None = None,
    w_optimizer: optax.GradientTransformation | None = None,
    wrap: Callable[[Supernet], Supernet] | None = None,
    **supernet: Any,
) -> OneShot[SharedWeightsState]:
    """An α-free method: each step trains the shared weights through `relaxation` (a
    sampled path, a dropout mask); `derive_with(supernet)` searches with them. `wrap`
    replaces the supernet by one built on it (SMASH: weights a hypernetwork generates)."""
    check_config(name, epochs=epochs, steps_per_epoch=steps_per_epoch)
    net = make_supernet(space, supernet)
    if wrap is not None:
        net = wrap(net)
    lr = nb201_w_lr(epochs, steps_per_epoch) if w_lr is None else w_lr
    w_opt = w_optimizer or nb201_w_optimizer(lr)

    def init(key: jax.Array) -> SharedWeightsState:
        params = net.init_params(key)
        return SharedWeightsState(params, w_opt.init(params), jnp.zeros((), jnp.int32))

    def step(
        key: jax.Array, state: SharedWeightsState, train: Batch, val: Batch
    ) -> tuple[SharedWeightsState, dict]:
        del val  # the weights are the only thing trained
        params, w_state, loss, acc = weight_step(
            net, w_opt, relaxation, state.params, state.w_opt, None, train, key, state.step
        )
        return SharedWeightsState(params, w_state, state.step + 1), {"w_loss": loss, "w_acc": acc}

    return OneShot(init, step, derive_with(net), net.apply)
