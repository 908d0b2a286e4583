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


def test_schedule_is_li_et_als_table_1():
    # Li et al. (JMLR 2018), Table 1: R = 81, eta = 3, s_max = 4; the n_i of each bracket
    # (its r_i are 81 * 3^-s .. 81, the fidelities s_max - s .. s_max)
    table = {4: [81, 27, 9, 3, 1], 3: [34, 11, 3, 1], 2: [15, 5, 1], 1: [8, 2], 0: [5]}
    expected = {k: [] for k in ("fresh", "slot", "fidelity", "rung_size", "promote", "next_size")}
    for s, sizes in table.items():
        for i, n in enumerate(sizes):
            last = i == len(sizes) - 1
            for j in range(n):
                expected["fresh"].append(i == 0)
                expected["slot"].append(j)
                expected["fidelity"].append(4 - s + i)
                expected["rung_size"].append(n)
                expected["promote"].append(j == n - 1 and not last)  # the rung is complete
                expected["next_size"].append(0 if last else sizes[i + 1])
    got = search.hyperband_schedule(5, 3)
    assert sorted(got) == sorted(expected)
    for name, column in expected.items():
        assert got[name].tolist() == column, name


def test_successive_halving_over_two_cycles_matches_a_python_replay(key):
    # Li et al.'s successive halving written out in Python over the rungs above (three
    # fidelities, eta = 3): each rung after a bracket's first evaluates exactly the best
    # `size` of the rung below, ranked by the fitness told at that rung's fidelity (each
    # fidelity scores a cell by its own random weights, so the ranks differ between rungs);
    # the incumbent is the best told at the top fidelity. Two cycles cross the wrap-around.
    space = NB201()
    weights = np.asarray(jax.random.normal(jax.random.key(7), (3, 6, 5)))

    def score(ops, fid):  # the lower fidelities score higher: an incumbent from them shows
        return float(weights[fid][np.arange(6), ops].sum()) + 10.0 * (fid < 2)

    brackets = [(0, [9, 3, 1]), (1, [5, 1]), (2, [3])]
    searcher = search.hyperband(space, fidelities=3, eta=3)
    state = searcher.init(key)
    keys = iter(jax.random.split(key, 44))
    top_told = []
    for _ in range(2):
        for start, sizes in brackets:
            survivors = None
            for i, size in enumerate(sizes):
                asked = []
                for _ in range(size):
                    archs, state = searcher.ask(next(keys), state)
                    assert int(searcher.fidelity(state)[0]) == start + i
                    ops = np.asarray(archs.ops[0])
                    fit = score(ops, start + i)
                    asked.append((fit, tuple(ops.tolist())))
                    if start + i == 2:
                        top_told.append(fit)
                    state = searcher.tell(state, archs, jnp.asarray([fit]))
                if survivors is not None:
                    assert sorted(a for _, a in asked) == sorted(survivors)
                if i + 1 < len(sizes):
                    survivors = [a for _, a in sorted(asked, reverse=True)[: sizes[i + 1]]]
    assert len(top_told) == 2 * (1 + 1 + 3)
    assert float(state.best_fitness) == pytest.approx(max(top_told), rel=1e-6)


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
    # a lookup reads the fidelity asked for, the highest when none is given
    archs, rows = table.space.from_index(jnp.asarray([3, 77])), np.asarray([3, 77])
    col = lambda m, e: np.asarray(table.column("cifar10-valid", m, e))[rows]
    for fid, epochs in ((None, 200), (jnp.asarray([0, 0]), 12), (jnp.asarray([1, 1]), 200)):
        fit, cost = obj(archs) if fid is None else obj(archs, fid)
        np.testing.assert_array_equal(fit, col("valid_acc", epochs))
        np.testing.assert_array_equal(cost, col("train_time_s", epochs))
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
    assert search.hyperband(NB201(), eta=2).fidelities == 2  # the smallest eta halves
    with pytest.raises(ValueError, match="`eta` must be an integer"):
        search.hyperband(NB201(), eta=2.5)
    with pytest.raises(ValueError, match="`top_fraction`"):
        search.bohb(NB201(), top_fraction=1.5)
    # TPE's ranges: top_fraction and bandwidth in (0, 1), random_fraction in [0, 1],
    # bandwidth_factor >= 1; each end taken or refused as written
    search.bohb(NB201(), random_fraction=1.0, bandwidth_factor=1.0)
    search.bohb(NB201(), random_fraction=0.0, bandwidth_factor=1.5)
    for name, bad in (
        ("top_fraction", 1.0),
        ("top_fraction", 0.0),
        ("bandwidth", 1.0),
        ("bandwidth", 0.0),
        ("random_fraction", 1.01),
        ("random_fraction", -0.01),
        ("bandwidth_factor", 0.99),
    ):
        with pytest.raises(ValueError, match=f"`{name}` must be"):
            search.bohb(NB201(), **{name: bad})
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


@pytest.mark.parametrize(("told", "modelled"), [(6, False), (7, True)])
def test_bohb_models_a_fidelity_from_decisions_plus_one_observations(key, told, modelled):
    # Falkner et al. (2018): the model needs N_min = d + 1 points at a fidelity (NB201: d = 6
    # decisions, so 7). Told one cell `told` times: with 7, new cells are drawn around it
    # (each decision kept with probability 1 - 0.2 * 3: 2.4 of 6 match on average); with 6,
    # uniformly (6 / 5 match).
    space = NB201()
    searcher = search.bohb(space, random_fraction=0.0, memory=16)
    cell = np.asarray([0, 1, 2, 3, 4, 0], np.int32)
    state = searcher.init(key)._replace(
        decisions=jnp.asarray(np.tile(cell, (16, 1))),
        fitness=jnp.ones((16,), jnp.float32),
        fidelity_of=jnp.zeros((16,), jnp.int32),
        stored=jnp.asarray(told, jnp.int32),
    )
    proposals = jax.vmap(lambda k: searcher.ask(k, state)[0])(jax.random.split(key, 1000))
    matches = np.asarray(space.to_decisions(jax.tree.map(lambda a: a[:, 0], proposals))) == cell
    mean = matches.sum(axis=1).mean()  # the standard error of this mean is about 0.03
    assert (mean > 2.1) if modelled else (mean < 1.5), mean


@pytest.mark.parametrize(("top_told", "near"), [(7, "top"), (6, "low")])
def test_bohb_models_the_highest_fidelity_with_enough_told(key, top_told, near):
    # Falkner et al. (2018): the model is fitted at the highest fidelity with at least
    # N_min = d + 1 (here 7) observations. Seven cells `low` told at the lower fidelity,
    # then `top_told` cells `top` at the top one; the memory's slots past what was told
    # hold `top` at the top fidelity too, and must not count. New cells are drawn around
    # the modelled fidelity's cell (2.4 of 6 decisions match it on average; the other
    # cell, which differs in every decision, 0.6 * 1 / 4 each: 0.9).
    space = NB201()
    searcher = search.bohb(space, random_fraction=0.0, memory=16)
    cells = {"low": np.zeros(6, np.int32), "top": np.ones(6, np.int32)}
    decisions = np.tile(cells["top"], (16, 1))
    decisions[:7] = cells["low"]
    fidelity_of = np.ones(16, np.int32)
    fidelity_of[:7] = 0
    state = searcher.init(key)._replace(
        decisions=jnp.asarray(decisions),
        fitness=jnp.ones((16,), jnp.float32),
        fidelity_of=jnp.asarray(fidelity_of),
        stored=jnp.asarray(7 + top_told, jnp.int32),
    )
    proposals = jax.vmap(lambda k: searcher.ask(k, state)[0])(jax.random.split(key, 1000))
    got = np.asarray(space.to_decisions(jax.tree.map(lambda a: a[:, 0], proposals)))
    for name, cell in cells.items():
        mean = (got == cell).sum(axis=1).mean()  # standard error about 0.03
        assert (mean > 2.1) if name == near else (mean < 1.2), (name, mean)


def _asked(searcher, key, steps):
    """The cells and fidelities `searcher` asks over `steps` rounds on `_conv3x3`."""
    state, ask, tell = searcher.init(key), jax.jit(searcher.ask), jax.jit(searcher.tell)
    cells, fidelities = [], []
    for k in jax.random.split(key, steps):
        archs, state = ask(k, state)
        cells.append(np.asarray(archs.ops[0]).tolist())
        fidelities.append(int(searcher.fidelity(state)[0]))
        state = tell(state, archs, _conv3x3(archs))
    return cells, fidelities, state


def test_defaults_are_the_papers_settings(key):
    """Hyperband's and BOHB's default eta is 3 over two fidelities (Li et al.'s eta; 3 cells
    at the low fidelity, the best promoted, 2 at the high); BOHB's defaults are Falkner et
    al.'s (top 15 %, a third of the draws random, 64 candidates, bandwidth factor 3) with
    jnas' bandwidth 0.2 and a memory of 512: `bohb(space)` asks what those settings
    written out ask, past the point where its model takes over (7 told at a fidelity)."""
    space = NB201()
    hb = search.hyperband(space)
    assert hb.fidelities == 2
    assert _asked(hb, key, 12)[1] == [0, 0, 0, 1, 1, 1] * 2
    default = search.bohb(space)
    written = search.bohb(
        space,
        fidelities=2,
        eta=3,
        top_fraction=0.15,
        random_fraction=1 / 3,
        num_samples=64,
        bandwidth=0.2,
        bandwidth_factor=3.0,
        min_points=7,
        memory=512,
    )
    cells, fidelities, state = _asked(default, key, 36)
    assert (cells, fidelities) == _asked(written, key, 36)[:2]
    assert fidelities == [0, 0, 0, 1, 1, 1] * 6
    assert state.decisions.shape == (512, 6)
    # 200 told at the top fidelity, so that the top 15 % (30 good) is past the 7 minimum
    # and the 64 candidates around them differ: the first draws of 256 keys agree
    k_cells, k_fit, k_ask = jax.random.split(key, 3)
    told = state._replace(
        decisions=jax.random.randint(k_cells, (512, 6), 0, 5),
        fitness=jax.random.normal(k_fit, (512,)),
        fidelity_of=jnp.ones((512,), jnp.int32),
        stored=jnp.asarray(200, jnp.int32),
        step=jnp.zeros((), jnp.int32),
    )
    keys = jax.random.split(k_ask, 256)
    first = [jax.vmap(lambda k, s=s: s.ask(k, told)[0].ops[0])(keys) for s in (default, written)]
    np.testing.assert_array_equal(*first)
