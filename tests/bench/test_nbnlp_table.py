"""The NAS-Bench-NLP WikiText-2 table: rows are distinct cells, found inside jit from any
spelling of a recipe; values against the raw file (NumPy) and the README's figures."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jnas import bench
from jnas.spaces import NBNLP


@pytest.fixture(scope="module")
def nlp(nasbench_dir):
    return bench.load_nbnlp(nasbench_dir), np.load(nasbench_dir / "nbnlp_wt2.npz")


def _finite_mean(values):
    ok = np.isfinite(values)
    return values[ok].mean() if ok.any() else np.nan


def test_every_run_finds_its_cell_and_the_row_is_the_mean_of_its_runs(nlp):
    table, raw = nlp
    space = NBNLP()
    archs = [space.from_string(r) for r in raw["recipe"].tolist()]
    batch = jax.tree.map(lambda *x: jnp.stack(x), *archs)
    rows = np.asarray(jax.jit(table.rows)(batch))
    assert rows.min() >= 0
    assert len(set(rows.tolist())) == table.num_rows == 265  # 345 runs, 291 recipe strings
    final = np.asarray(table.column("wikitext2", "valid_loss", 50))
    times = np.asarray(table.column("wikitext2", "train_time_s", 10))
    for row in np.unique(rows):
        runs = np.flatnonzero(rows == row)
        expected = _finite_mean(raw["valid_loss"][runs, -1])
        np.testing.assert_allclose(final[row], expected, rtol=1e-6)
        np.testing.assert_allclose(
            times[row],
            _finite_mean(np.nan_to_num(raw["epoch_time_s"][runs, :10]).sum(axis=1)),
            rtol=1e-6,
        )
    # the README's figures: best final validation perplexity 96.49 (recipe 1000001)
    ppl = np.asarray(table.column("wikitext2", "valid_ppl", 50))
    best = int(np.nanargmin(ppl))
    assert ppl[best] == pytest.approx(96.49, abs=0.01)
    assert rows[list(raw["recipe_id"]).index(1000001)] == best
    vanilla = rows[list(raw["recipe_id"]).index(1000000)]
    assert table.column("wikitext2", "params", None)[vanilla] == 15_066_078


def test_a_renamed_recipe_is_the_same_row(nlp):
    table, raw = nlp
    recipe = json.loads(raw["recipe"][1])  # the LSTM
    new = {k: k if k.startswith("h_new_") else f"n{k}" for k in recipe}
    renamed = {
        new[k]: {"op": v["op"], "input": [new.get(s, s) for s in v["input"]]}
        for k, v in reversed(list(recipe.items()))
    }
    assert set(renamed) != set(recipe)
    arch = NBNLP().from_recipe(renamed)
    got = table.query(arch, dataset="wikitext2", metric="valid_loss", epochs=50)
    np.testing.assert_allclose(got, raw["valid_loss"][1, -1], rtol=1e-6)
    unknown = NBNLP().sample(jax.random.key(0))
    assert np.isnan(table.query(unknown, dataset="wikitext2", metric="valid_loss", epochs=50))


def test_restricted_table_searches_only_its_cells(nlp, key):
    table, _ = nlp
    sub = bench.restrict(table)
    archs = jax.vmap(sub.space.sample)(jax.random.split(key, 16))
    values = sub.query(archs, dataset="wikitext2", metric="valid_ppl", epochs=5)
    assert np.isfinite(np.asarray(values)).all()
    assert sub.space.size == 265


def test_resumed_runs_are_charged_only_the_epochs_they_add(nlp, key):
    """A scripted multi-fidelity searcher (rows and fidelities fixed in advance, two per
    step): the clock equals NumPy sums of the table's per-epoch times, where a promotion
    pays cost[f] - cost[f'] and a lower or equal fidelity of a trained row is free."""
    from jnas.bench import SubsetArch
    from jnas.search import Searcher

    table, _ = nlp
    sub = bench.restrict(table)
    epochs = (1, 3, 9, 50)
    script_rows = np.array([[5, 7], [5, 9], [7, 5], [5, 5], [9, 2]])
    script_fid = np.array([[0, 1], [2, 0], [0, 3], [1, 3], [3, 3]])

    def init(key):
        return jnp.int32(0)

    def ask(key, step):
        return SubsetArch(jnp.asarray(script_rows)[step]), step

    def tell(step, archs, fitness):
        return step + 1

    searcher = Searcher(init, ask, tell, 2, lambda step: jnp.asarray(script_fid)[step], len(epochs))
    obj = bench.objective(
        sub, dataset="wikitext2", metric="valid_loss", epochs=epochs, minimize=True, resume=True
    )
    sim = bench.simulate(searcher, obj, key=key, num_seeds=2, budget_s=1e9, max_steps=5)
    cum = np.stack([np.asarray(sub.column("wikitext2", "train_time_s", e)) for e in epochs])
    reached: dict[int, int] = {}
    expected, t = [], 0.0
    for rows, fids in zip(script_rows, script_fid, strict=True):
        for r, f in zip(rows.tolist(), fids.tolist(), strict=True):
            before = reached.get(r, -1)
            if f > before:
                t += cum[f, r] - (cum[before, r] if before >= 0 else 0.0)
                reached[r] = f
        expected.append(t)
    np.testing.assert_allclose(sim.time_s[0], expected, rtol=1e-5)
    np.testing.assert_array_equal(sim.time_s[0], sim.time_s[1])
    # without resume every query pays its whole run up to its epoch
    plain = bench.objective(sub, dataset="wikitext2", metric="valid_loss", epochs=epochs)
    full = bench.simulate(searcher, plain, key=key, num_seeds=1, budget_s=1e9, max_steps=5)
    np.testing.assert_allclose(
        full.time_s[0], np.cumsum(cum[script_fid, script_rows].sum(axis=1)), rtol=1e-5
    )
    # incumbents come from the top fidelity only, by the lowest loss (minimize=True)
    loss = np.asarray(sub.column("wikitext2", "valid_loss", 50))
    top = [
        r
        for rows, fids in zip(script_rows, script_fid, strict=True)
        for r, f in zip(rows, fids, strict=True)
        if f == 3
    ]
    assert sim.best_row[0, -1] == min(top, key=lambda r: loss[r])
    # steps 0 and 1 ran no top fidelity: no incumbent yet (row -1, fitness -inf)
    np.testing.assert_array_equal(sim.best_row[:, :2], -1)
    np.testing.assert_array_equal(sim.best_fitness[:, :2], -np.inf)
    assert sim.best_row[0, 2] == 5
    with pytest.raises(ValueError, match="several fidelities"):
        bench.objective(sub, dataset="wikitext2", metric="valid_loss", epochs=50, resume=True)
    with pytest.raises(ValueError, match="cumulative"):  # a loss falls with the epochs
        bench.objective(sub, dataset="wikitext2", metric="valid_loss", epochs=epochs,
                        cost="valid_loss", resume=True)  # fmt: skip
    for bad in ((50,), (3, 3, 50)):  # one fidelity; a repeated one
        with pytest.raises(ValueError, match="increasing"):
            bench.objective(sub, dataset="wikitext2", metric="valid_loss", epochs=bad)
