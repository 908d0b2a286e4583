"""`jnas.load(run_dir)`: a run command's result rebuilt from its folder, reading only; what
it holds reproduces the run's own reported figures (one-shot and training runs: in
tests/test_cli.py, beside the runs that make them)."""

import jax
import pytest

import jnas
from jnas import cli, meta
from jnas.spaces import NB201


def _snapshot(folder):
    return {p: p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(autouse=True)
def _no_disk_cache(monkeypatch):
    monkeypatch.setenv("JNAS_XLA_CACHE", "")  # cli.main would point JAX at a disk cache


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


def test_the_oneshot_recipe_builds_every_space_it_offers():
    """`jnas oneshot --space NAME`: each space's supernet accepts the keywords the recipe
    gives it (NATS size built for real, traced), and an unknown space is a clear error."""
    import inspect

    from jnas.recipes.oneshot import ONESHOT_SPACES, oneshot_setup, oneshot_space, supernet_config

    for name in ONESHOT_SPACES:
        space = inspect.signature(oneshot_space(name).supernet)
        space.bind(**supernet_config(name, 4, 3, 10, 3))  # raises on a keyword it lacks
    method, train, _, key = oneshot_setup("rsws", "digits", 0, 1, 64, 4, 3, None, "nats_size")
    assert jax.tree.leaves(jax.eval_shape(method.init, key).params)
    assert train.x.shape[-1] == 3
    with pytest.raises(ValueError, match="unknown one-shot space"):
        oneshot_setup("rsws", "digits", 0, 1, 64, 4, 2, None, "nb101")


@pytest.mark.slow  # one compile per space: about a minute each on 2 CPU cores
@pytest.mark.parametrize("space", ["memory_bank", "nats_size"])
def test_a_oneshot_run_in_another_space_loads_and_runs_its_architecture(tmp_path, space):
    from jnas import data
    from jnas.recipes.oneshot import oneshot_space

    out = str(tmp_path / "o")
    args = ["oneshot", "gdas", "--space", space, "--epochs", "1", "--channels", "4"]
    assert cli.main([*args, "--batch-size", "256", "--out", out]) == 0
    run = jnas.load(out)
    assert oneshot_space(space).to_string(run.arch) == run.summary["arch"]
    test = data.load_dataset("digits", jax.random.split(jax.random.key(0), 3)[0])["test"]
    assert run.logits(test.x[:5]).shape == (5, 10)
