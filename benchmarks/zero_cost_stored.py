"""jnas' data-free zero-cost proxies against NAS-Bench-Suite-Zero's stored values (#18 §1):
the NB101 subset (500 rows, NASLib's NB101 network: stem 128, 3 stacks of 3 cells) and the
NB301 subset (725 DARTS cells, C=32 and 8 cells: NASLib's parameter counts within 1%). For each cell the discrete network is built
(`space.build`, PyTorch's default init, key `--seed`), then SynFlow (float64, batch norm
removed, all-ones input, |w|), the l2 norm of the conv / linear weights, the parameter count
and the FLOPs are computed. Reported per proxy: the Spearman between jnas' scores and the
stored `zc_*` values, and the Spearman with the stored accuracy from each.

    python benchmarks/zero_cost_stored.py --space nb101 --cells 100   # ~10 min, 2 CPU cores
    python benchmarks/zero_cost_stored.py --space nb301 --cells 100
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import os
import pathlib
import time

import jax
import numpy as np
from flax import nnx
from scipy import stats

from jnas import proxies
from jnas.nn import count_flops, count_params, without_batch_norm
from jnas.spaces import DARTS, NB101

HERE = pathlib.Path(__file__).parent
NB301_OPS = tuple(op for op in DARTS().ops if op != "none")  # NASLib's compact op indices


def nb301_genotype(compact: str) -> str:
    """NASLib's compact `input:op,...;input:op,...` as a DARTS genotype string."""
    parts = []
    for name, cell in zip(("normal", "reduce"), compact.split(";"), strict=True):
        pairs = [(NB301_OPS[int(o)], int(i)) for i, o in (p.split(":") for p in cell.split(","))]
        parts.append(f"{name}={pairs!r}, {name}_concat=[2, 3, 4, 5]")
    return f"Genotype({', '.join(parts)})"


def rows_and_models(space_name: str, root: pathlib.Path):
    if space_name == "nb101":
        space = NB101()
        with gzip.open(root / "nb101_subset_naslib.csv.gz", "rt") as f:
            rows = list(csv.DictReader(f))

        def build(r, rngs):
            names = r["ops"].split("|")
            m = np.frombuffer(r["adjacency_7x7_rowmajor"].encode(), np.uint8).reshape(7, 7) - 48
            return space.build(space.from_spec(m, names), rngs=rngs)

        return rows, build, "val_acc_108ep"
    space = DARTS()
    with gzip.open(root / "nb301_subset_naslib.csv.gz", "rt") as f:
        rows = list(csv.DictReader(f))

    def build(r, rngs):
        arch = space.from_string(nb301_genotype(r["genotype_naslib"]))
        return space.build(arch, channels=32, num_cells=8, rngs=rngs)  # NASLib: 0.93M params

    return rows, build, "val_acc_surrogate"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--space", choices=("nb101", "nb301"), default="nb101")
    p.add_argument("--cells", type=int, default=100, help="first N rows (file order)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None)
    args = p.parse_args()
    root = pathlib.Path(os.environ.get("JNAS_NASBENCH_DIR", HERE.parent.parent / "shared/nasbench"))
    rows, build, acc_key = rows_and_models(args.space, root)
    rows = rows[: args.cells]
    ours: dict[str, list[float]] = {"synflow": [], "l2_norm": [], "params": [], "flops": []}
    t0 = time.perf_counter()
    for i, r in enumerate(rows):
        model = build(r, nnx.Rngs(args.seed))
        model.eval()
        ours["params"].append(count_params(model, exclude=("aux",)))
        ours["flops"].append(count_flops(model, (1, 32, 32, 3)))
        graph, state = nnx.split(model)

        def apply(params, x, graph=graph):
            out = nnx.merge(graph, params)(x)
            return out[0] if isinstance(out, tuple) else out

        ours["l2_norm"].append(float(proxies.l2_norm(nnx.state(model, nnx.Param))))
        with jax.enable_x64(True), without_batch_norm():
            params64 = jax.tree.map(lambda a: np.asarray(a, np.float64), state)
            ours["synflow"].append(float(proxies.synflow(apply, params64, (1, 32, 32, 3))))
        if i % 10 == 0:
            print(f"{i + 1}/{len(rows)} cells, {time.perf_counter() - t0:.0f} s", flush=True)
    seconds = time.perf_counter() - t0
    acc = np.asarray([float(r[acc_key]) for r in rows])
    stored_name = {"synflow": "zc_synflow", "l2_norm": "zc_l2_norm"}
    report = {}
    for name, values in ours.items():
        x = np.asarray(values, np.float64)
        col = stored_name.get(name)
        if col is None:  # params and FLOPs are stored as NASLib's own counts
            col = {"params": "params_M_naslib", "flops": "flops_M_naslib"}[name]
        stored = np.asarray([float(r[col]) if r[col] else np.nan for r in rows])
        ok = np.isfinite(stored) & np.isfinite(x)
        report[name] = {
            "stored_column": col,
            "spearman_jnas_vs_stored": float(stats.spearmanr(x[ok], stored[ok])[0]),
            "spearman_acc_jnas": float(stats.spearmanr(x[ok], acc[ok])[0]),
            "spearman_acc_stored": float(stats.spearmanr(stored[ok], acc[ok])[0]),
            "cells": int(ok.sum()),
        }
        s = report[name]
        print(
            f"{name:8s} jnas vs stored {s['spearman_jnas_vs_stored']:.3f}; Spearman with "
            f"accuracy: jnas {s['spearman_acc_jnas']:.3f}, stored {s['spearman_acc_stored']:.3f}"
        )
    out = pathlib.Path(args.out or HERE / "results" / f"zero_cost_stored_{args.space}.json")
    out.write_text(
        json.dumps(
            {
                "space": args.space,
                "rows": len(rows),
                "seconds": seconds,
                "accuracy": acc_key,
                "proxies": report,
                "machine": f"{os.cpu_count()} CPU cores, jax {jax.__version__}",
            },
            indent=1,
        )
    )
    print("wrote", out)


if __name__ == "__main__":
    main()
