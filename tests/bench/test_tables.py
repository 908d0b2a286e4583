"""NAS-Bench tables: known facts, explicit queries, errors, Pareto fronts."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jnas import bench
from jnas.spaces import NB201, NATSSize


@pytest.fixture
def nb201(nb201_table):
    return nb201_table


def test_known_optima(nb201):
    space = NB201()
    c10 = np.asarray(nb201.column("cifar10", "test_acc", 200))
    assert int(np.argmax(c10)) == 6111
    assert c10.max() == pytest.approx(94.37, abs=0.005)
    assert float(jnp.max(nb201.column("cifar100", "test_acc", 200))) == pytest.approx(
        73.51, abs=0.005
    )
    assert float(jnp.max(nb201.column("ImageNet16-120", "test_acc", 200))) == pytest.approx(
        47.31, abs=0.005
    )
    all_skip = space.from_string(
        "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|"
    )
    assert float(nb201.query(all_skip, dataset="cifar10", metric="test_acc", epochs=200)) == (
        pytest.approx(54.30, abs=0.005)
    )


def test_query_under_jit_equals_query_and_vmaps(nb201, key):
    space = NB201()
    archs = jax.vmap(space.sample)(jax.random.split(key, 64))
    eager = nb201.query(archs, dataset="cifar10-valid", metric="valid_acc", epochs=12)
    jitted = jax.jit(
        lambda t, a: t.query(a, dataset="cifar10-valid", metric="valid_acc", epochs=12)
    )(nb201, archs)
    np.testing.assert_array_equal(eager, jitted)
    one = jax.vmap(
        lambda a: nb201.query(a, dataset="cifar10-valid", metric="valid_acc", epochs=12)
    )(archs)
    np.testing.assert_array_equal(one, eager)
    assert eager.shape == (64,)


def test_invalid_architectures_query_nan_under_jit(nb201):
    """An op out of range gave a real row's accuracy under jit (ops = 7 read 49.02)."""
    space = NB201()
    arch_type = type(space.sample(jax.random.key(0)))
    ops = jnp.asarray([[0, 1, 2, 3, 4, 1], [0, 1, 2, 3, 4, 7], [-1, 1, 2, 3, 4, 1]], jnp.int8)
    got = np.asarray(
        jax.jit(lambda a: nb201.query(a, dataset="cifar10", metric="test_acc", epochs=200))(
            arch_type(ops)
        )
    )
    assert np.isnan(got[1:]).all()
    row = space.index(
        space.from_string(
            "|none~0|+|skip_connect~0|nor_conv_1x1~1|+|nor_conv_3x3~0|avg_pool_3x3~1|skip_connect~2|"
        )
    )
    assert got[0] == np.asarray(nb201.column("cifar10", "test_acc", 200))[int(row)]


def test_seeds_and_missing_values_are_nan(nb201):
    per_seed = np.asarray(nb201.column("cifar10-valid", "valid_acc", 200, seed=777))
    assert per_seed.shape == (15625,)
    all_seeds = np.stack(
        [
            np.asarray(nb201.column("cifar10-valid", "valid_acc", 200, seed=s))
            for s in (777, 888, 999)
        ],
        1,
    )
    missing = np.isnan(all_seeds).sum(1)
    assert (missing == 1).sum() == 7456  # cells trained with 2 seeds only
    mean = np.asarray(nb201.column("cifar10-valid", "valid_acc", 200))
    np.testing.assert_allclose(np.nanmean(all_seeds, 1), mean, atol=1e-3)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (
            {"dataset": "cifar11", "metric": "valid_acc", "epochs": 12},
            "unknown `dataset`.*cifar10-valid",
        ),
        ({"dataset": "cifar10", "metric": "valid_acc", "epochs": 12}, "unknown `metric`.*test_acc"),
        (
            {"dataset": "cifar10-valid", "metric": "valid_acc", "epochs": 50},
            r"`epochs` must be one of \[12, 200\]",
        ),
        ({"dataset": "cifar10", "metric": "test_acc", "epochs": 200, "seed": 777}, "no per-seed"),
        (
            {"dataset": "cifar10-valid", "metric": "valid_acc", "epochs": 200, "seed": 1},
            "`seed` must be one of",
        ),
    ],
)
def test_bad_queries_list_the_valid_choices(nb201, kwargs, match):
    with pytest.raises(ValueError, match=match):
        nb201.column(**kwargs)


def test_train_time_against_official_records(nb201, nats_samples):
    for cell, by_hp in nats_samples["tss"].items():
        for hp, record in by_hp.items():
            for run in record["runs"]:
                got = float(
                    nb201.query(
                        NB201().from_index(int(cell)),
                        dataset=run["dataset"],
                        metric="train_time_s",
                        epochs=int(hp),
                    )
                )
                assert got == pytest.approx(run["train_time_total_s"], rel=1e-5)


def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nb201_tss\.npz"):
        bench.load_nb201(tmp_path)
    bad = tmp_path / "nb201_tss.npz"
    bad.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(ValueError, match="truncated or corrupt"):
        bench.load_nb201(bad)


def test_latency_of_cell_0_is_hw_nas_benchs_published_example(nasbench_dir):
    """HW-NAS-Bench's README prints cell 0's CIFAR-10 latencies (ms); query by the cell's
    string, not its row, so a shuffled or zeroed table fails."""
    lat = bench.load_latency(nasbench_dir)
    space = NB201()
    cell0 = space.from_string(
        "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|"
        "+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|"
    )
    published = {
        "raspi4": 10.481976820010459,
        "pixel3": 3.6058499999999998,
        "eyeriss": 3.645620000000001,
        "fpga": 2.57296,
    }
    for device, ms in published.items():
        got = float(lat.query(cell0, dataset=device, metric="latency_ms", epochs=None))
        assert got == pytest.approx(ms, rel=1e-6), device


def test_nats_sss_and_latency(nasbench_dir):
    sss = bench.load_nats_sss(nasbench_dir)
    space = NATSSize()
    best = space.from_string("64:64:64:64:64")
    assert float(sss.query(best, dataset="cifar10-valid", metric="valid_acc", epochs=90)) == (
        pytest.approx(90.712, abs=1e-3)
    )
    lat = bench.load_latency(nasbench_dir)
    assert ("pixel3", "latency_ms", None) in lat.keys()
    assert len(lat.keys()) == 27


def test_pareto_fronts_equal_the_published_ones(nb201, nasbench_dir):
    fronts = json.loads((nasbench_dir / "pareto_fronts.json").read_text())
    names = {"CIFAR-10": "cifar10", "CIFAR-100": "cifar100", "ImageNet16-120": "ImageNet16-120"}
    for label, ds in names.items():
        ref = np.asarray(fronts[f"NAS201_{label}|TestAcc|FLOPs"]["points"])
        err = 100 - np.asarray(nb201.column(ds, "test_acc", 200), np.float64)
        flops = np.asarray(nb201.column(ds, "flops_M", None), np.float64)
        front = bench.pareto_front(err, flops)
        ours = np.stack([err[front], flops[front]], 1)
        ref = ref[np.argsort(ref[:, 1])]
        assert ours.shape == ref.shape, label
        np.testing.assert_allclose(ours[:, 1], ref[:, 1], atol=1e-3)
        np.testing.assert_allclose(ours[:, 0], ref[:, 0], atol=0.01)


def test_pareto_front_by_hand():
    err = np.array([5.0, 4.0, 6.0, 4.0, np.nan])
    cost = np.array([1.0, 2.0, 0.5, 3.0, 0.1])
    np.testing.assert_array_equal(bench.pareto_front(err, cost), [2, 0, 1])
