"""SynFlow over the whole NB201 space in one compiled program, against the table.

    python benchmarks/zero_cost_nb201.py --out benchmarks/results            # all 15,625
    python benchmarks/zero_cost_nb201.py --sample 512 --out benchmarks/results  # a random subset

As Abdelfattah et al. (ICLR 2021) compute it: the NB201 network (C=16, N=5), PyTorch's
default initialisation, every parameter made positive, batch norm removed, float64, one
all-ones 32x32x3 input; one fresh initialisation per cell (`fold_in(key, i)`, i its position
among the scored cells: a `--sample` run initialises a cell otherwise than the full run), the
cells streamed through one program in chunks (`jnas.proxies.score_architectures`).
Reports the Spearman rank correlation of the scores, and of the table's params and
FLOPs, with the 200-epoch test accuracy on CIFAR-10, CIFAR-100 and ImageNet16-120, next to
the published values (synflow 0.737 / 0.763 / 0.751), the wall time and the peak RSS.
Writes `zero_cost_nb201_<device>.json` and the scores per cell (`.npz`: `rows`, `synflow`).
"""

from __future__ import annotations

import argparse
import functools
import json
import pathlib
import platform
import resource
import time

import jax
import numpy as np
from scipy import stats

from jnas import bench, proxies

PUBLISHED = {"cifar10": 0.737, "cifar100": 0.763, "ImageNet16-120": 0.751}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", type=int, default=None, help="score N random cells only")
    parser.add_argument("--chunk", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--nasbench", default=None)
    parser.add_argument("--out", default=None, help="folder for the JSON (default: print only)")
    args = parser.parse_args()
    table = bench.load_nb201(args.nasbench)
    space = table.space
    rows = np.arange(space.size)
    if args.sample is not None:
        rows = np.sort(np.random.default_rng(args.seed).permutation(space.size)[: args.sample])
    n = len(rows)
    archs = jax.tree.map(lambda a: a[rows], space.enumerate())
    synflow = functools.partial(proxies.synflow, input_shape=(1, 32, 32, 3))
    start = time.perf_counter()
    with jax.enable_x64(True):
        scores = proxies.score_architectures(
            jax.random.key(args.seed),
            synflow,
            space,
            archs,
            chunk=args.chunk,
            batch_norm=False,
            channels=16,
            cells_per_stage=5,
            num_classes=10,
        )
    wall = time.perf_counter() - start
    spearman = {}
    for dataset, metric in (
        ("cifar10", "test_acc"),
        ("cifar10-valid", "valid_acc"),
        ("cifar100", "test_acc"),
        ("ImageNet16-120", "test_acc"),
    ):
        acc = np.asarray(table.column(dataset, metric, 200))[rows]
        row = {"synflow": float(stats.spearmanr(scores, acc).statistic)}
        for metric in ("params_M", "flops_M"):
            values = np.asarray(table.column(dataset, metric, None))[rows]
            row[metric] = float(stats.spearmanr(values, acc).statistic)
        row["published_synflow"] = PUBLISHED.get(dataset)
        spearman[f"{dataset}/{metric}/200"] = row
        print(dataset, json.dumps(row), flush=True)
    result = {
        "what": "Spearman with 200-epoch test accuracy over NB201 cells; synflow as "
        "Abdelfattah et al. (float64, |w|, ones input, no batch norm, C=16 N=5)",
        "cells": n,
        "sampled": args.sample is not None,
        "chunk": args.chunk,
        "seed": args.seed,
        "device": f"{jax.devices()[0].platform}: {jax.devices()[0].device_kind}",
        "host": platform.machine(),
        "jax": jax.__version__,
        "wall_s": round(wall, 1),
        "ms_per_cell": round(1000 * wall / n, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "spearman": spearman,
        "nan_scores": int(np.sum(~np.isfinite(scores))),
    }
    print(json.dumps({k: v for k, v in result.items() if k != "spearman"}))
    if args.out:
        tag = "" if args.sample is None else f"_sample{n}"
        path = pathlib.Path(args.out) / f"zero_cost_nb201_{jax.devices()[0].platform}{tag}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=1))
        np.savez_compressed(path.with_suffix(".npz"), rows=rows, synflow=scores)
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
