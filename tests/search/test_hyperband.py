"""Hyperband and BOHB: the schedule, successive halving, the incumbent at the top fidelity,
the multi-fidelity protocol on the NB201 table, and BOHB's model."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jnas import bench, search
from jnas.spaces import NB101, NB201


def _conv3x3(archs):
    return jnp.sum(archs.ops == 3, axis=1).astype(jnp.float32)


def test_schedule_is_hyperbands_brackets():
    two = search.hyperband_schedule(2, 3)  # 3 cells at 12 epochs -> best 1 at 200; 2 at 200
    assert two["fidelity"].tolist() == [0, 0, 0, 1, 1, 1]
    assert two["fresh"].tolist() == [True, True, True, False, True, True]
    three = search.hyperband_schedule(3, 3)  # Li et al.'s table for eta = 3, s_max = 2
    rungs = [
        (int(f), int(n))
        for f, n, first in zip(
            three["fidelity"], three["rung_size"], three["slot"] == 0, strict=True
        )
        if first
    ]
    assert rungs == [(0, 9), (1, 3), (2, 1), (1, 5), (2, 1), (2, 3)]


def test_successive_halving_promotes_the_best_and_only_the_top_fidelity_counts(key):
    space = NB201()
    searcher = search.hyperband(space, fidelities=2, eta=3)
    state = searcher.init(key)
    told, fidelities = [], []
    for i, k in enumerate(jax.random.split(key, 4)):
        archs, state = searcher.ask(k, state)
        fidelities.append(int(searcher.fidelity(state)[0]))
        fit = jnp.asarray([[1.0, 7.0, 3.0, 100.0][i]])
        if i < 3:
            told.append(np.asarray(archs.ops[0]))
            state = searcher.tell(state, archs, fit)
            assert float(state.best_fitness) == -np.inf  # 12-epoch results never count
    assert fidelities == [0, 0, 0, 1]
    np.testing.assert_array_equal(archs.ops[0], told[1])  # the best of the rung, re-run
    state = searcher.tell(state, archs, jnp.asarray([100.0]))
    assert float(state.best_fitness) == 100.0


def test_multi_fidelity_protocol_charges_each_query_at_its_fidelity(nb201_table, key):
    table = nb201_table
    obj = bench.objective(table, dataset="cifar10-valid", metric="valid_acc", epochs=(12, 200))
    assert obj.fitness.shape == (2, 15625)
    searcher = search.hyperband(table.space)
    run = bench.simulate_one(searcher, table.space, 30_000.0, 40)
    time_s, best_f, best_row, n = run(key, obj.fitness, obj.cost_s)
    # the same run by hand
    init_key, loop_key = jax.random.split(key)
    state, t, best = searcher.init(init_key), 0.0, -np.inf
    for step in range(int(n)):
        archs, state = searcher.ask(jax.random.fold_in(loop_key, step), state)
        fid = searcher.fidelity(state)
        fit, cost = obj(archs, fid)
        state = searcher.tell(state, archs, fit)
        t += float(cost[0])
        if int(fid[0]) == 1:
            best = max(best, float(fit[0]))
        assert float(time_s[step]) == pytest.approx(t, rel=1e-5)
        assert float(best_f[step]) == best
    assert t >= 30_000.0
    top = np.asarray(table.column("cifar10-valid", "valid_acc", 200))
    assert top[int(best_row[-1])] == pytest.approx(float(best_f[-1]))
    single = bench.objective(table, dataset="cifar10-valid", metric="valid_acc", epochs=12)
    with pytest.raises(ValueError, match="2 fidelities"):
        bench.simulate(searcher, single, key=key, num_seeds=1, budget_s=100.0)
    with pytest.raises(ValueError, match="increasing"):
        bench.objective(table, dataset="cifar10-valid", metric="valid_acc", epochs=(200, 12))


def test_bohb_model_proposes_around_the_good_cells(key):
    space = NB201()
    searcher = search.bohb(space, random_fraction=0.0, memory=64)
    state = searcher.init(key)
    for k in jax.random.split(key, 48):
        archs, state = searcher.ask(k, state)
        state = searcher.tell(state, archs, _conv3x3(archs))
    fresh = state._replace(step=jnp.zeros((), jnp.int32))  # a bracket starts: a new draw
    proposals = jax.vmap(lambda k: searcher.ask(k, fresh)[0])(jax.random.split(key, 64))
    counts = np.asarray(_conv3x3(jax.tree.map(lambda a: a[:, 0], proposals)))
    assert counts.mean() > 2.2  # uniform draws average 6 / 5 (std of this mean ~0.12)
    plain = search.hyperband(space)
    uniform = jax.vmap(lambda k: plain.ask(k, plain.init(k))[0])(jax.random.split(key, 64))
    assert np.asarray(_conv3x3(jax.tree.map(lambda a: a[:, 0], uniform))).mean() < 2.0


def test_multi_fidelity_searchers_reject_bad_arguments():
    with pytest.raises(ValueError, match="`fidelities` must be >= 2"):
        search.hyperband(NB201(), fidelities=1)
    with pytest.raises(ValueError, match="`eta`"):
        search.bohb(NB201(), eta=1)
    with pytest.raises(ValueError, match="`top_fraction`"):
        search.bohb(NB201(), top_fraction=1.5)
    with pytest.raises(ValueError, match="lacks"):
        search.hyperband(NB101())  # no categorical decisions
    with pytest.raises(ValueError, match="multi-fidelity"):  # one-architecture objectives
        search.run(
            search.hyperband(NB201()),
            lambda arch: 0.0,
            jax.random.key(0),
            num_evaluations=2,
            space=NB201(),
        )
