"""The run driver: a resumed run ends with an uninterrupted run's state and records, a
non-finite metric stops the run naming the unit, hooks see what they promise, an init of
many draws runs op by op."""

import logging

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jnas import _execution
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


def test_count_draws_finds_the_draws_nested_in_jit_scan_cond_and_vmap():
    def f(key):
        k1, k2 = jax.random.split(key)  # 1
        a = jax.random.uniform(k1, (3,))  # 2
        k3 = jax.random.fold_in(k2, 3)  # 3
        b = jax.jit(lambda k: jax.random.normal(k, (2,)))(k3)  # 4

        def body(c, k):
            return c + jax.random.uniform(k, ()), None  # 6

        c, _ = jax.lax.scan(body, 0.0, jax.random.split(k1, 4))  # 5
        d = jax.lax.cond(  # 7, 8: one draw in each branch
            a[0] > 0.5, lambda k: jax.random.normal(k, ()), lambda k: jax.random.uniform(k, ()), k2
        )
        e = jax.vmap(lambda k: jax.random.uniform(k, (2,)))(jax.random.split(k2, 5))  # 9, 10
        return a, b, c, d, e

    for key in (jax.random.key(0), jax.random.PRNGKey(0)):  # typed and raw uint32 keys
        assert _execution.count_draws(jax.make_jaxpr(f)(key)) == 10


def test_an_init_of_many_draws_runs_op_by_op_and_one_of_few_is_compiled(monkeypatch, caplog):
    """XLA's compile grows faster than an init's number of separate draws (the DARTS search
    network's took minutes): past `MAX_COMPILED_DRAWS` the init runs op by op."""
    monkeypatch.setattr(_execution, "MAX_COMPILED_DRAWS", 8)

    def many_draws(key):  # 5 fold-ins and 5 draws: 10 > 8
        return [jax.random.uniform(jax.random.fold_in(key, i), (2,)) for i in range(5)]

    def few_draws(key):  # 4 <= 8
        return [jax.random.uniform(jax.random.fold_in(key, i), (2,)) for i in range(2)]

    key = jax.random.key(3)
    for init_fn, compiled in ((many_draws, False), (few_draws, True)):
        caplog.clear()
        with caplog.at_level(logging.WARNING), jax.log_compiles():
            state = _execution.initial_state(init_fn, key)
        assert (f"Compiling jit({init_fn.__name__})" in caplog.text) is compiled
        want = [jax.random.uniform(jax.random.fold_in(key, i), (2,)) for i in range(len(state))]
        np.testing.assert_array_equal(np.stack(state), np.stack(want))  # the same bits
    # the driver starts a run from it
    _, records = run_units(unit, units=1, init=init, key=key)
    assert records[0]["sum"] == pytest.approx(float(init(key)["x"].sum()) * 0.5, rel=1e-6)


def test_an_init_compiles_with_the_classic_emitters_on_cpu_to_the_same_bits(monkeypatch):
    """A run's init compiles at -O0 with XLA:CPU's classic emitters (half the compile of
    the NB201 supernet's init): the option reaches the compile (an option XLA does not
    know, let through as if known, fails it), and the state is bit for bit the one XLA's
    default compile gives."""
    from jnas import oneshot
    from jnas.spaces import NB201

    init = oneshot.darts(NB201(), channels=4, cells_per_stage=1).init
    key = jax.random.key(5)
    state = _execution.initial_state(init, key)
    reference = jax.jit(init)(key)  # XLA's defaults: -O2, the fusion emitters
    for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(reference), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    classic = jax.__version_info__ < (0, 11)  # XLA:CPU's classic emitters left in jax 0.11
    assert ("xla_cpu_use_fusion_emitters" in _execution.init_compiler_options()) is classic
    monkeypatch.setattr(_execution, "_known_option", lambda name, value: True)
    monkeypatch.setattr(_execution, "CLASSIC_EMITTERS", (("xla_not_an_option", True),))
    with pytest.raises(jax.errors.JaxRuntimeError, match="xla_not_an_option"):
        _execution.initial_state(init, jax.random.key(6))
