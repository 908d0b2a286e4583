"""Q-learning (MetaQNN): the replayed update is the backward Bellman update; the greedy
policy learns a separable objective; the ε schedule; bad arguments."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _side_by_side import assert_same_asks, told

from jnas import search
from jnas.spaces import NB101, NB201, Chain


def _reference_replay(q, decisions, reward, lr, discount, valid):
    """MetaQNN's update of one episode, last transition first, in NumPy."""
    q = q.copy()
    steps, width = valid.shape
    prev = [width, *decisions[:-1]]
    for t in reversed(range(steps)):
        if t == steps - 1:
            target = reward
        else:
            target = discount * np.max(np.where(valid[t + 1], q[t + 1, decisions[t]], -np.inf))
        q[t, prev[t], decisions[t]] += lr * (target - q[t, prev[t], decisions[t]])
    return q


def test_one_tell_replays_the_stored_episode_backwards(key):
    space = Chain()  # decisions of different sizes: invalid choices must not count in max
    searcher = search.q_learning(
        space, learning_rate=0.5, discount=0.9, replay=1, memory=1, epsilon=1.0
    )
    state = searcher.init(key)
    archs, state = searcher.ask(key, state)
    state = searcher.tell(state, archs, jnp.array([2.0]))  # Q starts at 2.0 everywhere
    q0 = np.asarray(state.q)
    valid = np.arange(q0.shape[2])[None, :] < np.asarray(space.decision_sizes)[:, None]
    d0 = np.asarray(space.to_decisions(jax.tree.map(lambda a: a[0], archs)))
    expected = _reference_replay(np.full_like(q0, 2.0), d0, 2.0, 0.5, 0.9, valid)
    np.testing.assert_allclose(q0, expected, rtol=1e-6)
    archs, state = searcher.ask(jax.random.fold_in(key, 1), state)
    new = searcher.tell(state, archs, jnp.array([5.0]))
    d1 = np.asarray(space.to_decisions(jax.tree.map(lambda a: a[0], archs)))
    expected = _reference_replay(q0, d1, 5.0, 0.5, 0.9, valid)
    np.testing.assert_allclose(np.asarray(new.q), expected, rtol=1e-6)
    assert not np.allclose(expected, q0)


def test_greedy_policy_learns_an_objective_its_states_can_represent(key):
    """The state is (step, previous decision), as MetaQNN's is the current layer, so a
    reward of the last two decisions is exactly learnable by the backward updates."""
    space = NB201()
    searcher = search.q_learning(
        space,
        batch_size=2,
        learning_rate=0.2,
        epsilon=search.metaqnn_epsilon(explore=40, per_step=10),
        replay=20,
    )

    def reward_of(ops):
        return ((ops[:, 4] == 2) + 2 * (ops[:, 5] == 3)).astype(jnp.float32)

    def step(state, k):
        archs, state = searcher.ask(k, state)
        reward = reward_of(archs.ops)
        return searcher.tell(state, archs, reward), reward

    state, rewards = jax.lax.scan(step, searcher.init(key), jax.random.split(key, 100))
    greedy = search.q_learning(space, batch_size=16, epsilon=0.0)
    archs, _ = greedy.ask(key, state)
    np.testing.assert_array_equal(reward_of(archs.ops), 3.0)
    assert float(state.best_fitness) == 3.0
    assert float(jnp.mean(rewards[-10:])) > float(jnp.mean(rewards[:20])) + 1


def test_nan_rewards_are_not_stored(key):
    searcher = search.q_learning(NB201(), batch_size=2, memory=4)
    state = searcher.init(key)
    archs, state = searcher.ask(key, state)
    state = searcher.tell(state, archs, jnp.array([jnp.nan, jnp.nan]))
    assert int(state.stored) == 0
    np.testing.assert_array_equal(state.q, 0.0)
    archs, state = searcher.ask(key, state)
    state = searcher.tell(state, archs, jnp.array([jnp.nan, 3.0]))
    assert int(state.stored) == 1
    assert float(state.rewards[0]) == 3.0
    assert float(state.best_fitness) == 3.0


def test_metaqnn_epsilon_schedule():
    eps = search.metaqnn_epsilon(explore=10, per_step=5)
    values = [float(eps(jnp.int32(n))) for n in (0, 9, 10, 14, 15, 50, 500)]
    assert values == pytest.approx([1.0, 1.0, 0.9, 0.9, 0.8, 0.1, 0.1])


def test_q_learning_rejects_bad_arguments():
    with pytest.raises(ValueError, match="lacks"):
        search.q_learning(NB101())  # no categorical decisions
    with pytest.raises(ValueError, match="`learning_rate`"):
        search.q_learning(NB201(), learning_rate=0.0)
    with pytest.raises(ValueError, match="`epsilon`"):
        search.q_learning(NB201(), epsilon=1.5)
    with pytest.raises(ValueError, match="`replay`"):
        search.q_learning(NB201(), replay=0)


def test_q_starts_at_the_first_batchs_mean_finite_reward(key):
    """Q starts at the mean of the first batch's finite rewards (NumPy's `nanmean`): after
    one replayed episode every entry off its path holds that mean."""
    searcher = search.q_learning(NB201(), batch_size=3, replay=1, memory=4, epsilon=1.0)
    archs, state = searcher.ask(key, searcher.init(key))
    rewards = np.array([1.0, np.nan, 4.5], np.float32)
    q = np.asarray(searcher.tell(state, archs, jnp.asarray(rewards)).q)
    off_path = np.isclose(q, np.nanmean(rewards), rtol=0, atol=1e-6)
    assert (~off_path).sum() <= 6, q  # at most one entry per step was replayed


@pytest.mark.parametrize("epsilon", [1.0, 0.0])
def test_episodes_choose_only_valid_choices(key, epsilon):
    """Chain's decisions have 6 or 7 choices: neither uniform exploration nor the greedy
    choice (Q learnt from a tell, ties broken at random) may pick a choice a decision lacks."""
    space = Chain()
    searcher = search.q_learning(space, batch_size=64, replay=20, epsilon=epsilon)
    ask = jax.jit(searcher.ask)
    archs, state = ask(key, searcher.init(key))
    state = searcher.tell(state, archs, jax.random.normal(key, (64,)))
    archs, _ = ask(jax.random.fold_in(key, 1), state)
    decisions = np.asarray(jax.vmap(space.to_decisions)(archs))
    assert (decisions < np.asarray(space.decision_sizes)[None]).all()
    assert (decisions >= 0).all()


@pytest.mark.parametrize(("told", "held"), [(2, [0, 1]), (6, [4, 5, 2, 3])])
def test_replay_draws_uniformly_from_the_episodes_the_ring_holds(told, held):
    # The tabular Q-learners' replay (`replay_tell`, Q-learning's and MetaQNN's tell):
    # episodes are drawn uniformly from those the ring of `memory` (4) slots holds. A
    # replay that only counts which episode it was given (its first decision is its number)
    # shows the draws: 4,000 of them, chi-square against uniform over what the ring holds
    # (told 2: episodes 0 and 1; told 6: 4 and 5 overwrote 0 and 1), none of the rest.
    import scipy.stats

    from jnas.search._qlearning import QLearningState, replay_tell

    state = QLearningState(  # a Q "table" of one counter per episode number
        q=jnp.zeros(8),
        memory=jnp.zeros((4, 3), jnp.int32),
        rewards=jnp.zeros(4),
        stored=jnp.zeros((), jnp.int32),
        num_told=jnp.zeros((), jnp.int32),
        key=jax.random.key_data(jax.random.key(0)),
        best=jnp.zeros((), jnp.int32),
        best_fitness=jnp.full((), -jnp.inf),
    )
    count = lambda q, episode, reward: q.at[episode[0]].add(1.0)
    episodes = jnp.repeat(jnp.arange(told, dtype=jnp.int32)[:, None], 3, axis=1)
    first = told - 1  # all but the last told first, replaying 4,000 after the last alone
    state = replay_tell(state, jnp.arange(first), episodes[:first], jnp.zeros(first), count, 1, 4)
    before = np.asarray(state.q)
    state = replay_tell(state, jnp.arange(1), episodes[first:], jnp.zeros(1), count, 4000, 4)
    counts = np.asarray(state.q) - before
    assert counts.sum() == 4000
    assert set(np.flatnonzero(counts)) == set(held), counts
    assert scipy.stats.chisquare(counts[held]).pvalue > 1e-3, counts


def test_defaults_are_the_settings_written_out(key):
    """`q_learning(space)` tells as MetaQNN's learning rate 0.01 and discount 1 with 100
    episodes replayed per tell from a memory of 1,000 and `metaqnn_epsilon()`: the Q
    table after three tells and the asks at 150 episodes told (ε = 0.8) equal those
    settings written out. The default schedule is ε = 1 for 100 episodes, then 0.9, 0.8,
    ... for 20 episodes each, down to 0.1."""
    eps = search.metaqnn_epsilon()
    counts = (0, 99, 100, 119, 120, 139, 140, 259, 260, 280, 5000)
    assert [float(eps(jnp.int32(n))) for n in counts] == pytest.approx(
        [1.0, 1.0, 0.9, 0.9, 0.8, 0.8, 0.7, 0.2, 0.1, 0.1, 0.1]
    )
    space = NB201()
    default = search.q_learning(space)
    written = search.q_learning(
        space,
        batch_size=1,
        learning_rate=0.01,
        discount=1.0,
        epsilon=search.metaqnn_epsilon(explore=100, per_step=20, floor=0.1),
        replay=100,
        memory=1000,
    )
    states = [told(s, key, [0.5, 1.5, 2.5])[0] for s in (default, written)]
    assert states[0].memory.shape == (1000, 6)
    np.testing.assert_array_equal(states[0].q, states[1].q)
    late = [s._replace(num_told=jnp.asarray(150, jnp.int32)) for s in states]
    assert_same_asks((default, written), late, jax.random.split(key, 64))


def test_learning_rate_and_discount_take_their_closed_ends():
    """learning_rate in (0, 1], discount in [0, 1]: each closed end taken, past it refused."""
    search.q_learning(NB201(), learning_rate=1.0, discount=0.0)
    search.q_learning(NB201(), learning_rate=1e-6, discount=1.0)
    for name, bad in (("learning_rate", 1.01), ("discount", 1.01), ("discount", -0.01)):
        with pytest.raises(ValueError, match=f"`{name}` must be"):
            search.q_learning(NB201(), **{name: bad})
