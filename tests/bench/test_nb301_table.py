"""The NAS-Bench-301 subset as a table over DARTS: every row against the CSV decoded here,
a cell found whichever way its nodes' edges are written, bad rows named."""

import csv
import gzip

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jnas import bench
from jnas.spaces import DARTS, DARTS_V2, DARTSArch

# the file's README: NASLib's compact op index
NASLIB = ["max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3", "sep_conv_5x5"]
NASLIB += ["dil_conv_3x3", "dil_conv_5x5"]


def genotype_string(naslib: str) -> str:
    """The DARTS genotype string of a NASLib `normal;reduce` row, written out by hand."""
    parts = []
    for name, part in zip(("normal", "reduce"), naslib.split(";"), strict=True):
        pairs = [(NASLIB[int(p.split(":")[1])], int(p.split(":")[0])) for p in part.split(",")]
        parts.append(f"{name}={pairs!r}, {name}_concat=[2, 3, 4, 5]")
    return f"Genotype({', '.join(parts)})"


@pytest.fixture(scope="module")
def rows(nb301_csv_path):
    with gzip.open(nb301_csv_path, "rt") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def table(nasbench_dir):
    return bench.load_nb301(nasbench_dir)


def test_every_row_reads_the_files_values_by_its_genotype(rows, table):
    space = DARTS()
    archs = [space.from_string(genotype_string(r["genotype_naslib"])) for r in rows]
    batch = jax.tree.map(lambda *a: jnp.stack(a), *archs)
    for column, metric, epochs in (
        ("val_acc_surrogate", "valid_acc", 100),
        ("params_M_naslib", "params_M", None),
        ("zc_synflow", "zc_synflow", None),
    ):
        want = np.asarray([float(r[column]) for r in rows])
        got = np.asarray(table.query(batch, dataset="cifar10", metric=metric, epochs=epochs))
        np.testing.assert_allclose(got, want, rtol=1e-6)
    assert table.num_rows == len(rows) == 725


def test_a_cell_is_found_with_its_nodes_edges_in_either_order_and_a_missing_one_is_nan(rows, table):
    space = DARTS()
    arch = space.from_string(genotype_string(rows[3]["genotype_naslib"]))
    want = float(rows[3]["val_acc_surrogate"])
    # swap the two edges of every node of both cells: the same genotype
    swap = np.arange(8).reshape(4, 2)[:, ::-1].reshape(-1)
    swapped = DARTSArch(np.asarray(arch.ops)[:, swap], np.asarray(arch.inputs)[:, swap])
    assert space.to_string(swapped) != space.to_string(arch)
    lookup = jax.jit(lambda a: table.query(a, dataset="cifar10", metric="valid_acc", epochs=100))
    assert float(lookup(swapped)) == pytest.approx(want, rel=1e-6)
    # one op changed: another cell, which the subset lacks
    ops = np.asarray(arch.ops).copy()
    ops[0, 0] = 4 if ops[0, 0] != 4 else 5
    assert np.isnan(float(lookup(DARTSArch(ops, np.asarray(arch.inputs)))))
    assert np.isnan(float(lookup(space.from_string(DARTS_V2))))


def test_the_restricted_subset_is_searched_and_bad_rows_are_named(tmp_path, table):
    sub = bench.restrict(table)
    assert sub.space.size == 725
    obj = bench.objective(
        sub, dataset="cifar10", metric="valid_acc", epochs=100, cost="evaluations"
    )
    fitness, _ = obj(jax.vmap(sub.space.sample)(jax.random.split(jax.random.key(0), 16)))
    assert np.all(np.isfinite(np.asarray(fitness)))
    head = "naslib_idx,genotype_naslib,val_acc_surrogate,params_M_naslib,flops_M_naslib\n"
    bad = {
        "op 7": '0,"1:0,0:7,1:2,0:0,0:6,3:1,2:4,1:3;0:6,1:6,1:3,0:4,3:4,1:1,0:6,1:0",93,1,1\n',
        "two distinct inputs": '0,"1:0,1:5,1:2,0:0,0:6,3:1,2:4,1:3;0:6,1:6,1:3,0:4,3:4,1:1,0:6,1:0",93,1,1\n',
        "8 comma-separated": '0,"1:0,0:5;0:6",93,1,1\n',
    }
    for message, row in bad.items():
        path = tmp_path / "nb301.csv"
        path.write_text(head + row)
        with pytest.raises(ValueError, match=message):
            bench.load_nb301(path)
