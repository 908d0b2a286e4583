"""The run driver: a resumed run ends with an uninterrupted run's state and records, a
non-finite metric stops the run naming the unit, hooks see what they promise."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jnas.runs import run_units


def init(key):
    return {"x": jax.random.normal(key, (3,)), "n": jnp.zeros((), jnp.int32)}


def unit(state, u):
    x = state["x"] * 0.5 + u  # a closed form: x_u = x_0 / 2^u + sum ...
    return (
        {"x": x, "n": state["n"] + 1},
        {"loss": np.asarray([float(x.sum())])},
        {"unit": u, "sum": float(x.sum())},
    )


def test_resume_continues_where_the_run_stopped(tmp_path):
    key = jax.random.key(0)
    whole, records = run_units(unit, units=4, init=init, key=key)
    x0 = np.asarray(init(key)["x"])
    want = x0
    for u in range(4):
        want = want * 0.5 + u
    np.testing.assert_allclose(whole["x"], want, rtol=1e-6)  # a NumPy re-derivation
    run_units(unit, units=2, init=init, key=key, out=tmp_path / "run")
    seen = []
    resumed, again = run_units(
        unit,
        units=4,
        init=init,
        key=key,
        out=tmp_path / "run",
        resume=True,
        on_open=lambda run, start, recs: seen.append((start, len(recs))),
    )
    assert seen == [(2, 2)]
    assert int(resumed["n"]) == 4
    np.testing.assert_allclose(resumed["x"], whole["x"], rtol=1e-6)
    assert again == records


def test_a_non_finite_metric_stops_the_run_naming_the_unit():
    def bad(state, u):
        return state, {"loss": np.asarray([1.0, np.nan if u == 1 else 2.0])}, {"unit": u}

    with pytest.raises(FloatingPointError, match=r"chunk 1: non-finite `loss`.*step 1"):
        run_units(bad, units=3, init=init, key=jax.random.key(0), describe=lambda u: f"chunk {u}")


def test_on_record_adds_fields_before_the_record_is_kept(tmp_path):
    _, records = run_units(
        unit,
        units=2,
        init=init,
        key=jax.random.key(0),
        out=tmp_path / "r",
        on_record=lambda r: r.update(extra=r["unit"]),
    )
    assert [r["extra"] for r in records] == [0, 1]
    assert '"extra": 1' in (tmp_path / "r" / "records.jsonl").read_text()
