"""The one-shot registry says true things about every method, and the composed step's
parts do what they name (penalty gradient, single vs bi-level), checked against an
analytic derivation."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

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
