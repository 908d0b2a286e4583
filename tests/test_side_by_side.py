"""`benchmarks/oneshot_vs_reference.py` adapts the shared harness' jnas worker to today's
API and start: every rewrite must find the harness' text, and the result must be a worker
that builds its state and batches as a jnas run does. The benchmarks' `--out` takes a
folder or a `.json` file."""

import importlib.util
import json
import pathlib
from typing import Any

import jax
import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PERF = ROOT.parent / "shared" / "perf"


def _driver():
    spec = importlib.util.spec_from_file_location(
        "oneshot_vs_reference", ROOT / "benchmarks" / "oneshot_vs_reference.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def worker(tmp_path: pathlib.Path) -> pathlib.Path:
    source = PERF / "jnas_worker.py"
    if not source.exists():
        pytest.skip(f"{source} is absent: the side-by-side harness lives in ../shared/perf")
    copy = tmp_path / "jnas_worker.py"
    copy.write_text(source.read_text())
    return copy


def test_worker_rewrite_applies_and_starts_as_a_run(worker: pathlib.Path):
    driver = _driver()
    driver.rewrite(worker, driver.WORKER_API)  # raises when a harness text is missing
    text = worker.read_text()
    compile(text, str(worker), "exec")  # still a valid program
    assert "initial_state(method.init, jax.random.key(1))" in text
    assert "jax.jit(method.init)" not in text
    assert "jax.random.normal" not in text
    assert "rng.standard_normal" in text
    assert "oneshot.jit_step(method, donate_argnums=1)" in text
    assert "oneshot.METHODS" not in text


def test_rewrite_refuses_a_missing_text(tmp_path: pathlib.Path):
    path = tmp_path / "w.py"
    path.write_text("x = 1\n")
    with pytest.raises(RuntimeError, match="not found"):
        _driver().rewrite(path, (("y = 2", "y = 3"),))


def _line(text: str, start: str) -> str:
    (line,) = [line.strip() for line in text.splitlines() if line.strip().startswith(start)]
    return line


def test_rewritten_step_keys_are_the_harness_keys(worker: pathlib.Path):
    """The rewritten worker's step keys (unpacked from one split) are the harness' own (a
    list of the split array), so GDAS samples the same cells step for step."""
    driver = _driver()
    original = _line(worker.read_text(), "step_keys =")
    driver.rewrite(worker, driver.WORKER_API)
    rewritten = _line(worker.read_text(), "step_keys =")
    assert rewritten != original
    keys = {}
    for name, line in (("original", original), ("rewritten", rewritten)):
        scope: dict[str, Any] = {"jax": jax, "np": np}
        exec(line.replace("4096", "64"), scope)
        keys[name] = np.stack([jax.random.key_data(k) for k in scope["step_keys"]])
    assert keys["original"].shape == (64, 2)
    np.testing.assert_array_equal(keys["rewritten"], keys["original"])


def _child():
    spec = importlib.util.spec_from_file_location("_child", ROOT / "benchmarks" / "_child.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_benchmark_results_go_to_a_folder_or_a_named_json(tmp_path: pathlib.Path):
    """`--out results/` writes results/<default name>; `--out x.json` writes that file
    (it made a folder named x.json before)."""
    save = _child().save
    save({"a": 1}, tmp_path / "results", "default.json")
    assert json.loads((tmp_path / "results" / "default.json").read_text()) == {"a": 1}
    save({"b": 2}, tmp_path / "named" / "mine.json", "default.json")
    assert (tmp_path / "named" / "mine.json").is_file()
    assert json.loads((tmp_path / "named" / "mine.json").read_text()) == {"b": 2}
    assert not (tmp_path / "named" / "mine.json" / "default.json").exists()
