"""MetaQNN as published: Q over layer states (depth, layer, representation-size bin) with
the paper's action rules, checked against a NumPy re-derivation of its replay updates."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats
from _side_by_side import assert_same_asks, told

from jnas import search
from jnas.spaces import NB201, Sequential

SPACE = Sequential()


def _rules(space, prev, size, fc_run, first, ended):
    """The next layers MetaQNN allows, re-derived in Python from the paper's rules."""
    ok = []
    for tok in space.tokens:
        kind = tok[0]
        if kind == "terminal":
            ok.append(not first)
        elif ended:
            ok.append(False)
        elif kind == "conv":
            ok.append(prev != "fc")
        elif kind == "pool":
            ok.append(not first and prev not in ("pool", "fc") and size >= tok[1])
        else:
            ok.append(not first and size <= space.fc_max_size and fc_run < space.max_fc)
    return np.array(ok)


def _walk(space, layers):
    """Per step: (previous token index or start, size bin, allowed next tokens)."""
    prev_kind, prev_tok, size, fc_run, first, ended = (
        "terminal",
        space.num_tokens,
        32,
        0,
        True,
        False,
    )
    out = []
    for t in layers:
        b = int(size <= 8) + int(size <= 4)
        out.append((prev_tok, b, _rules(space, prev_kind, size, fc_run, first, ended)))
        tok = space.tokens[t]
        if tok[0] == "terminal":
            ended = True
        else:
            if tok[0] == "conv":
                size = math.ceil(size / tok[3])
            elif tok[0] == "pool":
                size = (size - tok[1]) // tok[2] + 1
            fc_run = fc_run + 1 if tok[0] == "fc" else 0
            prev_kind, prev_tok = tok[0], t
        first = False
    return out


def _replay_numpy(space, q, layers, reward, lr, discount=1.0):
    walk = _walk(space, layers)
    length = layers.index(0) + 1 if 0 in layers else len(layers)
    for t in reversed(range(length)):
        prev, b, _ = walk[t]
        if t == length - 1:
            target = reward
        else:
            nprev, nb, nallowed = walk[t + 1]
            target = discount * np.max(np.where(nallowed, q[t + 1, nprev, nb], -np.inf))
        q[t, prev, b, layers[t]] += lr * (target - q[t, prev, b, layers[t]])
    return q


def test_replay_updates_equal_a_numpy_rederivation_with_size_in_the_state(key):
    searcher = search.metaqnn(SPACE, learning_rate=0.5, replay=3, memory=8)
    episodes = [
        "C(3,64,1)-P(2,2)-C(3,128,1)-P(2,2)-C(5,64,1)-FC(512)",  # sizes 32 16 8: bins 0 0 1
        "C(3,64,1)-P(5,3)-C(1,256,1)-P(3,2)-FC(256)-FC(128)",  # 32 10 4: bins 0 0 2
    ]
    rewards = [0.2, 0.9]
    state = searcher.init(key)
    tell = jax.jit(searcher.tell)
    q = None
    stored = []
    for text, r in zip(episodes, rewards, strict=True):
        arch = SPACE.from_string(text)
        layers = [int(t) for t in np.asarray(arch.tokens)]
        stored.append((layers, r))
        picks = np.asarray(
            jax.random.randint(jax.random.wrap_key_data(state.key), (3,), 0, len(stored))
        )
        if q is None:
            q = np.full(state.q.shape, r, np.float64)  # Q starts at the first mean reward
        for i in picks:
            q = _replay_numpy(SPACE, q, *stored[i], 0.5)
        state = tell(state, jax.tree.map(lambda a: a[None], arch), jnp.asarray([r]))
    np.testing.assert_allclose(state.q, q, rtol=1e-6, atol=1e-7)
    # the second episode's FC layer acts at size 4: its Q entries sit in bin 2
    layers = stored[1][0]
    walk = _walk(SPACE, layers)
    assert walk[4][1] == 2
    assert not np.allclose(state.q[4, :, 2], 0.9)


def test_replay_from_an_uneven_q_table_equals_the_numpy_rederivation(key):
    """As above from a random Q table and with a discount, over five tells: where Q starts
    level, an update that reads the wrong step's Q, or writes past the episode's end,
    moves nothing, so the off-by-ones of the step index and of the next state survived
    the test above."""
    searcher = search.metaqnn(SPACE, learning_rate=0.5, discount=0.9, replay=3, memory=8)
    texts = [
        "C(3,64,1)-P(2,2)-C(3,128,1)-P(2,2)-C(5,64,1)-FC(512)",
        "C(3,64,1)-P(5,3)-C(1,256,1)-P(3,2)-FC(256)-FC(128)",
    ]
    archs = [SPACE.from_string(t) for t in texts]
    tell = jax.jit(searcher.tell)
    state = tell(searcher.init(key), jax.tree.map(lambda a: a[None], archs[0]), jnp.asarray([0.2]))
    q = np.random.default_rng(3).uniform(size=state.q.shape)
    state = state._replace(q=jnp.asarray(q, jnp.float32))
    stored = [([int(t) for t in np.asarray(archs[0].tokens)], 0.2)]
    for i, r in zip([1, 0, 1, 1], [0.9, 0.4, 0.7, 0.3], strict=True):
        stored.append(([int(t) for t in np.asarray(archs[i].tokens)], r))
        picks = np.asarray(
            jax.random.randint(jax.random.wrap_key_data(state.key), (3,), 0, len(stored))
        )
        for j in picks:
            q = _replay_numpy(SPACE, q, *stored[j], 0.5, 0.9)
        state = tell(state, jax.tree.map(lambda a: a[None], archs[i]), jnp.asarray([r]))
    np.testing.assert_allclose(state.q, q, rtol=1e-5, atol=1e-6)


def test_episodes_obey_the_rules_and_the_agent_learns(key):
    """Every episode is a valid network; on an objective that rewards depth, the greedy
    agent ends with better networks than random exploration found first; the incumbent
    is the best told."""
    searcher = search.metaqnn(
        SPACE, batch_size=8, learning_rate=0.2, epsilon=lambda n: jnp.where(n < 80, 1.0, 0.1)
    )

    def fitness(archs):
        layers = jnp.sum(archs.tokens != 0, axis=1)
        convs = jnp.sum((archs.tokens >= 1) & (archs.tokens <= 12), axis=1)
        return (layers + convs).astype(jnp.float32)

    state = searcher.init(key)
    ask, tell = jax.jit(searcher.ask), jax.jit(searcher.tell)
    early, late = [], []
    for i, k in enumerate(jax.random.split(key, 30)):
        archs, state = ask(k, state)
        assert bool(jnp.all(jax.vmap(SPACE.is_valid)(archs)))
        f = fitness(archs)
        (early if i < 10 else late).append(np.asarray(f))
        state = tell(state, archs, f)
    assert np.mean(late[-5:]) > np.mean(early) + 2
    # the incumbent is the best network told (NumPy's max over every batch)
    assert float(state.best_fitness) == np.max(early + late)
    assert float(fitness(jax.tree.map(lambda a: a[None], state.best))[0]) == np.max(early + late)
    with pytest.raises(ValueError, match="needs a space offering LayerRules"):
        search.metaqnn(NB201())
    # the representation-size bins: decreasing sizes of at least 1 pixel
    for bad in ((4, 8), (8, 0), (8, -2)):
        with pytest.raises(ValueError, match="`size_bins`"):
            search.metaqnn(SPACE, size_bins=bad)
    search.metaqnn(SPACE, size_bins=(8, 1))


def test_state_is_a_stable_scan_carry(key):
    import chex

    searcher = search.metaqnn(SPACE, batch_size=2, replay=4, memory=8)
    chex.clear_trace_counter()
    ask = jax.jit(chex.assert_max_traces(searcher.ask, n=1))
    tell = jax.jit(chex.assert_max_traces(searcher.tell, n=1))
    state = searcher.init(key)
    for k in jax.random.split(key, 4):
        archs, asked = ask(k, state)
        chex.assert_trees_all_equal_shapes_and_dtypes(asked, state)
        new = tell(asked, archs, jnp.arange(2.0))
        chex.assert_trees_all_equal_shapes_and_dtypes(new, state)
        state = new


def test_exploration_is_uniform_over_the_allowed_first_layers(key):
    """ε = 1: the first layer is uniform over the layers the paper's rules allow first
    (`_rules`' re-derivation; chi-square over 4,000 episodes), never another."""
    searcher = search.metaqnn(SPACE, batch_size=4000, epsilon=1.0)
    archs, _ = jax.jit(searcher.ask)(key, searcher.init(key))
    first = np.asarray(archs.tokens)[:, 0]
    allowed = np.flatnonzero(_rules(SPACE, "terminal", 32, 0, True, False))
    assert np.isin(first, allowed).all()
    counts = np.bincount(first, minlength=SPACE.num_tokens)[allowed]
    assert scipy.stats.chisquare(counts).pvalue > 1e-3, counts


def test_defaults_are_the_settings_written_out(key):
    """`metaqnn(space)` is the paper's learning rate 0.01, discount 1 and representation-
    size bins (8, 4) (sizes above 8, 8 to 5, 4 and below), with 100 episodes replayed per
    tell from a memory of 1,000, one episode per ask and `metaqnn_epsilon()`: the Q table
    after 40 tells and the asks at 150 episodes told (ε = 0.8) equal those settings
    written out."""
    default = search.metaqnn(SPACE)
    written = search.metaqnn(
        SPACE,
        batch_size=1,
        learning_rate=0.01,
        discount=1.0,
        epsilon=search.metaqnn_epsilon(explore=100, per_step=20, floor=0.1),
        replay=100,
        memory=1000,
        size_bins=(8, 4),
    )
    states = [told(s, key, [0.01 * t for t in range(40)])[0] for s in (default, written)]
    assert states[0].memory.shape == (1000, SPACE.max_layers)
    assert states[0].q.shape[2] == 3  # three size bins
    np.testing.assert_array_equal(states[0].q, states[1].q)
    late = [s._replace(num_told=jnp.asarray(150, jnp.int32)) for s in states]
    assert_same_asks((default, written), late, jax.random.split(key, 64))
