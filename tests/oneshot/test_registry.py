"""The one-shot registry says true things about every method, and the composed step's
parts do what they name (penalty gradient, single vs bi-level), checked against an
analytic derivation."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from jnas import oneshot
from jnas.commands.oneshot import METHOD_NAMES
from jnas.spaces import NB201

SPACE = NB201(ops=("none", "skip_connect", "nor_conv_3x3", "avg_pool_3x3"), num_nodes=3)
TINY = {"channels": 4, "cells_per_stage": 1, "num_classes": 3, "epochs": 2, "steps_per_epoch": 4}
EXTRA = {"spos": {"num_evaluations": 16, "population_size": 8}}


def batch(seed, n=8, size=8):
    k1, k2 = jax.random.split(jax.random.key(seed))
    return jax.random.normal(k1, (n, size, size, 3)), jax.random.randint(k2, (n,), 0, 3)


def test_the_cli_offers_exactly_the_registry():
    assert set(METHOD_NAMES) == set(oneshot.REGISTRY)


@pytest.mark.parametrize("name", sorted(oneshot.REGISTRY))
def test_entry_metadata_matches_the_method(name):
    """`uses_alpha` is true exactly when the state holds α [E, K]; `derive_needs_data`
    exactly when `derive` refuses to run without a validation batch."""
    entry = oneshot.REGISTRY[name]
    assert oneshot.supports(entry, SPACE)
    extra = EXTRA.get(name, {"num_candidates": 4} if entry.derive_needs_data else {})
    method = entry.make(SPACE, **TINY, **extra)
    state = jax.eval_shape(method.init, jax.random.key(0))
    assert isinstance(state, oneshot.OneShotState) == entry.uses_alpha
    if entry.uses_alpha:
        assert state.alpha.shape == tuple(SPACE.supernet_shape)
    if entry.derive_needs_data:
        with pytest.raises(ValueError, match="batch"):
            method.derive(state)
    else:
        concrete = method.init(jax.random.key(0))
        assert bool(SPACE.is_valid(method.derive(concrete)))


def test_supports_reads_the_needed_protocols():
    class NoDecisions:  # a supernet but no decisions: ENAS' controller has nothing to sample
        supernet_shape = (6, 4)

        def supernet(self, **config): ...
        def supernet_index(self, arch): ...
        def derive(self, weights): ...

    space = NoDecisions()
    assert oneshot.supports(oneshot.REGISTRY["darts-v1"], space)
    assert not oneshot.supports(oneshot.REGISTRY["enas"], space)


def expected_cost_grad(alpha, cost):
    """d/dα sum_k softmax(α)_k c_k = p_k (c_k - p.c), per edge (NumPy)."""
    p = np.exp(alpha - alpha.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    return p * (cost - (p * cost).sum(-1, keepdims=True))


@pytest.mark.parametrize("levels", [1, 2])
def test_the_penalty_adds_its_weighted_gradient_to_alpha(levels):
    """Under plain SGD on α (lr 1), a penalty of weight w moves α by exactly
    -w * d(expected cost)/dα beyond the unpenalised step, for a single- and a bi-level
    step alike (the same keys draw the same relaxation)."""
    cost = np.tile(np.asarray([0.0, 0.5, 2.0, 0.25], np.float32), (SPACE.supernet_shape[0], 1))
    relax = oneshot.gumbel_relaxation(lambda step: 1.0, hard=False)

    def alpha_after(weight):
        method = oneshot.relaxed_search(
            SPACE,
            relax,
            levels=levels,
            alpha_optimizer=optax.sgd(1.0),
            penalty=oneshot.expected_cost_penalty(SPACE, weight, cost),
            **TINY,
        )
        state = method.init(jax.random.key(0))
        new, metrics = jax.jit(method.step)(jax.random.key(3), state, batch(1), batch(2))
        return np.asarray(state.alpha), np.asarray(new.alpha), metrics

    alpha0, plain, metrics = alpha_after(0.0)
    _, penalised, _ = alpha_after(3.0)
    np.testing.assert_allclose(
        penalised - plain, -3.0 * expected_cost_grad(alpha0, cost), atol=2e-5
    )
    p = np.exp(alpha0) / np.exp(alpha0).sum(-1, keepdims=True)
    assert float(metrics["expected_cost"]) == pytest.approx(float((p * cost).sum()), rel=1e-5)


def test_single_level_ignores_the_validation_batch_and_bilevel_uses_it():
    """Single level (SNAS) trains α on the training loss: the validation batch changes
    nothing. Bi-level trains α on the validation batch: another one moves α elsewhere."""

    def alphas(levels):
        method = oneshot.relaxed_search(SPACE, oneshot.softmax_relaxation(), levels=levels, **TINY)
        state = method.init(jax.random.key(0))
        step = jax.jit(method.step)
        return [
            np.asarray(step(jax.random.key(3), state, batch(1), batch(v))[0].alpha) for v in (2, 5)
        ]

    one = alphas(1)
    np.testing.assert_array_equal(one[0], one[1])
    two = alphas(2)
    assert not np.allclose(two[0], two[1])


def test_composition_refuses_what_it_cannot_run():
    with pytest.raises(ValueError, match="levels"):
        oneshot.relaxed_search(SPACE, oneshot.softmax_relaxation(), levels=3, **TINY)
    with pytest.raises(ValueError, match="order"):
        oneshot.relaxed_search(SPACE, oneshot.softmax_relaxation(), levels=1, order=2, **TINY)
    with pytest.raises(ValueError, match="weight"):
        oneshot.expected_cost_penalty(SPACE, -1.0)
    with pytest.raises(ValueError, match="drop_rate"):
        oneshot.path_dropout_relaxation(SPACE, 1.0)
    with pytest.raises(ValueError, match="tau_min"):
        oneshot.linear_tau_schedule(4, 2, 0.1, 1.0)


def test_dirichlet_mean_is_the_normalised_concentration():
    alpha = jnp.asarray([[0.5, -2.0, 1.0]])
    beta = np.asarray(jax.nn.elu(alpha)) + 1.0
    np.testing.assert_allclose(
        oneshot.dirichlet_relaxation().mean(alpha), beta / beta.sum(-1, keepdims=True), rtol=1e-6
    )
    draws = jax.vmap(lambda k: oneshot.dirichlet_relaxation().sample(k, alpha, 0)[0])(
        jax.random.split(jax.random.key(0), 20000)
    )
    np.testing.assert_allclose(draws.mean(0), beta / beta.sum(-1, keepdims=True), atol=0.01)


class ToyNet(nnx.Module):
    """Slot e mixes three tanh layers by its op weights, h <- sum_k w[e, k] tanh(h A[e, k]);
    the logits are h B. Small enough that a bi-level step compiles in a second."""

    def __init__(self, *, width: int = 4, classes: int = 3, rngs: nnx.Rngs):
        self.a = nnx.Param(0.8 * jax.random.normal(rngs.params(), (2, 3, width, width)))
        self.b = nnx.Param(jax.random.normal(rngs.params(), (width, classes)))

    def __call__(self, x, weights, index=None):
        h = x
        for e in range(2):
            h = jnp.einsum(
                "k,knm->nm", weights[e], jnp.tanh(jnp.einsum("nd,kdm->knm", h, self.a[e]))
            )
        return h @ self.b


class ToySpace:
    """The supernet protocol around `ToyNet`: two slots of three candidates."""

    supernet_shape = (2, 3)

    def supernet(self, *, rngs, **config):
        return ToyNet(**config, rngs=rngs)

    def supernet_index(self, arch):
        return arch

    def derive(self, weights):
        return jnp.argmax(weights, -1)


def toy_batch(seed, n=8):
    k1, k2 = jax.random.split(jax.random.key(seed))
    return jax.random.normal(k1, (n, 4)), jax.random.randint(k2, (n,), 0, 3)


def uniform_weights():
    """A deterministic relaxation that weighs every op 1/3 (for the weight step only)."""
    return oneshot.Relaxation(
        lambda key, alpha, step: (jnp.full(alpha.shape, 1 / 3), None),
        lambda alpha: jax.nn.softmax(alpha, -1),
        stochastic=False,
    )


@pytest.mark.parametrize(
    ("order", "weight_relaxation"), [(1, None), (1, "uniform"), (2, None), (2, "uniform")]
)
def test_bilevel_steps_compose_their_parts_as_darts_orders_them(order, weight_relaxation):
    """Two steps of `relaxed_search` with plain SGD on both levels equal DARTS' Algorithm 1
    written out here with `jax.grad` of the loss. Order 1: a weight step on the training
    batch at the current α (through `weight_relaxation` when given), then an α step on the
    validation batch at the *new* weights. Order 2: first the α step, whose gradient is
    d/dα L_val(w - ξ ∇_w L_train(w, α), α) taken by differentiating through the virtual step
    (reverse over reverse, not the library's linearization) with ξ the weight learning
    rate of the current step, then the weight step at the *new* α. Both add the expected
    cost penalty's weighted gradient to α's and report its unweighted value."""
    cost = jnp.asarray([[0.0, 1.0, 2.0], [3.0, 0.0, 1.0]])
    penalty_weight, a_lr = 0.2, 0.3

    def w_lr(step):
        return 0.5 / (1.0 + step)  # changes every step: the step's own rate must be used

    method = oneshot.relaxed_search(
        ToySpace(),
        oneshot.softmax_relaxation(),
        weight_relaxation=None if weight_relaxation is None else uniform_weights(),
        penalty=oneshot.expected_cost_penalty(ToySpace(), penalty_weight, cost),
        order=order,
        w_lr=w_lr,
        w_optimizer=optax.sgd(w_lr),
        alpha_optimizer=optax.sgd(a_lr),
        alpha_init_scale=1.0,
        epochs=2,
        steps_per_epoch=4,
    )

    def ce(p, weights, b):
        logp = jax.nn.log_softmax(method.apply(p, b[0], weights))
        return -jnp.mean(jnp.take_along_axis(logp, b[1][:, None], 1))

    def arch_ce(p, a, b):
        return ce(p, jax.nn.softmax(a, -1), b)

    def w_weights(a):
        return jax.nn.softmax(a, -1) if weight_relaxation is None else jnp.full(a.shape, 1 / 3)

    def penalty(a):
        return jnp.sum(jax.nn.softmax(a, -1) * cost)

    def sgd(tree, grad, lr):
        return jax.tree.map(lambda w, g: w - lr * g, tree, grad)

    def unrolled(a, p, train, val, xi):
        """L_val after one virtual SGD step of the weights (DARTS' eq. 6)."""
        return arch_ce(sgd(p, jax.grad(arch_ce)(p, a, train), xi), a, val)

    state = method.init(jax.random.key(0))
    p, a = state.params, state.alpha
    step = jax.jit(method.step)
    for t in range(2):
        train, val = toy_batch(10 + t), toy_batch(20 + t)
        state, metrics = step(jax.random.key(t), state, train, val)
        if order == 1:
            w_loss, g_w = jax.value_and_grad(ce)(p, w_weights(a), train)
            p = sgd(p, g_w, w_lr(t))
            a_loss, g_a = jax.value_and_grad(arch_ce, 1)(p, a, val)
        else:
            a_loss, g_a = jax.value_and_grad(unrolled)(a, p, train, val, w_lr(t))
        pen = penalty(a)
        a = a - a_lr * (g_a + penalty_weight * jax.grad(penalty)(a))
        if order == 2:
            w_loss, g_w = jax.value_and_grad(ce)(p, w_weights(a), train)
            p = sgd(p, g_w, w_lr(t))
        np.testing.assert_allclose(state.alpha, a, rtol=1e-5, atol=1e-6)
        for got, want in zip(jax.tree.leaves(state.params), jax.tree.leaves(p), strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(metrics["w_loss"], w_loss, rtol=1e-5)
        np.testing.assert_allclose(metrics["alpha_loss"], a_loss, rtol=1e-5)
        np.testing.assert_allclose(metrics["expected_cost"], pen, rtol=1e-5)
        assert int(state.step) == t + 1


def test_single_level_step_is_one_gradient_of_the_training_loss_in_both():
    """SNAS' single level: weights and α move along one gradient of the training loss
    plus the weighted penalty (which has no weight gradient), each by its own SGD rate;
    `w_loss` is the cross-entropy without the penalty. Written out with `jax.grad`."""
    cost = jnp.asarray([[0.0, 1.0, 2.0], [3.0, 0.0, 1.0]])
    method = oneshot.relaxed_search(
        ToySpace(),
        oneshot.softmax_relaxation(),
        levels=1,
        penalty=oneshot.expected_cost_penalty(ToySpace(), 0.2, cost),
        w_lr=0.5,
        w_optimizer=optax.sgd(0.5),
        alpha_optimizer=optax.sgd(0.3),
        alpha_init_scale=1.0,
        epochs=2,
        steps_per_epoch=4,
    )

    def ce(p, a, b):
        logp = jax.nn.log_softmax(method.apply(p, b[0], jax.nn.softmax(a, -1)))
        return -jnp.mean(jnp.take_along_axis(logp, b[1][:, None], 1))

    state = method.init(jax.random.key(0))
    p, a = state.params, state.alpha
    for t in range(2):
        train = toy_batch(10 + t)
        state, metrics = jax.jit(method.step)(jax.random.key(t), state, train, toy_batch(20 + t))
        loss, (g_p, g_a) = jax.value_and_grad(ce, (0, 1))(p, a, train)
        g_a = g_a + 0.2 * jax.grad(lambda a: jnp.sum(jax.nn.softmax(a, -1) * cost))(a)
        p, a = jax.tree.map(lambda w, g: w - 0.5 * g, p, g_p), a - 0.3 * g_a
        np.testing.assert_allclose(state.alpha, a, rtol=1e-5, atol=1e-6)
        for got, want in zip(jax.tree.leaves(state.params), jax.tree.leaves(p), strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(metrics["w_loss"], loss, rtol=1e-5)
