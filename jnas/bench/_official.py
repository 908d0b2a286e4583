"""The official NATS-Bench release files, read without its API and without arbitrary code.

A release folder (`NATS-tss-v1_0-3ffb9-simple`, `NATS-sss-v1_0-50262-simple`) holds
`meta.pickle.pbz2` (the list of architecture strings) and one `{index:06d}.pickle.pbz2`
per cell: a bz2-compressed pickle of `{hp: ArchResults.state_dict()}`, where each
`all_results[(dataset, seed)]` is a `ResultsCount.state_dict()`. The pickles are read
with an unpickler that only rebuilds plain containers and numbers; anything else raises.

`convert_official` turns a folder into a `Table`, `save_table` writes the compact form
(one `.npz`, loads in a fraction of a second) and `load_table` reads it back.
"""

from __future__ import annotations

import bz2
import io
import os
import pathlib
import pickle
import zipfile
from collections import OrderedDict
from typing import Any

import jax.numpy as jnp
import numpy as np

from jnas.bench._table import Table, _key, table_from_numpy
from jnas.spaces import NB101, NB201, NATSSize, NB101Arch

_ALLOWED = {
    ("collections", "OrderedDict"): OrderedDict,
    ("collections", "defaultdict"): dict,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("builtins", "dict"): dict,
    ("builtins", "list"): list,
    ("builtins", "tuple"): tuple,
}


class _RestrictedUnpickler(pickle.Unpickler):
    """Rebuilds containers, strings and numbers; refuses every other global."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]
        if module in ("numpy.core.multiarray", "numpy._core.multiarray") and name == "scalar":
            return _numpy_scalar
        if module == "numpy" and name == "dtype":
            return np.dtype
        raise pickle.UnpicklingError(
            f"refusing to load global {module}.{name}: NATS-Bench "
            "records hold only containers and numbers"
        )


def _numpy_scalar(dtype: np.dtype, data: bytes) -> Any:
    return np.frombuffer(data, dtype=dtype)[0].item()


def read_pickle_bz2(path: str | os.PathLike) -> Any:
    """Load one `.pickle.pbz2` file safely; name the file when it is corrupt."""
    try:
        with bz2.open(path, "rb") as f:
            return _RestrictedUnpickler(io.BytesIO(f.read())).load()
    except (OSError, EOFError, pickle.UnpicklingError, ValueError) as err:
        raise ValueError(f"{path}: cannot read this NATS-Bench record ({err})") from err


def write_pickle_bz2(obj: Any, path: str | os.PathLike) -> None:
    """Write `obj` as the release does (bz2-compressed pickle, protocol 4)."""
    with bz2.open(path, "wb") as f:
        pickle.dump(obj, f, protocol=4)


def _space_for(num_archs: int, folder: pathlib.Path) -> Any:
    if num_archs == NB201().size:
        return NB201()
    if num_archs == NATSSize().size:
        return NATSSize()
    raise ValueError(
        f"{folder}: meta.pickle.pbz2 lists {num_archs} architectures; expected "
        f"{NB201().size} (topology) or {NATSSize().size} (size)"
    )


def _results_columns(record: dict) -> dict[tuple, dict[int, float]]:
    """{(dataset, metric, epochs): {seed: value}} from one `ArchResults.state_dict()`."""
    out: dict[tuple, dict[int, float]] = {}
    for (dataset, seed), res in record["all_results"].items():
        epochs = int(res["epochs"])
        last = epochs - 1
        acc = res.get("eval_acc1es") or {}
        splits = {
            "valid_acc": "x-valid",
            "test_acc": "ori-test" if dataset in ("cifar10", "cifar10-valid") else "x-test",
            "valtest_acc": None if dataset in ("cifar10", "cifar10-valid") else "ori-test",
        }
        for metric, split in splits.items():
            if split is not None and f"{split}@{last}" in acc:
                out.setdefault((dataset, metric, epochs), {})[seed] = float(acc[f"{split}@{last}"])
        times = res.get("train_times")
        if times:
            out.setdefault((dataset, "train_time_s", epochs), {})[seed] = float(
                sum(times[i] for i in range(epochs))
            )
        out.setdefault((dataset, "params_M", None), {})[seed] = float(res["params"])
        out.setdefault((dataset, "flops_M", None), {})[seed] = float(res["flop"])
        if res.get("latency"):
            lat = res["latency"]
            out.setdefault((dataset, "latency_s", None), {})[seed] = float(sum(lat) / len(lat))
    return out


def convert_official(folder: str | os.PathLike) -> Table:
    """Read an official NATS-Bench `*-simple` folder into a `Table`.

    Every (dataset, metric, epochs) present in the records becomes a column: the seed
    mean, and per-seed values (NaN for a seed a cell was not trained with). Cells without
    a record file are NaN throughout.
    """
    folder = pathlib.Path(folder)
    meta_path = folder / "meta.pickle.pbz2"
    if not meta_path.exists():
        raise FileNotFoundError(
            f"{folder}: not a NATS-Bench release folder; expected "
            "'meta.pickle.pbz2' and '000000.pickle.pbz2', ... in it"
        )
    meta = read_pickle_bz2(meta_path)
    if not isinstance(meta, dict) or "meta_archs" not in meta:
        raise ValueError(f"{meta_path}: expected a dict with 'meta_archs'")
    space = _space_for(len(meta["meta_archs"]), folder)
    for i in (0, len(meta["meta_archs"]) - 1):
        expected = space.to_string(space.from_index(i))
        if meta["meta_archs"][i] != expected:
            raise ValueError(
                f"{meta_path}: architecture {i} is {meta['meta_archs'][i]!r}; expected {expected!r}"
            )
    values: dict[tuple, dict[int, dict[int, float]]] = {}  # key -> row -> seed -> value
    for path in sorted(folder.glob("*.pickle.pbz2")):
        stem = path.name.split(".")[0]
        if not stem.isdigit():
            continue
        row = int(stem)
        record = read_pickle_bz2(path)
        if not isinstance(record, dict):
            raise ValueError(f"{path}: expected {{hp: ArchResults state}}; got {type(record)}")
        for hp, result in record.items():
            if result.get("arch_index") != row:
                raise ValueError(
                    f"{path}: holds arch_index {result.get('arch_index')} under hp {hp!r}"
                )
            for key, by_seed in _results_columns(result).items():
                values.setdefault(key, {})[row] = by_seed
    if not values:
        raise ValueError(f"{folder}: no '<index>.pickle.pbz2' records")
    seeds = tuple(sorted({s for rows in values.values() for by in rows.values() for s in by}))
    cols, seed_cols = {}, {}
    for key, rows in values.items():
        per_seed = np.full((space.size, len(seeds)), np.nan)
        for row, by_seed in rows.items():
            for seed, v in by_seed.items():
                per_seed[row, seeds.index(seed)] = v
        with np.errstate(all="ignore"):
            counts = np.sum(~np.isnan(per_seed), axis=1)
            mean = np.where(counts > 0, np.nansum(per_seed, axis=1) / np.maximum(counts, 1), np.nan)
        cols[key] = mean
        if key[1] not in ("params_M", "flops_M", "latency_s"):
            seed_cols[key] = per_seed
    name = "NATS-TSS" if isinstance(space, NB201) else "NATS-SSS"
    return table_from_numpy(space, name, cols, seed_cols, seeds)


def save_table(table: Table, path: str | os.PathLike) -> None:
    """Write a table in jnas' compact form: one `.npz` of its columns."""
    arrays = {f"col:{k}": np.asarray(v) for k, v in table.columns.items()}
    arrays.update({f"seed:{k}": np.asarray(v) for k, v in table.seed_columns.items()})
    arrays["meta:space"] = np.array(type(table.space).__name__)
    arrays["meta:name"] = np.array(table.name)
    arrays["meta:seeds"] = np.asarray(table.seeds, np.int64)
    if table.row_keys is not None:  # NB101: rows found by fingerprint
        arrays["rows:keys"] = np.asarray(table.row_keys)
        for name, leaf in zip(table.row_archs._fields, table.row_archs, strict=True):
            arrays[f"rows:{name}"] = np.asarray(leaf)
    np.savez_compressed(path, **arrays)  # pyright: ignore[reportArgumentType]


def load_table(path: str | os.PathLike) -> Table:
    """Read a table written by `save_table` (`jnas bench convert`)."""
    path = pathlib.Path(path)
    if not path.exists():
        raise FileNotFoundError(
            f"{path} does not exist; expected a compact table written by `jnas bench convert`"
        )
    try:
        with open(path, "rb") as f, np.load(f, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as err:
        raise ValueError(f"{path}: truncated or corrupt .npz file ({err})") from err
    spaces = {"NB201": NB201(), "NATSSize": NATSSize(), "NB101": NB101()}
    space_name = str(arrays.get("meta:space", ""))
    if space_name not in spaces:
        raise ValueError(f"{path}: not a jnas compact table (space {space_name!r})")
    seeds = tuple(int(s) for s in arrays["meta:seeds"])
    cols = {_key(k[4:]): v for k, v in arrays.items() if k.startswith("col:")}
    seed_cols = {_key(k[5:]): v for k, v in arrays.items() if k.startswith("seed:")}
    if "rows:keys" not in arrays:
        return table_from_numpy(
            spaces[space_name], str(arrays["meta:name"]), cols, seed_cols, seeds
        )
    archs = NB101Arch(jnp.asarray(arrays["rows:matrix"]), jnp.asarray(arrays["rows:ops"]))
    table = table_from_numpy(
        spaces[space_name],
        str(arrays["meta:name"]),
        cols,
        seed_cols,
        seeds,
        num_rows=arrays["rows:keys"].shape[0],
    )
    return table.with_row_keys(jnp.asarray(arrays["rows:keys"]), archs)


def write_official_fixture(samples: dict, space_name: str, folder: str | os.PathLike) -> None:
    """Write a release folder in the official layout from records in the form of
    `nats_official_samples.json.gz` (for tests and examples: the real records of a few
    cells, re-serialised as `ArchResults` / `ResultsCount` state dicts)."""
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    space = NB201() if space_name == "tss" else NATSSize()
    archs = [space.to_string(a) for a in _all(space)]
    write_pickle_bz2(
        {"meta_archs": archs, "arch2infos": {}, "evaluated_indexes": set()},
        folder / "meta.pickle.pbz2",
    )
    for cell, by_hp in samples[space_name].items():
        record = {}
        for hp, arch in by_hp.items():
            all_results = {}
            for run in arch["runs"]:
                epochs = int(run["epochs"])
                per_epoch = run["train_time_total_s"] / epochs
                eval_acc, eval_loss = {}, {}
                for split, by_epoch in run["eval_acc"].items():
                    for e, v in by_epoch.items():
                        eval_acc[f"{split}@{e}"] = v
                for split, by_epoch in run["eval_loss"].items():
                    for e, v in by_epoch.items():
                        eval_loss[f"{split}@{e}"] = v
                all_results[(run["dataset"], run["seed"])] = {
                    "name": run["dataset"],
                    "net_state_dict": None,
                    "train_acc1es": dict(enumerate(run["train_acc_by_epoch"])),
                    "train_acc5es": None,
                    "train_losses": dict(enumerate(run["train_loss_by_epoch"])),
                    "train_times": OrderedDict((i, per_epoch) for i in range(epochs)),
                    "arch_config": {"arch_str": arch["arch_str"]},
                    "params": run["params_M"],
                    "flop": run["flops_M"],
                    "seed": run["seed"],
                    "epochs": epochs,
                    "latency": run["latency_s"],
                    "eval_names": sorted({k.split("@")[0] for k in eval_acc}),
                    "eval_acc1es": eval_acc,
                    "eval_times": {},
                    "eval_losses": eval_loss,
                }
            record[hp] = {
                "arch_index": int(cell),
                "arch_str": arch["arch_str"],
                "all_results": all_results,
                "dataset_seed": {k: list(v) for k, v in arch["dataset_seed"].items()},
                "clear_net_done": True,
            }
        write_pickle_bz2(record, folder / f"{int(cell):06d}.pickle.pbz2")


def _all(space: Any) -> list:
    archs = space.enumerate()
    leaves = [np.asarray(x) for x in archs]
    return [type(archs)(*(x[i] for x in leaves)) for i in range(space.size)]
