"""Loading NAS-Bench-101: the compact subset, and a synthetic `nasbench_only108.tfrecord` of
the release's size (423,624 cells x 3 repeats = 1,270,872 records) written in the release's
format (TFRecord framing, JSON rows, protobuf `ModelMetrics`). The cells are distinct
random 7-vertex DAGs under the release's rules (each vertex given a random earlier parent
and later child; as many as 40 draws of 200k find, up to `--cells`; the JSON says how many
were written).

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
import tempfile
import time

import jax
import numpy as np
from _child import cpu_name

from jnas import bench
from jnas.bench._nb101 import write_tfrecord
from jnas.spaces import NB101

RELEASE_CELLS = 423_624


def distinct_cells(seed: int, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Up to n distinct valid 7-vertex cells (every vertex on an input -> output path, at
    most 9 edges, the release's rules), drawn as random DAGs in NumPy and deduplicated by
    fingerprint; with their fingerprints."""
    space = NB101()
    rng = np.random.default_rng(seed)
    v = space.num_vertices
    found: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
    rows = np.arange(200_000)[:, None]
    for _ in range(40):
        # every vertex gets a random earlier parent and a random later child, so each lies
        # on an input -> output path; keep the DAGs with at most 9 edges
        m = np.zeros((200_000, v, v), np.int32)
        parents = (rng.random((200_000, v - 1)) * np.arange(1, v)).astype(int)
        m[rows, parents, np.arange(1, v)] = 1
        children = (
            np.arange(v - 1)
            + 1
            + (rng.random((200_000, v - 1)) * (v - 1 - np.arange(v - 1))).astype(int)
        )
        m[rows, np.arange(v - 1), children] = 1
        ok = m.sum((1, 2)) <= space.max_edges
        m = m[ok].astype(np.int8)
        o = rng.integers(0, space.num_ops, (len(m), v - 2)).astype(np.int8)
        for mm, oo, key in zip(
            m, o, map(tuple, space.fingerprints_host(m, o).tolist()), strict=True
        ):
            found.setdefault(key, (mm, oo))
        if len(found) >= n:
            break
    cells = list(found.items())[:n]
    return (
        np.stack([c[1][0] for c in cells]),
        np.stack([c[1][1] for c in cells]),
        np.asarray([c[0] for c in cells], np.uint32),
    )


def write_release(
    path: pathlib.Path, matrices: np.ndarray, ops: np.ndarray, keys: np.ndarray
) -> None:
    space = NB101()
    names = ["input", *space.ops, "output"]
    records = []
    for c, (m, o) in enumerate(zip(matrices, ops, strict=True)):
        adjacency = "".join(map(str, m.reshape(-1).tolist()))
        labels = ",".join(["input", *[names[1 + k] for k in o.tolist()], "output"])
        for r in range(3):
            metrics = bench.encode_model_metrics(
                {
                    "evaluation_data": [
                        {
                            "current_epoch": 108.0,
                            "training_time": 1000.0 + r,
                            "train_accuracy": 1.0,
                            "validation_accuracy": 0.9,
                            "test_accuracy": 0.9,
                        }
                    ],
                    "trainable_parameters": 1_000_000 + c,
                    "total_time": 1000.0,
                }
            )
            module_hash = f"{int(keys[c, 0]):08x}{int(keys[c, 1]):08x}"
            records.append(
                json.dumps(
                    [module_hash, 108, adjacency, labels, base64.b64encode(metrics).decode()]
                ).encode()
            )
    write_tfrecord(path, records)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=RELEASE_CELLS)
    parser.add_argument("--out", default=None, help="folder for the JSON")
    args = parser.parse_args()
    result: dict = {
        "cpu": cpu_name(),
        "cells": args.cells,
        "records": 3 * args.cells,
    }
    start = time.perf_counter()
    bench.load_nb101()  # the subset, from JNAS_NASBENCH_DIR
    result["subset_load_s"] = round(time.perf_counter() - start, 3)
    with tempfile.TemporaryDirectory() as folder:
        path = pathlib.Path(folder) / "nasbench_only108.tfrecord"
        start = time.perf_counter()
        matrices, ops, keys = distinct_cells(0, args.cells)
        distinct = len(keys)
        result["cells_written"] = distinct
        result["records"] = 3 * distinct
        write_release(path, matrices, ops, keys)
        result["write_s"] = round(time.perf_counter() - start, 1)
        result["file_MB"] = round(path.stat().st_size / 1e6, 1)
        for verify in (True, False):
            start = time.perf_counter()
            table = bench.load_nb101(path, verify=verify)
            seconds = time.perf_counter() - start
            assert table.num_rows == distinct, (table.num_rows, distinct)
            result[f"load_s_verify_{verify}"] = round(seconds, 1)
            result[f"us_per_record_verify_{verify}"] = round(1e6 * seconds / (3 * distinct), 1)
    print(json.dumps(result, indent=1))
    if args.out:
        out = pathlib.Path(args.out) / f"nb101_load_{jax.devices()[0].platform}.json"
        out.write_text(json.dumps(result, indent=1) + "\n")
        print(f"wrote {out}")


if __name__ == "__main__":
    main()
