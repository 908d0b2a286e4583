"""One-shot search in the NB201 space, as the NB201 paper runs DARTS, GDAS and RSWS.

    python experiments/nb201_oneshot.py --method darts-v1 --dataset digits --seeds 3 \\
        --epochs 10 --out out/nb201_oneshot                       # CPU smoke, minutes
    python experiments/nb201_oneshot.py --method gdas --dataset cifar10 --seeds 3 \\
        --epochs 250 --channels 16 --cells 5                      # the paper's setting (GPU)

Per seed: search on the dataset's NB201 train/valid split, derive the cell every epoch,
look it up in the NB201 table when present, and log α, the cell and its table accuracy as
JSON lines, with an α heatmap and checkpoints every epoch (`--resume` continues a killed
run). Writes `summary.json` with every seed's final cell and its table accuracies.
"""

from __future__ import annotations

import argparse
import json
import pathlib

import numpy as np

from jnas.oneshot import REGISTRY
from jnas.recipes.oneshot import load_nb201_if_present, run_oneshot


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", default="darts-v1", choices=sorted(REGISTRY))
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--channels", type=int, default=8)
    parser.add_argument("--cells", type=int, default=1)
    parser.add_argument("--nasbench", default=None)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--out", default="out/nb201_oneshot")
    args = parser.parse_args()
    table = load_nb201_if_present(args.nasbench)
    out = pathlib.Path(args.out) / args.method / args.dataset
    runs = []
    for seed in range(args.seeds):
        runs.append(
            run_oneshot(
                args.method,
                args.dataset,
                seed=seed,
                epochs=args.epochs,
                batch_size=args.batch_size,
                channels=args.channels,
                cells_per_stage=args.cells,
                out=out / f"seed{seed}",
                resume=args.resume,
                table=table,
                data_dir=args.data_dir,
            )
        )
        print(f"seed {seed}: {runs[-1]['arch']}  {runs[-1].get('nb201', {})}", flush=True)
    summary = {
        "method": args.method,
        "dataset": args.dataset,
        "epochs": args.epochs,
        "channels": args.channels,
        "cells": args.cells,
        "runs": runs,
    }
    if table is not None:
        keys = runs[0]["nb201"].keys()
        summary["nb201_mean_std"] = {
            k: [
                float(np.mean([r["nb201"][k] for r in runs])),
                float(np.std([r["nb201"][k] for r in runs])),
            ]
            for k in keys
        }
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(f"wrote {out / 'summary.json'}")


if __name__ == "__main__":
    main()
