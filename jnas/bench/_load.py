"""Loaders for the compact NAS-Bench files (`$JNAS_NASBENCH_DIR`, schema in its README).

Every loader takes the file or the folder holding it, fails with the path and the file it
expected when the file is missing, and names the file when it is truncated or corrupt.
"""

from __future__ import annotations

import os
import pathlib
import zipfile

import numpy as np

from jnas.bench._table import Key, Table, table_from_numpy
from jnas.spaces import NB201, NATSSize

NB201_DATASETS = ("cifar10-valid", "cifar10", "cifar100", "ImageNet16-120")
_PREFIX = {
    "cifar10-valid": "cifar10valid",
    "cifar10": "cifar10",
    "cifar100": "cifar100",
    "ImageNet16-120": "imagenet16",
}


def default_dir() -> pathlib.Path:
    """`$JNAS_NASBENCH_DIR`, else `../shared/nasbench` (relative to the working folder)."""
    return pathlib.Path(os.environ.get("JNAS_NASBENCH_DIR", "../shared/nasbench"))


def _resolve(path: str | os.PathLike | None, filename: str) -> pathlib.Path:
    p = pathlib.Path(path) if path is not None else default_dir()
    if p.is_dir():
        p = p / filename
    if not p.exists():
        raise FileNotFoundError(
            f"NAS-Bench table not found: {p} does not exist; expected the file {filename!r} "
            f"(or a folder holding it; set JNAS_NASBENCH_DIR or pass the path)"
        )
    return p


class _Arrays(dict):
    """A table file's arrays; a missing one is a ValueError naming the file."""

    path: pathlib.Path

    def __missing__(self, key: str) -> np.ndarray:
        raise ValueError(
            f"{self.path}: not a NAS-Bench table of the expected schema; missing array {key!r}"
        )


def _npz(
    path: pathlib.Path,
    required: tuple[str, ...],
    rows: str | None = None,
    numeric: tuple[str, ...] = (),
) -> dict[str, np.ndarray]:
    """The arrays of an .npz table; `rows` names the array whose length every array with a
    per-row leading axis must share, `numeric` the arrays that must hold numbers (else a
    ValueError naming the file and array)."""
    try:
        with open(path, "rb") as f, np.load(f, allow_pickle=False) as data:
            arrays = _Arrays({k: data[k] for k in data.files})
            arrays.path = path
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as err:
        raise ValueError(f"{path}: truncated or corrupt .npz file ({err})") from err
    missing = [k for k in required if k not in arrays]
    if missing:
        raise ValueError(
            f"{path}: not a NAS-Bench table of the expected schema; missing arrays {missing}"
        )
    for k in numeric:
        if arrays[k].dtype.kind not in "biuf":
            raise ValueError(f"{path}: array {k!r} must be numeric; got {arrays[k].dtype}")
    if rows is not None:
        n = len(arrays[rows])
        for k in required:
            if arrays[k].ndim and len(arrays[k]) != n:
                raise ValueError(f"{path}: array {k!r} has {len(arrays[k])} rows; {rows!r} has {n}")
    return arrays


def load_nb201(path: str | os.PathLike | None = None) -> Table:
    """NAS-Bench-201 (= NATS-Bench topology) from `nb201_tss.npz`, rows = `NB201().index`.

    Columns (dataset, metric, epochs), accuracies in percent:
    - `valid_acc` at 12 and 200 epochs for all four datasets (`cifar10-valid` is trained on
      25k images and validated on the other 25k; `cifar10` has no validation split, so its
      `valid_acc` is absent), per seed at 200 epochs for `cifar10-valid`;
    - `test_acc` at 12 and 200 epochs for `cifar10`, `cifar100`, `ImageNet16-120`
      (`cifar10-valid` has none in the benchmark);
    - `valtest_acc` (the API's `ori-test`) at 200 epochs for `cifar100`, `ImageNet16-120`,
      also per seed;
    - `train_time_s` at 12 and 200 epochs: the simulated training time. The benchmark's
      per-epoch time is constant, so 12 epochs cost 12/200 of the 200-epoch time, and
      `cifar10` (50k images) costs twice `cifar10-valid` (25k), as its records show;
    - `params_M`, `flops_M` (epochs None).
    Seeds not trained are NaN (7,456 cells have 2 seeds at 200 epochs, not 3).
    """
    p = _resolve(path, "nb201_tss.npz")
    a = _npz(p, ("ops", "arch", "cifar10valid_valid_acc_200ep", "seeds"))
    space = NB201()
    if not np.array_equal(a["ops"], np.asarray(space.enumerate().ops)):
        raise ValueError(f"{p}: rows are not in NAS-Bench-201 index order")
    cols: dict = {}
    seed_cols: dict = {}
    cols[("cifar10-valid", "valid_acc", 200)] = a["cifar10valid_valid_acc_200ep"]
    seed_cols[("cifar10-valid", "valid_acc", 200)] = a["cifar10valid_valid_acc_200ep_seeds"]
    cols[("cifar10-valid", "valid_acc", 12)] = a["cifar10valid_valid_acc_12ep"]
    cols[("cifar10", "test_acc", 200)] = a["cifar10_test_acc_200ep"]
    cols[("cifar10", "test_acc", 12)] = a["cifar10_test_acc_12ep"]
    for ds in ("cifar100", "ImageNet16-120"):
        pre = _PREFIX[ds]
        cols[(ds, "valid_acc", 200)] = a[f"{pre}_valid_acc_200ep_derived"]
        cols[(ds, "test_acc", 200)] = a[f"{pre}_test_acc_200ep"]
        cols[(ds, "valtest_acc", 200)] = a[f"{pre}_valtest_acc_200ep"]
        seed_cols[(ds, "valtest_acc", 200)] = a[f"{pre}_valtest_acc_200ep_seeds"]
        cols[(ds, "valid_acc", 12)] = a[f"{pre}_valid_acc_12ep"]
        cols[(ds, "test_acc", 12)] = a[f"{pre}_test_acc_12ep"]
    times = {
        "cifar10-valid": a["cifar10valid_train_time_200ep_s"],
        "cifar10": 2 * a["cifar10valid_train_time_200ep_s"],
        "cifar100": a["cifar100_train_time_200ep_s"],
        "ImageNet16-120": a["imagenet16_train_time_200ep_s"],
    }
    for ds in NB201_DATASETS:
        cols[(ds, "train_time_s", 200)] = times[ds]
        cols[(ds, "train_time_s", 12)] = times[ds] * 12 / 200
        pre = "cifar10" if ds == "cifar10-valid" else _PREFIX[ds]
        cols[(ds, "params_M", None)] = a[f"{pre}_params_M"]
        cols[(ds, "flops_M", None)] = a[f"{pre}_flops_M"]
    return table_from_numpy(space, "NB201", cols, seed_cols, tuple(a["seeds"].tolist()))


def load_nats_sss(path: str | os.PathLike | None = None) -> Table:
    """NATS-Bench size space from `nats_sss.npz`, rows = `NATSSize().index`.

    Only the 90-epoch validation accuracy (`valid_acc`, epochs 90) of seed 777 is in the
    compact file, for `cifar10-valid`, `cifar100` and `ImageNet16-120`; the seed mean is
    that one seed.
    """
    p = _resolve(path, "nats_sss.npz")
    a = _npz(p, ("channels", "cifar10valid_valid_acc_90ep_seed777"))
    space = NATSSize()
    widths = np.asarray(space.channels)[np.asarray(space.enumerate().channels)]
    if not np.array_equal(a["channels"], widths):
        raise ValueError(f"{p}: rows are not in NATS-Bench size-space index order")
    cols, seed_cols = {}, {}
    for ds in ("cifar10-valid", "cifar100", "ImageNet16-120"):
        values = a[f"{_PREFIX[ds]}_valid_acc_90ep_seed777"]
        cols[(ds, "valid_acc", 90)] = values
        seed_cols[(ds, "valid_acc", 90)] = values[:, None]
    return table_from_numpy(space, "NATS-SSS", cols, seed_cols, (777,))


def load_latency(path: str | os.PathLike | None = None) -> Table:
    """Latency of every NB201 cell on 27 devices (`nb201_latency.npz`, milliseconds).

    Query with the device as the dataset: `dataset="pixel3", metric="latency_ms",
    epochs=None`.
    """
    p = _resolve(path, "nb201_latency.npz")
    a = _npz(p, ("index",))
    devices = sorted(k[: -len("_ms")] for k in a if k.endswith("_ms"))
    if not devices:
        raise ValueError(f"{p}: no `<device>_ms` arrays")
    cols: dict[Key, np.ndarray] = {(d, "latency_ms", None): a[f"{d}_ms"] for d in devices}
    return table_from_numpy(NB201(), "NB201-latency", cols)


def read_csv_rows(p: pathlib.Path) -> list[dict[str, str]]:
    """The rows of a (gzipped) CSV file as dicts; a truncated or corrupt file is a
    `ValueError` naming it."""
    import csv
    import gzip

    try:
        opener = gzip.open if p.name.endswith(".gz") else open
        with opener(p, "rt") as f:
            return list(csv.DictReader(f))
    except (OSError, EOFError, UnicodeDecodeError) as err:
        raise ValueError(f"{p}: truncated or corrupt file ({err})") from err
