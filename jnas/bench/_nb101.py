"""NAS-Bench-101 tables: the official `.tfrecord` read without TensorFlow, and the compact
subset (`nb101_subset_naslib.csv.gz`).

An NB101 table has one row per distinct cell; rows are found inside `jit` by the cell's
`NB101.fingerprint` (a graph invariant), so queries work for any isomorphic form of a
cell, and a cell the table lacks reads NaN.
"""

from __future__ import annotations

import base64
import json
import os
import pathlib
import struct
from collections.abc import Iterator

import jax
import jax.numpy as jnp
import numpy as np

from jnas.bench._load import read_csv_rows
from jnas.bench._table import Table, table_from_numpy
from jnas.spaces import NB101, NB101Arch

# ----------------------------------------------------------------------------- tfrecord
_CRC_TABLE: list[int] = []


def _crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli), as TFRecord framing uses: google-crc32c's C implementation
    (a dependency: the Python loop below takes minutes for the 500 MB NB101 file)."""
    try:
        import google_crc32c
    except ImportError:  # an install without it still reads, slowly
        return _crc32c_python(data)
    return google_crc32c.value(data)


def _crc32c_python(data: bytes) -> int:
    """CRC-32C in pure Python (reflected polynomial 0x82F63B78), table-driven."""
    if not _CRC_TABLE:
        for i in range(256):
            c = i
            for _ in range(8):
                c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
            _CRC_TABLE.append(c)
    crc = 0xFFFFFFFF
    for b in data:
        crc = _CRC_TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _masked_crc(data: bytes) -> int:
    crc = _crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def read_tfrecord(path: str | os.PathLike, *, verify: bool = True) -> Iterator[bytes]:
    """The records of a TFRecord file (no TensorFlow). Raises `ValueError` naming the file
    when it is truncated or a checksum fails (`verify=False` skips the data checksums,
    which in pure Python take minutes for the 500 MB NB101 file)."""
    with open(path, "rb") as f:
        offset = 0
        while header := f.read(12):
            if len(header) < 12:
                raise ValueError(f"{path}: truncated TFRecord header at byte {offset}")
            (length,) = struct.unpack("<Q", header[:8])
            if struct.unpack("<I", header[8:])[0] != _masked_crc(header[:8]):
                raise ValueError(f"{path}: corrupt TFRecord length at byte {offset}")
            data = f.read(length)
            footer = f.read(4)
            if len(data) < length or len(footer) < 4:
                raise ValueError(f"{path}: truncated TFRecord at byte {offset}")
            if verify and struct.unpack("<I", footer)[0] != _masked_crc(data):
                raise ValueError(f"{path}: corrupt TFRecord data at byte {offset}")
            offset += 16 + length
            yield data


def write_tfrecord(path: str | os.PathLike, records: list[bytes]) -> None:
    """Write records in TFRecord framing (for tests and small exports)."""
    with open(path, "wb") as f:
        for data in records:
            header = struct.pack("<Q", len(data))
            f.write(
                header
                + struct.pack("<I", _masked_crc(header))
                + data
                + struct.pack("<I", _masked_crc(data))
            )


# -------------------------------------------------------------------- ModelMetrics proto
# The release's nasbench/lib/model_metrics.proto (proto2, package nasbench), spelled as a
# descriptor so that `protobuf` (installed with orbax and tensorflow-datasets, C-backed)
# decodes the records: about 28x faster per record than a pure-Python wire parser.
_EVAL_FIELDS = {
    1: "current_epoch",
    2: "training_time",
    3: "train_accuracy",
    4: "validation_accuracy",
    5: "test_accuracy",
}
_MESSAGE_CLASS: list = []


def _model_metrics_class() -> type:
    """The `nasbench.ModelMetrics` message class, built once from its descriptor."""
    if _MESSAGE_CLASS:
        return _MESSAGE_CLASS[0]
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    F = descriptor_pb2.FieldDescriptorProto
    proto = descriptor_pb2.FileDescriptorProto(
        name="nasbench/lib/model_metrics.proto", package="nasbench", syntax="proto2"
    )
    ev = proto.message_type.add(name="EvaluationData")
    for number, name in _EVAL_FIELDS.items():
        ev.field.add(name=name, number=number, type=F.TYPE_DOUBLE, label=F.LABEL_OPTIONAL)
    ev.field.add(name="checkpoint_path", number=6, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    mm = proto.message_type.add(name="ModelMetrics")
    mm.field.add(
        name="evaluation_data",
        number=1,
        type=F.TYPE_MESSAGE,
        type_name=".nasbench.EvaluationData",
        label=F.LABEL_REPEATED,
    )
    mm.field.add(name="trainable_parameters", number=2, type=F.TYPE_INT32, label=F.LABEL_OPTIONAL)
    mm.field.add(name="total_time", number=3, type=F.TYPE_DOUBLE, label=F.LABEL_OPTIONAL)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    cls = message_factory.GetMessageClass(pool.FindMessageTypeByName("nasbench.ModelMetrics"))
    _MESSAGE_CLASS.append(cls)
    return cls


def parse_model_metrics(buf: bytes) -> dict:
    """Decode a serialized NB101 `ModelMetrics` message (`ValueError` if malformed)."""
    from google.protobuf.message import DecodeError

    msg = _model_metrics_class()()
    try:
        msg.ParseFromString(buf)
    except DecodeError as e:
        raise ValueError(f"parse_model_metrics: not a ModelMetrics message: {e}") from e
    return {
        "evaluation_data": [
            {name: getattr(ev, name) for name in _EVAL_FIELDS.values()}
            for ev in msg.evaluation_data
        ],
        "trainable_parameters": msg.trainable_parameters,
        "total_time": msg.total_time,
    }


def encode_model_metrics(metrics: dict) -> bytes:
    """Encode a `ModelMetrics` message (the inverse of `parse_model_metrics`)."""
    msg = _model_metrics_class()(
        trainable_parameters=metrics["trainable_parameters"], total_time=metrics["total_time"]
    )
    for ev in metrics["evaluation_data"]:
        msg.evaluation_data.add(**{name: ev[name] for name in _EVAL_FIELDS.values()})
    return msg.SerializeToString()


# ------------------------------------------------------------------------------- tables
def _nb101_table(
    name: str,
    matrices: np.ndarray,
    ops: np.ndarray,
    cols: dict,
    seed_cols: dict,
    seeds: tuple[int, ...],
    where: str,
) -> Table:
    """The table of cells given as host arrays int8[N, V, V], int8[N, V-2] (one per row)."""
    batch = NB101Arch(jnp.asarray(matrices), jnp.asarray(ops))
    keys = NB101().fingerprints_host(matrices, ops)
    order = np.lexsort((keys[:, 1], keys[:, 0]))
    sorted_keys = keys[order]
    same = np.all(sorted_keys[1:] == sorted_keys[:-1], axis=1)
    if same.any():
        raise ValueError(
            f"{where}: two distinct cells share a fingerprint; cannot index this table inside jit"
        )
    table = table_from_numpy(
        NB101(),
        name,
        {k: np.asarray(v)[order] for k, v in cols.items()},
        {k: np.asarray(v)[order] for k, v in seed_cols.items()},
        seeds,
        num_rows=len(matrices),
    )
    return table.with_row_keys(jnp.asarray(sorted_keys), jax.tree.map(lambda x: x[order], batch))


def load_nb101(path: str | os.PathLike | None = None, *, verify: bool = True) -> Table:
    """NAS-Bench-101 from the official `nasbench_only108.tfrecord` / `nasbench_full.tfrecord`
    or from the compact subset `nb101_subset_naslib.csv.gz` (a file or a folder with it).

    From a tfrecord: per training budget (4, 12, 36, 108 epochs), `valid_acc`, `test_acc`,
    `train_acc` and `train_time_s` of the final evaluation, for `dataset="cifar10"`, the
    mean over the repeats and per repeat (`seed` 0, 1, 2); `params_M` from the trainable
    parameters. From the subset: `valid_acc` at 108 epochs, NASLib's `params_M` and
    `flops_M`, and the zero-cost proxies as metrics `zc_*` (epochs None). The subset lists
    some cells several times (different raw specs of one model, each with one seed's
    accuracy); its table has one row per cell with the mean of those rows.
    Accuracies are in percent.
    """
    p = pathlib.Path(path) if path is not None else None
    if p is None or p.is_dir():
        from jnas.bench._load import _resolve

        p = _resolve(p, "nb101_subset_naslib.csv.gz")
    if not p.exists():
        raise FileNotFoundError(
            f"{p} does not exist; expected nasbench_only108.tfrecord, "
            "nasbench_full.tfrecord or nb101_subset_naslib.csv.gz"
        )
    if p.name.endswith(".csv.gz") or p.name.endswith(".csv"):
        return _load_subset(p)
    return _load_tfrecord(p, verify)


def _load_subset(p: pathlib.Path) -> Table:
    space = NB101()
    rows = read_csv_rows(p)
    if not rows or "adjacency_7x7_rowmajor" not in rows[0]:
        raise ValueError(
            f"{p}: expected the columns adjacency_7x7_rowmajor, ops, val_acc_108ep, ..."
        )
    groups: dict[str, list[int]] = {}
    archs = []
    for i, r in enumerate(rows):
        bits, names = r["adjacency_7x7_rowmajor"], r["ops"].split("|")
        n = len(names)
        if len(bits) != n * n or set(bits) - {"0", "1"}:
            raise ValueError(f"{p}: row {i}: expected {n}*{n} 0/1 digits; got {bits!r}")
        matrix = np.frombuffer(bits.encode(), np.uint8).reshape(n, n) - ord("0")
        full, op_ids = space.spec_arrays(matrix, names, where=f"{p}: row {i}")
        h = space.hash_arrays(full, op_ids)
        if h not in groups:
            groups[h] = []
            archs.append((full, op_ids))
        groups[h].append(i)

    def column(name: str) -> np.ndarray:
        out = []
        for members in groups.values():
            vals = [float(rows[i][name]) for i in members if rows[i][name] not in ("", None)]
            out.append(np.mean(vals) if vals else np.nan)
        return np.asarray(out)

    cols = {
        ("cifar10", "valid_acc", 108): column("val_acc_108ep"),
        ("cifar10", "params_M", None): column("params_M_naslib"),
        ("cifar10", "flops_M", None): column("flops_M_naslib"),
    }
    for name in rows[0]:
        if name.startswith("zc_"):
            cols[("cifar10", name, None)] = column(name)
    return _nb101_table(
        "NB101-subset",
        np.stack([a for a, _ in archs]),
        np.stack([o for _, o in archs]),
        cols,
        {},
        (),
        str(p),
    )


def _load_tfrecord(p: pathlib.Path, verify: bool) -> Table:
    space = NB101()
    cells: dict[str, tuple[tuple[np.ndarray, np.ndarray], dict]] = {}
    for k, record in enumerate(read_tfrecord(p, verify=verify)):
        try:
            module_hash, epochs, adjacency, operations, metrics = json.loads(record)
            n = round(len(adjacency) ** 0.5)
            matrix = np.array([int(c) for c in adjacency], np.int64).reshape(n, n)
            parsed = parse_model_metrics(base64.b64decode(metrics))
        except (ValueError, TypeError) as err:
            raise ValueError(f"{p}: record {k} is not an NB101 record ({err})") from err
        if module_hash not in cells:
            cells[module_hash] = (
                space.spec_arrays(matrix, operations.split(","), where=f"{p}: record {k}"),
                {},
            )
        cells[module_hash][1].setdefault(int(epochs), []).append(parsed)
    if not cells:
        raise ValueError(f"{p}: no records")
    budgets = sorted({e for _, by in cells.values() for e in by})
    repeats = max(len(v) for _, by in cells.values() for v in by.values())
    seeds = tuple(range(repeats))
    cols, seed_cols = {}, {}
    names = {
        "valid_acc": "validation_accuracy",
        "test_acc": "test_accuracy",
        "train_acc": "train_accuracy",
        "train_time_s": "training_time",
    }
    for e in budgets:
        for metric, field in names.items():
            per = np.full((len(cells), repeats), np.nan)
            for row, (_, by) in enumerate(cells.values()):
                for r, m in enumerate(by.get(e, [])):
                    value = m["evaluation_data"][-1][field]
                    per[row, r] = 100 * value if metric.endswith("acc") else value
            seed_cols[("cifar10", metric, e)] = per
            counts = np.sum(~np.isnan(per), axis=1)
            cols[("cifar10", metric, e)] = np.where(
                counts > 0, np.nansum(per, axis=1) / np.maximum(counts, 1), np.nan
            )
    params = [next(iter(by.values()))[0]["trainable_parameters"] / 1e6 for _, by in cells.values()]
    cols[("cifar10", "params_M", None)] = np.asarray(params)
    return _nb101_table(
        "NB101",
        np.stack([m for (m, _), _ in cells.values()]),
        np.stack([o for (_, o), _ in cells.values()]),
        cols,
        seed_cols,
        seeds,
        str(p),
    )
