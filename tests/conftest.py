"""Shared fixtures; makes mistakes loud and forces 8 CPU devices before JAX starts."""

import os
from importlib.metadata import version

flags = os.environ.get("XLA_FLAGS", "")
if "xla_force_host_platform_device_count" not in flags:  # before any JAX op runs
    flags += " --xla_force_host_platform_device_count=8"
if "xla_backend_optimization_level" not in flags:
    # The tests' networks are tiny: compiling is their cost, running is not. LLVM's -O0
    # halves the compile of a supernet step (16 s -> 8 s); JNAS_TEST_XLA_OPT=1 turns it off.
    if os.environ.get("JNAS_TEST_XLA_OPT") != "1":
        flags += " --xla_backend_optimization_level=0"
_JAXLIB = tuple(int(part) for part in version("jaxlib").split(".")[:2])
if "xla_cpu_use_fusion_emitters" not in flags and _JAXLIB < (0, 11):
    # XLA:CPU's MLIR fusion emitters (on by default in jax 0.10) take twice as long to
    # compile the tests' tiny programs as the classic emitters: a NB201 supernet step
    # 8.8 s -> 3.8 s, tests/oneshot/test_{oneshot,methods}.py 237 s -> 136 s on 2 cores.
    # jax 0.11's XLA has no classic emitters and aborts on the unknown flag.
    flags += " --xla_cpu_use_fusion_emitters=false"
os.environ["XLA_FLAGS"] = flags.strip()

# Each xdist worker on a core of its own, before JAX starts: XLA:CPU sizes its thread pool
# by the cores a process may use, so two workers on two cores otherwise run four pool
# threads (each program split over two, beside callers that spin while they wait).
# JNAS_TEST_PIN=0 leaves them unpinned.
_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
if _WORKER.startswith("gw") and os.environ.get("JNAS_TEST_PIN", "1") != "0":
    _cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    _count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if 1 < _count <= len(_cores):
        os.sched_setaffinity(0, {_cores[int(_WORKER[2:]) % len(_cores)]})

import gc  # noqa: E402
import pathlib  # noqa: E402
import shutil  # noqa: E402

import jax  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from hypothesis import settings  # noqa: E402

jax.config.update("jax_numpy_rank_promotion", "raise")
_CACHE_OWNER = False

# One disk cache of compiled programs for the whole session, shared by both xdist workers
# and the CLI subprocesses: tests rebuild the same steps (a new closure each, so JAX's
# in-memory caches miss) and compile identical programs again; the cache is keyed by the
# program and its options, so a hit runs the very executable a compile would give. The
# controller makes the folder before the workers start; they inherit the variable.
# JNAS_TEST_XLA_CACHE=0 turns it off.
if os.environ.get("JNAS_TEST_XLA_CACHE", "1") != "0":
    import tempfile

    if "JNAS_TEST_XLA_CACHE_DIR" not in os.environ:
        os.environ["JNAS_TEST_XLA_CACHE_DIR"] = tempfile.mkdtemp(prefix="jnas-test-xla-")
        _CACHE_OWNER = True  # this process made it: it removes it at the end
    _cache = os.environ["JNAS_TEST_XLA_CACHE_DIR"]
    jax.config.update("jax_compilation_cache_dir", _cache)
    # programs of 0.05 s and up: the small ones recur too (space and searcher functions
    # rebuilt by each test); tests/spaces, tests/bench and the searcher contract on -n 2:
    # 367 s with 0.5, 354 s with 0.05
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.05)
    os.environ.setdefault("JNAS_XLA_CACHE", _cache)  # the CLI's subprocesses
settings.register_profile("dev", max_examples=25, deadline=None)  # compiles are slow
settings.register_profile("ci", max_examples=100, deadline=None, derandomize=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))

NASBENCH_DIR = pathlib.Path(
    os.environ.get(
        "JNAS_NASBENCH_DIR",
        pathlib.Path(__file__).resolve().parents[1] / ".." / "shared" / "nasbench",
    )
)


def pytest_sessionfinish(session, exitstatus):
    """The session's compile cache goes with the session (the process that made it)."""
    if _CACHE_OWNER and "PYTEST_XDIST_WORKER" not in os.environ:
        shutil.rmtree(os.environ["JNAS_TEST_XLA_CACHE_DIR"], ignore_errors=True)


@pytest.fixture(autouse=True, scope="module")
def _free_compiled_programs():
    """Drops every compiled program after each test module.

    Each XLA:CPU executable holds a few memory mappings, and one xdist worker compiles tens
    of thousands of programs over the suite: unfreed, a worker passed 36,000 mappings half-way
    and reaches the kernel's limit (vm.max_map_count, 65,530) near the end, where the next
    mmap fails, seen in CI as a dlopen "failed to map segment" in whatever test imported a
    shared library next, and as a segfault inside XLA's compiler.
    """
    yield
    jax.clear_caches()
    gc.collect()


@pytest.fixture
def key() -> jax.Array:
    return jax.random.key(0)


@pytest.fixture
def run_bound() -> dict:
    """XLA options for a program that runs long and compiles fast (a searcher simulated
    over many seeds and steps, every edit of a batch of cells): LLVM -O1 for it alone,
    where the suite compiles at -O0 (the top of this file). The SMAC test: 41 -> 25 s."""
    return {"xla_backend_optimization_level": 1}


def _shared_file(name: str) -> pathlib.Path:
    path = NASBENCH_DIR / name
    if not path.exists():
        pytest.skip(
            f"{path} is absent: set JNAS_NASBENCH_DIR to the folder holding the "
            "NAS-Bench tables (../shared/nasbench)"
        )
    return path


@pytest.fixture(scope="session")
def nb201_npz() -> dict:
    with np.load(_shared_file("nb201_tss.npz")) as data:
        return {k: data[k] for k in data.files}


@pytest.fixture(scope="session")
def nats_npz() -> dict:
    with np.load(_shared_file("nats_sss.npz")) as data:
        return {k: data[k] for k in data.files}


@pytest.fixture(scope="session")
def nats_samples() -> dict:
    import gzip
    import json

    with gzip.open(_shared_file("nats_official_samples.json.gz"), "rt") as f:
        return json.load(f)


@pytest.fixture(scope="session")
def nb101_csv_path() -> pathlib.Path:
    return _shared_file("nb101_subset_naslib.csv.gz")


@pytest.fixture(scope="session")
def nb301_csv_path() -> pathlib.Path:
    return _shared_file("nb301_subset_naslib.csv.gz")


@pytest.fixture(scope="session")
def nasbench_dir() -> pathlib.Path:
    if not NASBENCH_DIR.is_dir():
        pytest.skip(
            f"{NASBENCH_DIR} is absent: set JNAS_NASBENCH_DIR to the folder holding "
            "the NAS-Bench tables (../shared/nasbench)"
        )
    return NASBENCH_DIR


@pytest.fixture(scope="session")
def nb201_table(nasbench_dir):
    from jnas import bench

    _shared_file("nb201_tss.npz")
    return bench.load_nb201(nasbench_dir)


@pytest.fixture
def python_sigint():
    """Python's Ctrl-C handler for the test (restored after), even when the suite was
    started with SIGINT ignored (a background job of a non-interactive shell): a run keeps
    an ignored SIGINT ignored, and a child process inherits it, so the Ctrl-C tests need it."""
    import signal

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)
