"""The zero-cost warm start: the first asks are the proxy's best picks, the inner searcher
is seeded with them and runs unchanged afterwards; the proxy's time is on the clock."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jnas import bench, search
from jnas.spaces import NB201

SPACE = NB201()


def convs(archs):
    """A stand-in proxy: the number of 3x3 convolutions in the cell."""
    return jnp.sum(archs.ops == 3, axis=-1).astype(jnp.float32)


def test_first_asks_are_the_proxys_best_and_seed_the_population():
    rea = search.regularized_evolution(SPACE, population_size=10)
    warm = search.zero_cost_warmup(rea, SPACE, convs, candidates=2000, warm=10)
    state = warm.init(jax.random.key(0))
    asked = []
    for t in range(10):
        archs, state = warm.ask(jax.random.key(t), state)
        state = warm.tell(state, archs, convs(archs))
        asked.append(int(convs(archs)[0]))
    # of 2,000 random cells about 34 have 4+ of 6 edges 3x3: the best ten all do
    assert min(asked) >= 4
    assert asked == sorted(asked, reverse=True)
    np.testing.assert_array_equal(
        np.sort(np.asarray(convs(state.inner.population))), np.sort(asked)
    )
    # plain REA's first ten are random: about 1.2 such edges a cell
    plain = rea.init(jax.random.key(0))
    assert float(jnp.mean(convs(plain.population))) < 2.5
    # afterwards every ask is the inner searcher's own
    for t in range(10, 14):
        got, state = warm.ask(jax.random.key(t), state)
        want, _ = rea.ask(jax.random.key(t), state.inner)
        np.testing.assert_array_equal(got.ops, want.ops)
        state = warm.tell(state, got, convs(got))
    with pytest.raises(ValueError, match="warm"):
        search.zero_cost_warmup(rea, SPACE, convs, candidates=5, warm=10)


def test_setup_time_is_charged_to_every_seed(nb201_table):
    obj = bench.objective(nb201_table, dataset="cifar10-valid", metric="valid_acc", epochs=12)
    rs = search.random_search(NB201())
    key = jax.random.key(0)
    plain = bench.simulate(rs, obj, key=key, num_seeds=4, budget_s=3000)
    late = bench.simulate(rs, obj, key=key, num_seeds=4, budget_s=3000, setup_s=500.0)
    np.testing.assert_allclose(late.time_s[:, 0], plain.time_s[:, 0] + 500.0, rtol=1e-6)
    assert np.all(late.num_evals <= plain.num_evals)
    with pytest.raises(ValueError, match="setup_s"):
        bench.simulate(rs, obj, key=key, num_seeds=1, budget_s=100, setup_s=200.0)


def test_warm_start_hands_out_its_architectures_in_order_across_batches():
    """Five given cells before a searcher asking two at a time: asks [0, 1], [2, 3], then
    [4, the searcher's own second draw], then only its own draws (each compared with the
    inner searcher's ask under the same key)."""
    given = jax.vmap(SPACE.sample)(jax.random.split(jax.random.key(9), 5))
    rs = search.random_search(SPACE, batch_size=2)
    warm = search.warm_start(rs, SPACE, given)
    state = warm.init(jax.random.key(0))
    ops = np.asarray(given.ops)
    expected_given = [ops[0:2], ops[2:4], ops[4:5]]
    for t in range(5):
        got, new = warm.ask(jax.random.key(t), state)
        own, _ = rs.ask(jax.random.key(t), state.inner)
        own = np.asarray(own.ops)
        want = np.concatenate([expected_given[t], own[len(expected_given[t]) :]]) if t < 3 else own
        np.testing.assert_array_equal(np.asarray(got.ops), want)
        state = warm.tell(new, got, convs(got))


def test_nan_proxy_scores_rank_last():
    """Cells whose proxy score is NaN are never among the warm picks, however good the
    score they hide (here: every cell with 4+ of 6 edges 3x3, the proxy's best)."""
    nan_above_3 = lambda archs: jnp.where(convs(archs) >= 4, jnp.nan, convs(archs))
    rs = search.random_search(SPACE)
    warm = search.zero_cost_warmup(rs, SPACE, nan_above_3, candidates=2000, warm=10)
    picks = warm.init(jax.random.key(0)).warm
    np.testing.assert_array_equal(np.asarray(convs(picks)), 3.0)  # the best finite score
