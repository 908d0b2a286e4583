"""Meta-trainings that checkpoint and resume (FSBO's deep kernel, the REINFORCE policy by
Reptile and by MAML, HELP's latency predictor): a run stopped halfway and resumed from its
folder ends exactly where an uninterrupted run ends, without recomputing the chunks it had
saved; a resume with other settings is refused by name."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jnas import bench, transfer


def _records(folder):
    return [json.loads(line) for line in (folder / "records.jsonl").read_text().splitlines()]


def _halfway_then_resumed(run, tmp_path, half, full):
    """(the resumed run's result, an uninterrupted run's result); asserts the saved chunks
    were kept, not recomputed."""
    folder = tmp_path / "run"
    run(half, out=folder)
    saved = _records(folder)
    resumed = run(full, out=folder, resume=True)
    records = _records(folder)
    assert len(records) == 2 * len(saved)
    assert records[: len(saved)] == saved  # same finish times: not run again
    return resumed, run(full)


def _assert_same(a, b):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-6, atol=1e-7)


def test_deep_kernel_meta_training_resumes(nb201_table, tmp_path):
    sources = transfer.nb201_tasks(200)
    scores = transfer.suite_scores(nb201_table, [sources["cifar10"], sources["cifar100"]])
    data = transfer.source_data(jax.random.key(0), nb201_table.space, scores, num_points=30)

    def run(steps, **kw):
        return transfer.meta_train_deep_kernel(
            jax.random.key(1), data, hidden=(8,), steps=steps, batch=10, checkpoint_every=5, **kw
        )

    resumed, whole = _halfway_then_resumed(run, tmp_path, 10, 20)
    _assert_same(resumed, whole)
    assert resumed[1].shape == (20,)
    with pytest.raises(ValueError, match="batch"):
        transfer.meta_train_deep_kernel(
            jax.random.key(1), data, hidden=(8,), steps=20, batch=12, checkpoint_every=5,
            out=tmp_path / "run", resume=True,
        )  # fmt: skip
    with pytest.raises(ValueError, match="multiple of the checkpoint interval"):
        run(12, out=tmp_path / "other")
    # another key, or source data differing in one value: refused by name (their fingerprints)
    for key, d, name in (
        (jax.random.key(9), data, "key"),
        (jax.random.key(1), data._replace(y=data.y.at[1, 3].add(1e-3)), "sources"),
    ):
        with pytest.raises(ValueError, match=f"started with {name}="):
            transfer.meta_train_deep_kernel(
                key, d, hidden=(8,), steps=20, batch=10, checkpoint_every=5,
                out=tmp_path / "run", resume=True,
            )  # fmt: skip


@pytest.mark.parametrize("method", ["reptile", "maml"])
def test_policy_meta_training_resumes(nb201_table, tmp_path, method):
    sources = transfer.nb201_tasks(200)
    scores = transfer.suite_scores(nb201_table, [sources["cifar10"], sources["cifar100"]])

    def run(steps, **kw):
        return transfer.meta_train_policy(
            jax.random.key(2), nb201_table.space, scores, meta_steps=steps, inner_evals=4,
            seeds_per_task=2, checkpoint_every=2, method=method, **kw,
        )  # fmt: skip

    resumed, whole = _halfway_then_resumed(run, tmp_path, 2, 4)
    _assert_same(resumed, whole)
    assert float(np.abs(np.asarray(whole)).max()) > 0  # it moved
    # another key, or scores differing in one value: refused by name (their fingerprints)
    for key, s, name in (
        (jax.random.key(9), scores, "key"),
        (jax.random.key(2), scores.at[0, 7].add(1e-3), "scores"),
    ):
        with pytest.raises(ValueError, match=f"started with {name}="):
            transfer.meta_train_policy(
                key, nb201_table.space, s, meta_steps=4, inner_evals=4, seeds_per_task=2,
                checkpoint_every=2, method=method, out=tmp_path / "run", resume=True,
            )  # fmt: skip


def test_latency_meta_training_resumes(tmp_path, nasbench_dir):
    latency = bench.load_latency(nasbench_dir)

    def run(steps, **kw):
        return transfer.meta_train_latency(
            jax.random.key(3), latency, steps=steps, eval_every=10, queries=16, hidden=(8,),
            inner_steps=2, valid=("titanx_1",), **kw,
        )  # fmt: skip

    (p1, h1), (p2, h2) = _halfway_then_resumed(run, tmp_path, 10, 20)
    _assert_same(p1, p2)
    assert h1 == h2
    assert [h["step"] for h in h1] == [10, 20]
    with pytest.raises(ValueError, match="started with key="):
        transfer.meta_train_latency(
            jax.random.key(9), latency, steps=20, eval_every=10, queries=16, hidden=(8,),
            inner_steps=2, valid=("titanx_1",), out=tmp_path / "run", resume=True,
        )  # fmt: skip


def test_fingerprint_tells_apart_shape_dtype_and_any_byte():
    """The resume fingerprint changes with the shape or dtype of the same bytes (16 zero
    bytes as float32[4], float64[2], float32[2, 2]), with one changed element, and with the
    order of the arrays; a strided view hashes as its copy."""
    from jnas.transfer._resume import fingerprint

    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    prints = {
        fingerprint(np.zeros(4, np.float32)),
        fingerprint(np.zeros(2, np.float64)),
        fingerprint(np.zeros((2, 2), np.float32)),
        fingerprint(a),
        fingerprint(np.where(a == 5, 5.0001, a).astype(np.float32)),
        fingerprint(a, a[:1]),
        fingerprint(a[:1], a),
    }
    assert len(prints) == 7
    assert all(len(p) == 16 and int(p, 16) >= 0 for p in prints)
    assert fingerprint(a[:, ::2]) == fingerprint(np.array(a[:, ::2]))
    assert fingerprint(a) == fingerprint(jax.numpy.asarray(a))


def test_run_steps_runs_each_step_index_once_in_order_as_a_python_loop(tmp_path):
    """`run_steps` against a Python loop over i = 0..steps-1: the step index reaches the
    step (chunk offsets included), a last shorter chunk runs without a folder, `after_chunk`
    sees the steps done and may change the state, a resumed folder extends to more steps, and
    a non-finite value is refused naming its chunk's steps.
    The resume tests above compare two runs of `run_steps`, which share any such slip."""
    from jnas.transfer._resume import run_steps, step_values

    def init(key):
        return jax.random.normal(key, ())

    def step(state, i):
        return 0.5 * state + i.astype(state.dtype), state * 10.0 + i.astype(state.dtype)

    def loop(steps, chunk, bump=0.0):
        s, values, seen = float(init(jax.random.key(5))), [], []
        for i in range(steps):
            values.append(s * 10.0 + i)
            s = 0.5 * s + i
            if (i + 1) % chunk == 0 or i + 1 == steps:
                seen.append(i + 1)
                s += bump
        return s, values, seen

    def after(state, done):
        return state + 0.25, {"done": done}

    state, records = run_steps("t", step, init, jax.random.key(5), steps=8, chunk=3,
                               after_chunk=after)  # fmt: skip
    s, values, seen = loop(8, 3, bump=0.25)
    assert float(state) == pytest.approx(s, rel=1e-6)
    np.testing.assert_allclose(step_values(records), values, rtol=1e-6)
    assert [r["done"] for r in records] == seen == [3, 6, 8]
    assert [r["steps"] for r in records] == [[0, 3], [3, 6], [6, 8]]

    # a non-finite value names its chunk's steps (a middle one; the last, shorter one)
    for bad, steps in ((4, r"3\.\.5"), (7, r"6\.\.7")):

        def blows_up(state, i, bad=bad):
            return step(state, i)[0], jnp.where(i == bad, jnp.nan, 1.0)

        with pytest.raises(FloatingPointError, match=rf"^t, steps {steps}: "):
            run_steps("t", blows_up, init, jax.random.key(5), steps=8, chunk=3)
    with pytest.raises(ValueError, match="multiple of the checkpoint interval"):
        run_steps("t", step, init, jax.random.key(5), steps=7, chunk=3, out=tmp_path / "x")
    assert not (tmp_path / "x").exists()
    # 6 steps into a folder, then resumed and extended to 9: the loop's 9 steps
    run_steps("t", step, init, jax.random.key(5), steps=6, chunk=3, out=tmp_path / "run")
    state, _ = run_steps("t", step, init, jax.random.key(5), steps=9, chunk=3,
                         out=tmp_path / "run", resume=True)  # fmt: skip
    s, values, _ = loop(9, 3)
    assert float(state) == pytest.approx(s, rel=1e-6)
    assert len(_records(tmp_path / "run")) == 3
    np.testing.assert_allclose(step_values(_records(tmp_path / "run")), values, rtol=1e-6)
