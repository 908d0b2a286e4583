"""Shared fixtures; makes mistakes loud and forces 8 CPU devices before JAX starts."""

import os

flags = os.environ.get("XLA_FLAGS", "")
if "xla_force_host_platform_device_count" not in flags:  # before any JAX op runs
    flags += " --xla_force_host_platform_device_count=8"
if "xla_backend_optimization_level" not in flags:
    # The tests' networks are tiny: compiling is their cost, running is not. LLVM's -O0
    # halves the compile of a supernet step (16 s -> 8 s); JNAS_TEST_XLA_OPT=1 turns it off.
    if os.environ.get("JNAS_TEST_XLA_OPT") != "1":
        flags += " --xla_backend_optimization_level=0"
os.environ["XLA_FLAGS"] = flags.strip()

import gc  # noqa: E402
import pathlib  # noqa: E402

import jax  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from hypothesis import settings  # noqa: E402

jax.config.update("jax_numpy_rank_promotion", "raise")
settings.register_profile("dev", max_examples=25, deadline=None)  # compiles are slow
settings.register_profile("ci", max_examples=100, deadline=None, derandomize=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))

NASBENCH_DIR = pathlib.Path(
    os.environ.get(
        "JNAS_NASBENCH_DIR",
        pathlib.Path(__file__).resolve().parents[1] / ".." / "shared" / "nasbench",
    )
)


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
