"""Official NATS-Bench release folders: restricted unpickling, conversion, compact form."""

import pickle
import subprocess
import sys

import numpy as np
import pytest

from jnas import bench
from jnas.spaces import NB201, NATSSize

SPLIT = {"valid_acc": "x-valid", "valtest_acc": "ori-test"}


@pytest.fixture(scope="module")
def folders(nats_samples, tmp_path_factory):
    root = tmp_path_factory.mktemp("nats")
    out = {}
    for space, name in (
        ("tss", "NATS-tss-v1_0-3ffb9-simple"),
        ("sss", "NATS-sss-v1_0-50262-simple"),
    ):
        bench.write_official_fixture(nats_samples, space, root / name)
        out[space] = root / name
    return out


@pytest.mark.parametrize("space_name", ["tss", "sss"])
def test_fixture_folders_load_to_the_official_values(folders, nats_samples, space_name):
    table = bench.convert_official(folders[space_name])
    assert isinstance(table.space, NB201 if space_name == "tss" else NATSSize)
    checked = 0
    for cell, by_hp in nats_samples[space_name].items():
        row = int(cell)
        for record in by_hp.values():
            for run in record["runs"]:
                ds, seed, epochs = run["dataset"], run["seed"], int(run["epochs"])
                last = str(epochs - 1)
                for metric, split in SPLIT.items():
                    if split in run["eval_acc"] and last in run["eval_acc"][split]:
                        if ds.startswith("cifar10") and metric == "valtest_acc":
                            continue
                        got = table.column(ds, metric, epochs, seed=seed)[row]
                        assert float(got) == pytest.approx(run["eval_acc"][split][last], abs=1e-4)
                        checked += 1
                got = table.column(ds, "train_time_s", epochs, seed=seed)[row]
                assert float(got) == pytest.approx(run["train_time_total_s"], rel=1e-6)
                assert float(table.column(ds, "params_M", None)[row]) == pytest.approx(
                    run["params_M"], abs=1e-6
                )
    assert checked > 20
    untouched = np.asarray(table.column("cifar100", "valid_acc", 12))
    assert np.isnan(untouched[1])  # a cell without a record is NaN, never 0


def test_converted_tss_equals_the_compact_table(folders, nb201_table):
    table = bench.convert_official(folders["tss"])
    rows = [0, 11, 284]
    for key in [
        ("cifar10-valid", "valid_acc", 200),
        ("cifar10", "test_acc", 200),
        ("cifar100", "valid_acc", 200),
        ("ImageNet16-120", "test_acc", 200),
        ("cifar10-valid", "valid_acc", 12),
        ("cifar100", "test_acc", 12),
        ("cifar10-valid", "train_time_s", 200),
        ("cifar10", "train_time_s", 12),
        ("cifar100", "flops_M", None),
    ]:
        np.testing.assert_allclose(
            np.asarray(table.column(*key))[rows],
            np.asarray(nb201_table.column(*key))[rows],
            rtol=1e-5,
        )


def test_convert_command_and_compact_round_trip(folders, tmp_path):
    out = tmp_path / "tss.npz"
    done = subprocess.run(
        [sys.executable, "-m", "jnas.cli", "bench", "convert", str(folders["tss"]), "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    back = bench.load_table(out)
    orig = bench.convert_official(folders["tss"])
    assert back.keys() == orig.keys()
    assert back.seeds == orig.seeds
    for k in orig.columns:
        np.testing.assert_array_equal(back.columns[k], orig.columns[k])


def test_restricted_unpickler_refuses_code(tmp_path):
    import bz2

    class Evil:
        def __reduce__(self):
            return (print, ("owned",))

    path = tmp_path / "000000.pickle.pbz2"
    with bz2.open(path, "wb") as f:
        pickle.dump({"x": Evil()}, f)
    with pytest.raises(ValueError, match=r"refusing to load global builtins\.print"):
        bench.read_pickle_bz2(path)


def test_bad_folders(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"meta\.pickle\.pbz2"):
        bench.convert_official(tmp_path)
    (tmp_path / "meta.pickle.pbz2").write_bytes(b"BZh9 not really")
    with pytest.raises(ValueError, match="cannot read"):
        bench.convert_official(tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        bench.load_table(tmp_path / "none.npz")
