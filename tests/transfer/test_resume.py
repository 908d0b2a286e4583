"""Meta-trainings that checkpoint and resume (FSBO's deep kernel, the REINFORCE policy by
Reptile and by MAML, HELP's latency predictor): a run stopped halfway and resumed from its
folder ends exactly where an uninterrupted run ends, without recomputing the chunks it had
saved; a resume with other settings is refused by name."""

import json

import jax
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
