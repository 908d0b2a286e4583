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
            times[row], _finite_mean(raw["epoch_time_s"][runs, :10].sum(axis=1)), rtol=1e-6
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
