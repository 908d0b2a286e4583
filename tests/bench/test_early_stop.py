"""Learning-curve early stopping inside the simulated protocol (`bench.curve_stopping`) on
NAS-Bench-NLP's real curves: the protocol's charges and decisions against a NumPy / SciPy
loop over the same asks, forecasts that never read past their check epoch, and the
budget it saves turned into lower regret."""

import dataclasses

import jax
import numpy as np
import pytest
from scipy import stats

from jnas import bench, search
from jnas.predictors import curve_families

KW = {"dataset": "wikitext2", "metric": "valid_ppl", "minimize": True}
FAMILIES = curve_families(("pow3", "exp3", "ilog2"))  # three families: a quick fit


@pytest.fixture(scope="module")
def nlp(nasbench_dir):
    table = bench.restrict(bench.load_nbnlp(nasbench_dir))
    stopping = bench.curve_stopping(
        table, epochs=50, check_at=(6, 12), threshold=0.05, families=FAMILIES, **KW
    )
    return table, stopping


def test_charges_and_decisions_equal_a_numpy_loop_over_the_same_asks(nlp):
    table, obj = nlp
    searcher = search.random_search(table.space)
    run_s = float(np.mean(np.asarray(table.column("wikitext2", "train_time_s", 50))))
    budget = 8 * run_s
    key = jax.random.key(3)
    sim = bench.simulate(searcher, obj, key=key, num_seeds=2, budget_s=budget)
    ppl50 = np.asarray(table.column("wikitext2", "valid_ppl", 50), np.float64)
    full = np.asarray(table.column("wikitext2", "train_time_s", 50), np.float64)
    to = {c: np.asarray(table.column("wikitext2", "train_time_s", c), np.float64) for c in (6, 12)}
    fc = jax.tree.map(lambda a: np.asarray(a, np.float64), obj.stops.forecast)
    ask = jax.jit(searcher.ask)
    for seed in range(2):  # the protocol's keys (`simulate_batch`)
        init_key, loop_key = jax.random.split(jax.random.fold_in(key, seed))
        state = searcher.init(init_key)
        t, best, stopped, times, step = 0.0, np.inf, 0, [], 0
        while t < budget:
            archs, asked = ask(jax.random.fold_in(loop_key, step), state)
            row = int(jax.vmap(table.space.index)(archs)[0])
            charge, told, done = full[row], -ppl50[row], True
            for c, check in enumerate((6, 12)):
                w, mu, sd = fc.weights[c, row], fc.means[c, row], fc.stds[c, row]
                # P(final perplexity < incumbent's) under the mixture; fitness = -perplexity
                p = np.sum(np.where(w > 0, w * stats.norm.sf(-best, mu, np.maximum(sd, 1e-12)), 0))
                if np.isfinite(best) and np.isfinite(fc.mean[c, row]) and p < 0.05:
                    charge, told, done = to[check][row], fc.mean[c, row], False
                    stopped += 1
                    break
            state = searcher.tell(asked, archs, np.asarray([told], np.float32))
            t += charge
            if done and ppl50[row] < best:
                best = ppl50[row]
            times.append(t)
            step += 1
        np.testing.assert_allclose(sim.time_s[seed, : len(times)], times, rtol=1e-5)
        assert int(sim.num_evals[seed]) == len(times)
        assert int(sim.num_stopped[seed]) == stopped > 0
        assert -sim.best_fitness[seed, -1] == pytest.approx(best, rel=1e-6)


def test_a_forecast_reads_no_epoch_after_its_check(nlp):
    table, obj = nlp
    columns = dict(table.columns)
    for name in list(columns):
        _, metric, epochs = name.split("|")
        if metric == "valid_ppl" and epochs.isdigit() and 12 < int(epochs) < 50:
            columns[name] = columns[name] * 3.0 + 50.0  # a different future
    changed = bench.curve_stopping(
        dataclasses.replace(table, columns=columns),
        epochs=50,
        check_at=(6, 12),
        families=FAMILIES,
        **KW,
    )
    for a, b in zip(
        jax.tree.leaves(obj.stops.forecast), jax.tree.leaves(changed.stops.forecast), strict=True
    ):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, equal_nan=True)
    # ...and the epochs before the check do change it
    columns = dict(table.columns)
    columns["wikitext2|valid_ppl|4"] = columns["wikitext2|valid_ppl|4"] * 1.5
    moved = bench.curve_stopping(
        dataclasses.replace(table, columns=columns),
        epochs=50,
        check_at=(6, 12),
        families=FAMILIES,
        **KW,
    )
    assert not np.allclose(np.asarray(obj.stops.forecast.mean), moved.stops.forecast.mean)


def test_stopping_turns_the_saved_budget_into_lower_regret(nlp):
    """Random search on the 50-epoch perplexity, 200 seeds, 10 mean runs of budget: with
    Domhan-style stopping it evaluates several times as many cells and ends closer to the
    table's best than plain random search (measured: 26.8 vs 56.8 perplexity at 10 runs)."""
    table, stopping = nlp
    plain = bench.objective(table, epochs=50, **KW)
    run_s = float(np.mean(np.asarray(table.column("wikitext2", "train_time_s", 50))))
    best = np.nanmin(np.asarray(table.column("wikitext2", "valid_ppl", 50)))
    out = {}
    for name, obj in (("plain", plain), ("stopping", stopping)):
        sim = bench.simulate(
            search.random_search(table.space),
            obj,
            key=jax.random.key(0),
            num_seeds=200,
            budget_s=10 * run_s,
        )
        out[name] = (float(np.mean(-sim.best_fitness[:, -1] - best)), sim)
    assert out["stopping"][1].num_evals.mean() > 3 * out["plain"][1].num_evals.mean()
    assert out["stopping"][0] < out["plain"][0] - 10.0, out
    assert out["plain"][1].num_stopped is None


def test_bad_settings_are_named(nlp):
    table, _ = nlp
    with pytest.raises(ValueError, match="check_at"):
        bench.curve_stopping(table, epochs=50, check_at=(50,), **KW)
    with pytest.raises(ValueError, match="threshold"):
        bench.curve_stopping(table, epochs=50, check_at=(5,), threshold=1.0, **KW)
    nb = bench.objective(table, epochs=(10, 50), **KW)
    with pytest.raises(ValueError, match="early stopping"):
        bench.simulate(
            search.hyperband(table.space, fidelities=2),
            dataclasses.replace(nb, stops=nlp[1].stops),
            key=jax.random.key(0),
            num_seeds=1,
            budget_s=1e5,
        )
