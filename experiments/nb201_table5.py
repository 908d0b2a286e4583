"""NAS-Bench-201 Table 5 with jnas' black-box searchers on the simulated clock.

    python experiments/nb201_table5.py --seeds 500 --model-seeds 100 --out benchmarks/results
    python experiments/nb201_table5.py --seeds 500 --model-seeds 100 --only nao  # some rows

Search on CIFAR-10 (25k/25k train/valid split) by the 12-epoch validation accuracy, each
query charged its 12-epoch training time, 12,000 simulated seconds; report the final
incumbent's 200-epoch accuracies. Writes `nb201_table5.json` and `nb201_table5.md`, with
Welch's t statistic of each searcher's CIFAR-10 test accuracy against random search.
Hyperband and BOHB evaluate at 12 or 200 epochs, each query charged its training time at
that fidelity; their incumbent is the best 200-epoch validation accuracy.
The model-based searchers (BO, BANANAS) fit a surrogate every round, so they may run fewer
seeds (`--model-seeds`); every row states its seed count. (XLA:CPU's multi-threaded Eigen
kernels deadlock on these vmapped GP programs: the script turns them off.)
`--only` (the registry's short names) reruns those rows and random search, the reference
of every t test, and keeps the other rows of the existing JSON.
"""

from __future__ import annotations

import argparse
import os

# XLA:CPU's multi-threaded Eigen kernels deadlock here on vmapped GP searches (every thread
# idle, the result never ready; seen with 2 cores): run them single-threaded per op.
os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false"
).strip()
import json
import pathlib
import time

import jax

from jnas import bench, search
from jnas.bench._report import NB201_REPORT, summarize
from jnas.spaces import NB201

MODEL_BASED = tuple(e.label for e in search.REGISTRY.values() if e.model_based)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=500)
    parser.add_argument(
        "--model-seeds",
        type=int,
        default=None,
        help="seeds of the model-based searchers (default: --seeds)",
    )
    parser.add_argument("--budget", type=float, default=12000)
    parser.add_argument("--nasbench", default=None)
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument(
        "--only",
        nargs="+",
        default=[],
        choices=list(search.REGISTRY),
        help="rerun only these rows (with random search), keep the rest",
    )
    args = parser.parse_args()
    table = bench.load_nb201(args.nasbench)
    obj = bench.objective(table, dataset="cifar10-valid", metric="valid_acc", epochs=12)
    multi = bench.objective(table, dataset="cifar10-valid", metric="valid_acc", epochs=(12, 200))
    rows, finals = [], {}
    for short, entry in search.REGISTRY.items():
        if args.only and short not in args.only and short != "rs":
            continue
        name, make = entry.label, entry.make
        start = time.perf_counter()
        seeds = args.model_seeds if name in MODEL_BASED and args.model_seeds else args.seeds
        searcher = make(NB201())
        sim = bench.simulate(
            searcher,
            multi if searcher.fidelities > 1 else obj,
            key=jax.random.key(0),
            num_seeds=seeds,
            budget_s=args.budget,
            chunk=25 if name in MODEL_BASED else min(seeds, 500),
        )
        row = summarize(sim, table, NB201_REPORT)
        row.update(searcher=name, seeds=seeds, wall_s=round(time.perf_counter() - start, 2))
        print(f"{name}: {seeds} seeds in {row['wall_s']} s", flush=True)
        finals[name] = sim.report(table, dataset="cifar10", metric="test_acc", epochs=200)[:, -1]
        rows.append(row)
    for row in rows:
        t, p = bench.welch_test(finals[row["searcher"]], finals["random search"])
        row["vs_random_search"] = {"welch_t": round(t, 2), "p_one_sided": p}
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.only and (out / "nb201_table5.json").exists():  # keep the rows not rerun
        ran = {row["searcher"]: row for row in rows}
        old = json.loads((out / "nb201_table5.json").read_text())["rows"]
        rows = [ran.pop(row["searcher"], row) for row in old] + list(ran.values())
    meta = {
        "seeds": args.seeds,
        "budget_s": args.budget,
        "fitness": obj.description,
        "device": jax.devices()[0].platform,
    }
    (out / "nb201_table5.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    cols = [f"{d}/{m}/{e}" for d, m, e in NB201_REPORT]
    lines = [
        f"NB201 protocol: {args.seeds} seeds, {args.budget:.0f} s budget, "
        f"{obj.description}; mean +- std of the final incumbent (200 epochs).",
        "",
        "| searcher | seeds | "
        + " | ".join(c.rsplit("/", 1)[0] for c in cols)
        + " | t vs RS (CIFAR-10 test) | p |",
        "|---" * (len(cols) + 4) + "|",
    ]
    for row in rows:
        cells = " | ".join(f"{row[c]['mean']:.2f} +- {row[c]['std']:.2f}" for c in cols)
        vs = row["vs_random_search"]
        lines.append(
            f"| {row['searcher']} | {row['seeds']} | {cells} | {vs['welch_t']:.2f} | "
            f"{vs['p_one_sided']:.1e} |"
        )
    (out / "nb201_table5.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
