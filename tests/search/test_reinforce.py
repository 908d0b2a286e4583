"""REINFORCE: the policy learns a separable objective; gradients match the formula."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _side_by_side import told

from jnas import search
from jnas.spaces import DARTS, NB101, NB201, Chain


def test_policy_concentrates_on_the_rewarded_op(key):
    searcher = search.reinforce(NB201(), batch_size=8, learning_rate=0.1)

    def step(state, k):
        archs, state = searcher.ask(k, state)
        reward = jnp.sum(archs.ops == 3, axis=1).astype(jnp.float32)  # conv3x3 everywhere
        return searcher.tell(state, archs, reward), None

    state, _ = jax.lax.scan(step, searcher.init(key), jax.random.split(key, 150))
    probs = jax.nn.softmax(state.policy, axis=-1)
    assert float(jnp.min(probs[:, 3])) > 0.9
    assert float(state.best_fitness) == 6.0


def test_lstm_controller_learns_the_rewarded_op_and_its_log_probs_match(key):
    space = NB201()
    searcher = search.reinforce(
        space, batch_size=8, learning_rate=0.02, controller="lstm", hidden=32
    )

    def step(state, k):
        archs, state = searcher.ask(k, state)
        reward = jnp.sum(archs.ops == 3, axis=1).astype(jnp.float32)
        return searcher.tell(state, archs, reward), reward

    state, rewards = jax.lax.scan(step, searcher.init(key), jax.random.split(key, 200))
    assert float(jnp.mean(rewards[:10])) < 2.5  # about 6 / 5 at the start
    assert float(jnp.mean(rewards[-10:])) > 5.0
    assert float(state.best_fitness) == 6.0
    # the asked architectures are the controller's samples: their log-probs are finite and
    # the greedy decisions are conv3x3 now
    lstm = search.lstm_controller(space.decision_sizes, hidden=32)
    archs, _ = searcher.ask(key, state)
    logp, _ = jax.vmap(lstm.log_prob, in_axes=(None, 0))(
        state.policy, jax.vmap(space.to_decisions)(archs).astype(jnp.int32)
    )
    assert bool(jnp.all(jnp.isfinite(logp)))
    assert float(jnp.mean(jnp.exp(logp))) > 0.3


def test_lstm_controller_stays_finite_when_decisions_differ_in_size(key):
    """DARTS decisions have 1-10 choices: the missing choices' -inf logits once made the
    entropy's gradient NaN, and after one update every ask was the same architecture."""
    space = DARTS()
    assert len(set(space.decision_sizes)) > 1
    searcher = search.reinforce(space, batch_size=8, controller="lstm", hidden=16)
    state = searcher.init(key)
    for i in range(3):
        archs, state = searcher.ask(jax.random.fold_in(key, i), state)
        reward = jax.random.uniform(jax.random.fold_in(key, 100 + i), (8,))
        state = searcher.tell(state, archs, reward)
    assert all(bool(jnp.all(jnp.isfinite(leaf))) for leaf in jax.tree.leaves(state.policy))
    archs, _ = searcher.ask(jax.random.fold_in(key, 9), state)
    decisions = np.asarray(jax.vmap(space.to_decisions)(archs))
    assert len({tuple(d) for d in decisions}) > 4


def test_one_update_is_the_policy_gradient(key):
    """With SGD(1) the logit change equals mean(advantage * (onehot - softmax))."""
    import optax

    searcher = search.reinforce(NB201(), batch_size=2, optimizer=optax.sgd(1.0))
    state = searcher.init(key)
    archs, state = searcher.ask(key, state)
    state = searcher.tell(state, archs, jnp.array([1.0, 1.0]))  # sets the baseline to 1
    archs, _ = searcher.ask(jax.random.fold_in(key, 1), state)
    new = searcher.tell(state, archs, jnp.array([3.0, 0.0]))
    adv = np.array([2.0, -1.0])
    onehot = np.asarray(jax.nn.one_hot(archs.ops, 5))
    expected = np.mean(adv[:, None, None] * (onehot - 0.2), axis=0)  # uniform policy
    np.testing.assert_allclose(new.policy - state.policy, expected, atol=1e-6)
    assert float(new.baseline) == pytest.approx(0.9 * 1.0 + 0.1 * 1.5)


def test_chain_blocks_that_cannot_skip_never_sample_skip(key):
    space = Chain()
    for controller in ("logits", "lstm"):
        searcher = search.reinforce(space, batch_size=64, controller=controller)
        archs, _ = searcher.ask(key, searcher.init(key))
        assert bool(jnp.all(jax.vmap(space.is_valid)(archs)))


def test_reinforce_needs_categorical_decisions():
    with pytest.raises(ValueError, match="lacks"):
        search.reinforce(NB101())  # no categorical decisions
    with pytest.raises(ValueError, match="`learning_rate`"):
        search.reinforce(NB201(), learning_rate=0.0)
    with pytest.raises(ValueError, match="`controller`"):
        search.reinforce(NB201(), controller="gru")


def test_the_entropy_bonus_steps_along_the_entropys_gradient(key):
    """With no advantage (every reward at the baseline) and SGD(1), one update moves the
    logits by entropy_weight * dH/dz, H the policy's entropy summed over decisions;
    dH/dz = -p (log p + H) per decision, worked out by hand (NumPy)."""
    import optax

    weight = 0.3
    searcher = search.reinforce(
        NB201(), batch_size=2, optimizer=optax.sgd(1.0), entropy_weight=weight
    )
    state = searcher.init(key)
    archs, state = searcher.ask(key, state)
    state = searcher.tell(state, archs, jnp.array([1.0, 1.0]))  # baseline 1
    archs, _ = searcher.ask(jax.random.fold_in(key, 1), state)
    state = searcher.tell(state, archs, jnp.array([3.0, 0.0]))  # a policy off uniform
    z = np.asarray(state.policy, np.float64)
    assert np.ptp(z) > 0.1
    b = float(state.baseline)
    archs, _ = searcher.ask(jax.random.fold_in(key, 2), state)
    new = searcher.tell(state, archs, jnp.array([b, b]))
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    h = -np.sum(p * np.log(p), 1, keepdims=True)
    np.testing.assert_allclose(
        new.policy - state.policy, weight * -p * (np.log(p) + h), rtol=1e-4, atol=1e-6
    )


def test_uneven_decisions_nan_rewards_and_the_baseline_against_numpy(key):
    """Chain's decisions have 6 or 7 values: the softmax runs over a decision's own values
    only (uniform draws among them, chi-square; the gradient's softmax 1/6 or 1/7, zero on
    the missing value); a NaN reward takes no part (advantage 0, not in the batch's mean)
    and the baseline is the EMA of the finite rewards' means (NumPy, from 2.0, not 1)."""
    import optax
    import scipy.stats

    space = Chain()
    sizes = np.asarray(space.decision_sizes)
    searcher = search.reinforce(space, batch_size=3, optimizer=optax.sgd(1.0))
    state = searcher.init(key)
    many = search.reinforce(space, batch_size=6000)
    drawn = np.asarray(jax.vmap(space.to_decisions)(many.ask(key, many.init(key))[0]))
    for d, size in enumerate(sizes[:2]):
        counts = np.bincount(drawn[:, d], minlength=7)
        assert counts[size:].sum() == 0
        assert scipy.stats.chisquare(counts[:size]).pvalue > 1e-3, counts
    archs, state = searcher.ask(key, state)
    state = searcher.tell(state, archs, jnp.array([1.0, np.nan, 3.0]))
    assert float(state.baseline) == pytest.approx(2.0)  # the finite mean
    archs, _ = searcher.ask(jax.random.fold_in(key, 1), state)
    new = searcher.tell(state, archs, jnp.array([5.0, np.nan, np.nan]))  # one finite
    assert float(new.baseline) == pytest.approx(0.9 * 2.0 + 0.1 * 5.0)
    decisions = np.asarray(jax.vmap(space.to_decisions)(archs))
    valid = np.arange(7)[None, :] < sizes[:, None]
    policy = np.asarray(state.policy, np.float64)
    soft = np.where(valid, np.exp(policy), 0.0)
    soft /= soft.sum(axis=1, keepdims=True)
    adv = np.array([5.0 - 2.0, 0.0, 0.0])
    onehot = np.eye(7)[decisions]
    expected = (adv[:, None, None] * (onehot - soft[None])).sum(axis=0) / 3
    np.testing.assert_allclose(new.policy - state.policy, expected, atol=1e-5)


@pytest.mark.parametrize("controller", ["logits", "lstm"])
def test_defaults_are_the_settings_written_out(key, controller):
    """`reinforce(space)` is one architecture per ask, Adam at 0.01, baseline decay 0.9, no
    entropy bonus and (LSTM) 64 units: its policy and baseline after three tells equal
    those settings written out (Adam's 0.02 or a 65-unit LSTM would not)."""
    space = NB201()
    default = search.reinforce(space, controller=controller)
    written = search.reinforce(
        space,
        batch_size=1,
        learning_rate=0.01,
        baseline_decay=0.9,
        controller=controller,
        hidden=64,
        entropy_weight=0.0,
    )
    states = []
    for searcher in (default, written):
        state, asked = told(searcher, key, [1.0, 2.0, 3.0])
        assert all(archs.ops.shape == (1, 6) for archs in asked)
        states.append(state)
    for a, b in zip(
        jax.tree.leaves(states[0].policy), jax.tree.leaves(states[1].policy), strict=True
    ):
        np.testing.assert_array_equal(a, b)
    assert float(states[0].baseline) == float(states[1].baseline)


def test_baseline_decay_is_in_zero_to_one_open_at_one():
    search.reinforce(NB201(), baseline_decay=0.0)
    search.reinforce(NB201(), baseline_decay=0.99)
    for bad in (1.0, 1.5, -0.1):
        with pytest.raises(ValueError, match=r"`baseline_decay` must be in \[0, 1\)"):
            search.reinforce(NB201(), baseline_decay=bad)
