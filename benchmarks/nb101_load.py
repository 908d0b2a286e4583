"""Loading NAS-Bench-101: the compact subset, and a synthetic `nasbench_only108.tfrecord` of
the release's size (423,624 distinct cells x 3 repeats = 1,270,872 records) written in the
release's format (TFRecord framing, JSON rows, protobuf `ModelMetrics`).

    python benchmarks/nb101_load.py --out benchmarks/results
    python benchmarks/nb101_load.py --cells 20000          # a quicker, smaller file

Writes `nb101_load_<platform>.json`: seconds to write the synthetic file (not jnas' cost),
to load it with and without checksums, per record, and to load the subset.
"""

from __future__ import annotations

import argparse
import base64
import json
import pathlib
import platform
import tempfile
import time

import jax
import numpy as np

from jnas import bench
from jnas.bench._nb101 import write_tfrecord
from jnas.spaces import NB101

RELEASE_CELLS = 423_624


def distinct_cells(key: jax.Array, n: int) -> tuple[np.ndarray, np.ndarray]:
    """n distinct valid cells (host arrays), sampled in batches and deduplicated."""
    space = NB101()
    sample = jax.jit(jax.vmap(space.sample))
    seen: dict[tuple[int, int], int] = {}
    matrices, ops = [], []
    i = 0
    while len(seen) < n:
        batch = sample(jax.random.split(jax.random.fold_in(key, i), 100_000))
        m, o = np.asarray(batch.matrix), np.asarray(batch.ops)
        for j, fp in enumerate(map(tuple, space.fingerprints_host(m, o).tolist())):
            if fp not in seen and len(seen) < n:
                seen[fp] = len(matrices)
                matrices.append(m[j])
                ops.append(o[j])
        i += 1
    return np.stack(matrices), np.stack(ops)


def write_release(path: pathlib.Path, matrices: np.ndarray, ops: np.ndarray) -> None:
    space = NB101()
    names = ["input", *space.ops, "output"]
    records = []
    for c, (m, o) in enumerate(zip(matrices, ops, strict=True)):
        adjacency = "".join(map(str, m.reshape(-1).tolist()))
        labels = ",".join(["input", *[names[1 + k] for k in o.tolist()], "output"])
        for r in range(3):
            metrics = bench.encode_model_metrics({"evaluation_data": [
                {"current_epoch": 108.0, "training_time": 1000.0 + r,
                 "train_accuracy": 1.0, "validation_accuracy": 0.9, "test_accuracy": 0.9}],
                "trainable_parameters": 1_000_000 + c, "total_time": 1000.0})
            records.append(json.dumps([f"{c:032x}", 108, adjacency, labels,
                                       base64.b64encode(metrics).decode()]).encode())
    write_tfrecord(path, records)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=RELEASE_CELLS)
    parser.add_argument("--out", default=None, help="folder for the JSON")
    args = parser.parse_args()
    result: dict = {"cpu": platform.processor() or platform.machine(), "cells": args.cells,
                    "records": 3 * args.cells}
    start = time.perf_counter()
    bench.load_nb101()  # the subset, from JNAS_NASBENCH_DIR
    result["subset_load_s"] = round(time.perf_counter() - start, 3)
    with tempfile.TemporaryDirectory() as folder:
        path = pathlib.Path(folder) / "nasbench_only108.tfrecord"
        start = time.perf_counter()
        write_release(path, *distinct_cells(jax.random.key(0), args.cells))
        result["write_s"] = round(time.perf_counter() - start, 1)
        result["file_MB"] = round(path.stat().st_size / 1e6, 1)
        for verify in (True, False):
            start = time.perf_counter()
            table = bench.load_nb101(path, verify=verify)
            seconds = time.perf_counter() - start
            assert table.num_rows == args.cells, table.num_rows
            result[f"load_s_verify_{verify}"] = round(seconds, 1)
            result[f"us_per_record_verify_{verify}"] = round(1e6 * seconds / (3 * args.cells), 1)
    print(json.dumps(result, indent=1))
    if args.out:
        out = pathlib.Path(args.out) / f"nb101_load_{jax.devices()[0].platform}.json"
        out.write_text(json.dumps(result, indent=1) + "\n")
        print(f"wrote {out}")


if __name__ == "__main__":
    main()
