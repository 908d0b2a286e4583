"""HELP's meta-learned latency predictor on the NB201 latency tables (#19 §3).

    python experiments/help_latency.py --seeds 5 --out benchmarks/results

HELP's split (meta-train 9 device configurations, meta-validation 4 for model selection,
meta-test 6), 10 reference architectures measured on each unseen device, Spearman's rho
between predicted and measured latency over all 15,625 cells. Beside it: the FLOPs
baseline (CIFAR-10 FLOPs of the table) and the same MLP trained from scratch on the same 10
measurements. Then latency-constrained search on each meta-test device: the most accurate
cell on CIFAR-100 (the table's 200-epoch test accuracy) whose *predicted* latency is under
a bound (the device's 25th and 50th latency percentile, and MetaD2A+HELP's 11 ms on
gold_6226), judged by its true latency and accuracy against the true constrained optimum.
Writes `help_latency.json` (`jnas.recipes.transfer.run_latency`, also `jnas transfer
latency`).
"""

from __future__ import annotations

import argparse
import json
import pathlib
import tempfile
import time

from jnas.recipes.transfer import run_latency


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--nasbench", default=None)
    parser.add_argument("--out", default="benchmarks/results")
    args = parser.parse_args()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        result = run_latency(seeds=args.seeds, steps=args.steps, nasbench=args.nasbench, out=tmp)
    result["wall_s"] = round(time.perf_counter() - start, 1)
    print(json.dumps({k: result[k] for k in ("spearman", "constrained_summary")}, indent=1))
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "help_latency.json").write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
