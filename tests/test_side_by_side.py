"""`benchmarks/oneshot_vs_reference.py` adapts the shared harness' jnas worker to today's
API and start: every rewrite must find the harness' text, and the result must be a worker
that builds its state and batches as a jnas run does. The benchmarks' `--out` takes a
folder or a `.json` file."""

import argparse
import importlib.util
import json
import pathlib
import platform
import sys
from typing import Any

import jax
import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PERF = ROOT.parent / "shared" / "perf"


def _benchmark(name: str):
    """The benchmark script `benchmarks/<name>.py` as a module, its folder on the path
    while it loads (as when it runs: the scripts share `_child`)."""
    folder = str(ROOT / "benchmarks")
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, folder)
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(folder)
    return module


def _driver():
    return _benchmark("oneshot_vs_reference")


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


def test_rewritten_pool_draws_what_the_harness_drew(worker: pathlib.Path):
    """The rewritten worker's batch pool, executed: `pool` pairs of distinct (train, val)
    batches of N(0, 1) float32 images and int32 labels in [0, 10), as the harness'
    `jax.random` draws were, now on the host's generator."""
    driver = _driver()
    driver.rewrite(worker, driver.WORKER_API)
    lines = worker.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if "np.random.default_rng" in line)
    stop = next(i for i, line in enumerate(lines) if line.strip().startswith("step_keys ="))
    block = "\n".join(line[4:] for line in lines[start:stop])  # the body of main()
    scope: dict[str, Any] = {"jax": jax, "np": np, "args": argparse.Namespace(pool=3, batch=512)}
    exec(block, scope)
    pool = scope["pool"]
    assert len(pool) == 3
    images = []
    for train, val in pool:
        for x, y in (train, val):
            assert isinstance(x, jax.Array)
            assert x.shape == (512, 32, 32, 3)
            assert x.dtype == np.float32
            assert y.shape == (512,)
            assert y.dtype == np.int32
            assert 0 <= int(y.min())
            assert int(y.max()) <= 9
            images.append(np.asarray(x))
    every = np.stack(images)
    assert abs(every.mean()) < 0.01  # N(0, 1): 9.4M draws, standard error 3e-4
    assert abs(every.std() - 1) < 0.01
    assert not np.array_equal(images[0], images[1])  # train and val apart


def test_benchmark_results_go_to_a_folder_or_a_named_json(tmp_path: pathlib.Path):
    """`--out results/` writes results/<default name>; `--out x.json` writes that file
    (it made a folder named x.json before)."""
    save = _benchmark("_child").save
    save({"a": 1}, tmp_path / "results", "default.json")
    assert json.loads((tmp_path / "results" / "default.json").read_text()) == {"a": 1}
    save({"b": 2}, tmp_path / "named" / "mine.json", "default.json")
    assert (tmp_path / "named" / "mine.json").is_file()
    assert json.loads((tmp_path / "named" / "mine.json").read_text()) == {"b": 2}
    assert not (tmp_path / "named" / "mine.json" / "default.json").exists()


def test_results_name_the_processor(tmp_path: pathlib.Path):
    """A result names its processor (the lent VM's host changes between sessions): the
    first `model name` of a /proc/cpuinfo-style file; without one, what `platform` knows."""
    child = _benchmark("_child")
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(
        "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) Processor\n"
        "flags\t\t: fpu avx512f\n\nprocessor\t: 1\nmodel name\t: AMD EPYC Processor\n"
    )
    assert child.cpu_name(cpuinfo) == "Intel(R) Xeon(R) Processor"
    fallback = platform.processor() or platform.machine()
    assert child.cpu_name(tmp_path / "absent") == fallback
    cpuinfo.write_text("processor\t: 0\nmodel name\t:\n")  # an empty name is no name
    assert child.cpu_name(cpuinfo) == fallback
    assert child.machine()["cpu"] == child.cpu_name()
