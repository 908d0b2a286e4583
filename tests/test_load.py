"""`jnas.load(run_dir)`: a run command's result rebuilt from its folder, reading only; what
it holds reproduces the run's own reported figures."""

import jax
import numpy as np
import pytest

import jnas
from jnas import cli, data, meta
from jnas.spaces import NB201


def _snapshot(folder):
    return {p: p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(autouse=True)
def _no_disk_cache(monkeypatch):
    monkeypatch.setenv("JNAS_XLA_CACHE", "")  # cli.main would point JAX at a disk cache


def test_a_trained_network_and_a_one_shot_search_load_and_predict(tmp_path):
    s, t = str(tmp_path / "s"), str(tmp_path / "t")
    flags = ["--channels", "4", "--batch-size", "128", "--out", s]
    assert cli.main(["oneshot", "gdas", "--epochs", "1", *flags]) == 0
    before = _snapshot(tmp_path / "s")
    run = jnas.load(s)
    assert _snapshot(tmp_path / "s") == before  # loading writes nothing
    assert (run.command, run.units) == ("oneshot", 1)
    assert NB201().to_string(run.arch) == run.summary["arch"]
    digits = data.load_dataset("digits", jax.random.split(jax.random.key(0))[0])
    assert run.logits(digits["valid"].x[:5]).shape == (5, 10)

    assert cli.main(["train", run.summary["arch"], "--epochs", "1", "--channels", "4",
                     "--cells", "1", "--out", t]) == 0  # fmt: skip
    net = jnas.load(t)
    test = data.load_dataset("digits", jax.random.split(jax.random.key(0), 3)[0])["test"]
    acc = float(np.mean(np.argmax(net.logits(test.x), -1) == np.asarray(test.y)))
    assert acc == pytest.approx(net.summary["test_acc"], abs=1e-6)  # the trained weights


def test_a_meta_learner_loads_and_reproduces_its_test_figures(tmp_path):
    out = str(tmp_path / "m")
    args = ["meta", "maml", "--dataset", "sinusoid", "--shots", "5", "--steps", "4"]
    assert cli.main([*args, "--meta-batch", "2", "--test-tasks", "6", "--out", out]) == 0
    run = jnas.load(out)
    assert int(run.state.step) == 4
    again = meta.evaluate_tasks(
        run.learner,
        run.state.params,
        meta.sinusoid(5, 15),
        jax.random.key(10_000),
        num_tasks=6,
        batch=6,
    )
    want = run.summary["test"]["loss_after"]["mean"]
    assert again["loss_after"][0] == pytest.approx(want, rel=1e-5)
    task = meta.sinusoid(5, 15)(jax.random.key(3))
    assert run.predict(task.support_x, task.support_y, task.query_x).shape == (15, 1)


def test_a_search_loads_its_searcher_state_and_best_cell(tmp_path, nasbench_dir):
    out = str(tmp_path / "r")
    args = ["search", "rea", "--objective", "table", "--evaluations", "6"]
    assert cli.main([*args, "--nasbench", str(nasbench_dir), "--out", out]) == 0
    run = jnas.load(out)
    assert NB201().to_string(run.arch) == run.summary["best_arch"]
    assert run.units == len(run.records) == 6
    assert jax.tree.leaves(run.state)  # the searcher's state, to continue or inspect


def test_loading_a_folder_without_a_run_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="holds no jnas run"):
        jnas.load(tmp_path)
