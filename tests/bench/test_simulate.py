"""The protocol: simulated clock, budgets, seeds in one program."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jnas import bench, search
from jnas.spaces import NB201


@pytest.fixture
def obj(nb201_table):
    return bench.objective(nb201_table, dataset="cifar10-valid", metric="valid_acc", epochs=12)


@pytest.mark.parametrize("make", [search.random_search, search.regularized_evolution])
def test_vmapped_seeds_equal_separate_runs(obj, key, make):
    searcher = make(NB201())
    sim = bench.simulate(searcher, obj, key=key, num_seeds=8, budget_s=3000, chunk=8)
    again = bench.simulate(searcher, obj, key=key, num_seeds=8, budget_s=3000, chunk=3)
    np.testing.assert_array_equal(sim.best_row, again.best_row)
    one = bench.simulate_one(searcher, NB201(), 3000, sim.time_s.shape[1])
    for i in range(8):
        ts, fs, rs, n = one(jax.random.fold_in(key, i), obj.fitness, obj.cost_s)
        np.testing.assert_array_equal(rs, sim.best_row[i])
        np.testing.assert_array_equal(fs, sim.best_fitness[i])
        np.testing.assert_allclose(ts, sim.time_s[i], rtol=1e-6)
        assert int(n) == sim.num_evals[i]


def test_clock_and_budget(obj, key, nb201_table):
    sim = bench.simulate(search.random_search(NB201()), obj, key=key, num_seeds=16, budget_s=12000)
    final = sim.time_s[:, -1]
    assert np.all(final >= 12000)  # the scan was long enough to spend the budget
    # the evaluation that crosses the budget is the last one charged
    before_last = np.array([t[np.flatnonzero(t < 12000)[-1]] for t in sim.time_s])
    assert np.all(before_last < 12000)
    # every charge is a 12-epoch training time of the evaluated cell
    cost = np.asarray(nb201_table.column("cifar10-valid", "train_time_s", 12))
    assert cost.min() * sim.num_evals.min() <= 12000 + cost.max()
    # the incumbent's validation accuracy is the best seen, non-decreasing
    assert np.all(np.diff(sim.best_fitness, axis=1) >= 0)
    val = np.asarray(nb201_table.column("cifar10-valid", "valid_acc", 12))
    np.testing.assert_allclose(val[sim.final_rows()], sim.best_fitness[:, -1], rtol=1e-6)


def test_nan_fitness_never_becomes_the_incumbent(nb201_table, key):
    obj = bench.objective(nb201_table, dataset="cifar10-valid", metric="valid_acc", epochs=12)
    poisoned = obj.fitness.at[::2].set(jnp.nan)  # half the table fails
    obj = bench.Objective(poisoned, obj.cost_s, obj.space, "poisoned")
    sim = bench.simulate(
        search.regularized_evolution(NB201()), obj, key=key, num_seeds=8, budget_s=5000
    )
    assert np.all(sim.final_rows() % 2 == 1)
    assert np.all(np.isfinite(sim.best_fitness[:, -1]))


def test_compiler_options_reach_xla_and_keep_the_results(obj, key):
    """The Table 5 script compiles cheap searchers at -O0: same numbers, and the options
    are XLA's (an unknown one is refused, so they are not dropped on the way)."""
    rea = search.regularized_evolution(NB201())

    def run(options):
        return bench.simulate(
            rea, obj, key=key, num_seeds=4, budget_s=3000, compiler_options=options
        )

    base, fast = run(None), run({"xla_backend_optimization_level": 0})
    np.testing.assert_array_equal(fast.best_row, base.best_row)
    np.testing.assert_array_equal(fast.time_s, base.time_s)
    with pytest.raises(Exception, match="xla_no_such_option"):
        run({"xla_no_such_option": 1})


def test_regularized_evolution_beats_random_search(nb201_table, obj, key):
    """NB201 Table 5 protocol (12-epoch signal, 12,000 s): REA's incumbent tests better."""
    results = {}
    for name, s in (
        ("rs", search.random_search(NB201())),
        ("rea", search.regularized_evolution(NB201())),
    ):
        sim = bench.simulate(s, obj, key=key, num_seeds=300, budget_s=12000)
        results[name] = sim.report(nb201_table, dataset="cifar10", metric="test_acc", epochs=200)[
            :, -1
        ]
    assert results["rea"].mean() > results["rs"].mean() + 0.05
    assert 93.4 < results["rs"].mean() < 94.1  # NB201 paper: RS 93.70 +- 0.36


def test_on_grid_resamples_curves(obj, key):
    sim = bench.simulate(search.random_search(NB201()), obj, key=key, num_seeds=4, budget_s=2000)
    grid = np.array([0.0, 1000.0, 1e9])
    out = sim.on_grid(sim.best_fitness, grid)
    assert np.all(np.isnan(out[:, 0]))
    np.testing.assert_array_equal(out[:, 2], sim.best_fitness[:, -1])
    # a Python loop: the last value whose time is <= the grid point, at every evaluation's
    # own end time (<=, not <) and halfway between the first two
    t = sim.time_s
    grid = np.concatenate([t[0, :5], [(t[0, 0] + t[0, 1]) / 2]])
    out = sim.on_grid(sim.best_fitness, grid)
    for s in range(t.shape[0]):
        for g, got in zip(grid, out[s], strict=True):
            done = [j for j in range(t.shape[1]) if t[s, j] <= g]
            want = sim.best_fitness[s, done[-1]] if done else np.nan
            np.testing.assert_equal(got, want)


def test_progress_is_reported_after_each_chunk_of_seeds(obj, key):
    calls = []
    rs = search.random_search(NB201())
    bench.simulate(rs, obj, key=key, num_seeds=8, budget_s=500, chunk=3, progress=lambda *a: calls.append(a))  # fmt: skip
    assert calls == [(3, 8), (6, 8), (8, 8)]


def test_report_reads_the_incumbents_row_and_nan_before_any(nb201_table):
    """Row 0 is a cell like any other (only -1 means no incumbent yet)."""
    sim = bench.Simulation(
        np.array([[1.0, 2.0, 3.0]]), np.zeros((1, 3)), np.array([[-1, 0, 77]]), np.array([3]), 3.0
    )
    got = sim.report(nb201_table, dataset="cifar10", metric="test_acc", epochs=200)
    col = np.asarray(nb201_table.column("cifar10", "test_acc", 200))
    np.testing.assert_array_equal(got, [[np.nan, col[0], col[77]]])
    np.testing.assert_array_equal(sim.final_rows(), [77])  # the incumbent at the budget


def test_simulate_rejects_bad_arguments(obj, key):
    with pytest.raises(ValueError, match="`num_seeds`"):
        bench.simulate(search.random_search(NB201()), obj, key=key, num_seeds=0, budget_s=1)
    with pytest.raises(ValueError, match="`budget_s`"):
        bench.simulate(search.random_search(NB201()), obj, key=key, num_seeds=1, budget_s=0)
    rs = search.random_search(NB201())
    for setup in (-1.0, 100.0):  # setup_s in [0, budget_s)
        with pytest.raises(ValueError, match=r"`setup_s` must be in \[0, budget_s\)"):
            bench.simulate(rs, obj, key=key, num_seeds=1, budget_s=100.0, setup_s=setup)
    free = dataclasses.replace(obj, cost_s=obj.cost_s.at[5].set(0.0))  # a cost of 0 s
    with pytest.raises(ValueError, match=r"non-positive cost \(0.0\)"):
        bench.max_steps_for(free, 100.0, 1)
    assert bench.max_steps_for(obj, 100.0, 2) == int(np.ceil(100.0 / (2 * float(np.nanmin(obj.cost_s))))) + 1  # fmt: skip


def test_a_single_fidelity_searcher_runs_on_a_multi_fidelity_objective_at_its_top(nb201_table, key):
    """No fidelity asked: each query is looked up and charged at the highest fidelity."""
    two = bench.objective(nb201_table, dataset="cifar10-valid", metric="valid_acc", epochs=(12, 200))  # fmt: skip
    top = bench.objective(nb201_table, dataset="cifar10-valid", metric="valid_acc", epochs=200)
    assert (two.fidelities, top.fidelities) == (2, 1)
    rs = search.random_search(NB201())
    a = bench.simulate(rs, two, key=key, num_seeds=2, budget_s=20_000.0, max_steps=40)
    b = bench.simulate(rs, top, key=key, num_seeds=2, budget_s=20_000.0, max_steps=40)
    assert np.all(a.num_evals > 3)
    np.testing.assert_array_equal(a.best_row, b.best_row)
    np.testing.assert_array_equal(a.time_s, b.time_s)


@pytest.mark.parametrize(
    "make",
    [
        search.random_search,
        search.regularized_evolution,
        search.tournament_evolution,
        search.local_search,
        search.reinforce,
    ],
)
def test_nats_size_protocol_with_an_evaluation_budget(nasbench_dir, key, make):
    """The compact NATS size table has no training times: charge one unit per query."""
    from jnas.spaces import NATSSize

    table = bench.load_nats_sss(nasbench_dir)
    obj = bench.objective(
        table, dataset="cifar10-valid", metric="valid_acc", epochs=90, cost="evaluations"
    )
    sim = bench.simulate(make(NATSSize()), obj, key=key, num_seeds=16, budget_s=50)
    np.testing.assert_array_equal(sim.num_evals, 50)
    best = sim.best_fitness[:, -1]
    assert np.all(best > 85)  # 50 samples of a space whose median is ~88
    assert np.all(best <= 90.72)  # the table's maximum


def test_welch_test_matches_the_formula():
    import math

    from scipy import stats

    rng = np.random.default_rng(0)
    a, b = rng.normal(1.0, 1.0, 40), rng.normal(0.5, 2.0, 25)
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    t = (a.mean() - b.mean()) / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    got_t, got_p = bench.welch_test(a, b)
    assert got_t == pytest.approx(t, rel=1e-12)
    assert got_p == pytest.approx(stats.t.sf(t, df), rel=1e-9)
    assert bench.welch_test(b, a)[1] == pytest.approx(1 - got_p, rel=1e-9)


@pytest.mark.parametrize(
    "make",
    [
        search.regularized_evolution,
        lambda space: search.random_search(space, batch_size=4),  # a batch a step
    ],
    ids=["rea", "rs-batch-4"],
)
@pytest.mark.parametrize("whole_seconds", [False, True], ids=["table-costs", "whole-seconds"])
def test_the_protocol_is_a_python_replay_of_ask_lookup_charge_tell(obj, key, make, whole_seconds):
    """Each seed's curves against a plain Python loop over the same searcher with the
    protocol's keys (seed i: `fold_in(key, i)`, split into init and step keys, step j:
    `fold_in(step_key, j)`): ask, look the rows up in the table, charge their training
    time, tell, keep the best valid accuracy, stop once the budget is crossed (that
    evaluation counts); after it the curves hold their last values. With costs of 1 or 2
    whole seconds some seeds spend exactly the budget, and stop there; with fitness rounded
    to tens, a later tie does not replace the incumbent."""
    searcher, space, budget, seeds = make(NB201()), NB201(), 3000.0, 3
    if whole_seconds:
        costs = 1.0 + jnp.arange(obj.cost_s.shape[0]) % 2
        tied = jnp.round(obj.fitness / 10)  # many rows tie: the first found stays the incumbent
        obj, budget, seeds = bench.Objective(tied, costs, obj.space, "1-2 s, ties"), 16.0, 8
    sim = bench.simulate(searcher, obj, key=key, num_seeds=seeds, budget_s=budget)
    if whole_seconds:
        assert np.any(sim.time_s[:, -1] == budget)
    fitness, cost = np.asarray(obj.fitness), np.asarray(obj.cost_s)
    ask, tell = jax.jit(searcher.ask), jax.jit(searcher.tell)
    for s in range(seeds):
        k_init, k_steps = jax.random.split(jax.random.fold_in(key, s))
        state = searcher.init(k_init)
        t, best, best_row, n, curves = np.float32(0.0), -np.inf, -1, 0, []
        while t < budget:
            archs, state = ask(jax.random.fold_in(k_steps, len(curves)), state)
            rows = np.asarray(jax.vmap(space.index)(archs))
            state = tell(state, archs, jnp.asarray(fitness[rows]))
            for r in rows:
                if fitness[r] > best:
                    best, best_row = fitness[r], int(r)
            t = np.float32(t + np.float32(cost[rows].sum()))
            n += len(rows)
            curves.append((t, best, best_row))
        steps = len(curves)
        ts, fs, rs = (np.asarray(c) for c in zip(*curves, strict=True))
        np.testing.assert_allclose(sim.time_s[s, :steps], ts, rtol=1e-6)
        np.testing.assert_array_equal(sim.best_fitness[s, :steps], fs)
        np.testing.assert_array_equal(sim.best_row[s, :steps], rs)
        assert sim.num_evals[s] == n
        assert np.all(sim.time_s[s, steps:] == sim.time_s[s, steps - 1])
        assert np.all(sim.best_row[s, steps:] == best_row)
