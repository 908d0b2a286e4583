"""Every black-box searcher on the NAS-Bench-101 subset and on the NATS-Bench size space.

    python experiments/searchers_nb101_nats.py --seeds 500 --model-seeds 100
    python experiments/searchers_nb101_nats.py --only bo bo-wl   # rerun some rows

Searchers are named as in `jnas.search.REGISTRY` (`--skip`, `--only`); `--only` reruns
those rows (and random search, the reference of every t test) and keeps the others of the
existing JSON.

The compact tables in `$JNAS_NASBENCH_DIR` carry no training times for these two, so the
budget is a number of evaluations (`cost="evaluations"`):

- NB101: the subset table holds 292 of NB101's 423k cells (CIFAR-10 validation accuracy at
  108 epochs, mean of the listed runs), so the search is restricted to those cells
  (`bench.restrict`: mutation moves to one of the 8 nearest cells, decisions snap to the
  nearest cell); budget 50 evaluations.
- NATS size space: all 32,768 channel configurations, CIFAR-10 (`cifar10-valid`)
  validation accuracy at 90 epochs (the only fidelity of the compact table); budget 100
  evaluations; the incumbent also reported on CIFAR-100 and ImageNet16-120.

Hyperband and BOHB need two fidelities, which neither compact table has: they are not run
here. The WL-kernel BO needs cell graphs (`adjacency`), which the NATS size space has not.
Writes `searchers_nb101_nats.json` / `.md` with Welch's t of each searcher against random
search on the searched metric.
"""

from __future__ import annotations

import argparse
import os

# XLA:CPU wedges on vmapped GP searches here (every thread idle, the result never ready;
# seen with 2 cores): with multi-threaded Eigen at any chunk size; with it off, still on
# the NB101 subset at 16 or 25 seeds per program, but not at 4 (hence chunk=4 below).
os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false"
).strip()
import json
import pathlib
import time

import jax
import numpy as np

from jnas import bench, search
from jnas.spaces import NATSSize

# The single-fidelity searchers (the NB101 subset and NATS size tables have one fidelity).
SEARCHERS = {name: e for name, e in search.single_objective().items() if not e.multi_fidelity}


def settings(name: str, nasbench: str | None) -> dict:
    if name == "nb101":
        table = bench.restrict(bench.load_nb101(nasbench))
        return {
            "table": table,
            "space": table.space,
            "budget": 50,
            "search": ("cifar10", "valid_acc", 108),
            "report": [("cifar10", "valid_acc", 108)],
        }
    table = bench.load_nats_sss(nasbench)
    return {
        "table": table,
        "space": NATSSize(),
        "budget": 100,
        "search": ("cifar10-valid", "valid_acc", 90),
        "report": [
            ("cifar10-valid", "valid_acc", 90),
            ("cifar100", "valid_acc", 90),
            ("ImageNet16-120", "valid_acc", 90),
        ],
    }


def run_space(name: str, args: argparse.Namespace) -> dict:
    cfg = settings(name, args.nasbench)
    table, space = cfg["table"], cfg["space"]
    dataset, metric, epochs = cfg["search"]
    obj = bench.objective(table, dataset=dataset, metric=metric, epochs=epochs, cost="evaluations")
    best = float(np.nanmax(np.asarray(table.column(dataset, metric, epochs))))
    rows, finals = [], {}
    for short, entry in SEARCHERS.items():
        label, make, model_based = entry.label, entry.make, entry.model_based
        if args.only and short not in args.only and short != "rs":
            continue
        if short in args.skip:
            rows.append({"searcher": label, "skipped": "--skip"})
            continue
        try:
            searcher = make(space)
        except ValueError as err:  # a capability the space lacks
            rows.append({"searcher": label, "skipped": str(err)})
            print(f"{name} {label}: skipped ({err})", flush=True)
            continue
        seeds = args.model_seeds if model_based else args.seeds
        start = time.perf_counter()
        sim = bench.simulate(
            searcher,
            obj,
            key=jax.random.key(0),
            num_seeds=seeds,
            budget_s=cfg["budget"],
            chunk=4 if model_based else 500,
        )
        row = {"searcher": label, "seeds": seeds, "wall_s": round(time.perf_counter() - start, 2)}
        for d, m, e in cfg["report"]:
            v = sim.report(table, dataset=d, metric=m, epochs=e)[:, -1]
            row[f"{d}/{m}/{e}"] = {"mean": float(np.mean(v)), "std": float(np.std(v))}
        finals[label] = sim.report(table, dataset=dataset, metric=metric, epochs=epochs)[:, -1]
        row["regret"] = float(best - np.mean(finals[label]))
        print(
            f"{name} {label}: {seeds} seeds in {row['wall_s']} s, {np.mean(finals[label]):.2f}",
            flush=True,
        )
        rows.append(row)
    for row in rows:
        if "seeds" in row:
            t, p = bench.welch_test(finals[row["searcher"]], finals["random search"])
            row["vs_random_search"] = {"welch_t": round(t, 2), "p_one_sided": p}
    return {
        "table": table.name,
        "budget_evaluations": cfg["budget"],
        "searched": f"{dataset}/{metric}/{epochs}",
        "best_in_table": best,
        "report": [f"{d}/{m}/{e}" for d, m, e in cfg["report"]],
        "rows": rows,
    }


def markdown(name: str, res: dict) -> list[str]:
    lines = [
        f"## {name}: {res['table']}, {res['budget_evaluations']} evaluations, searched "
        f"by {res['searched']} (table best {res['best_in_table']:.2f})",
        "",
        "| searcher | seeds | " + " | ".join(res["report"]) + " | regret | t vs RS | p |",
        "|---" * (len(res["report"]) + 5) + "|",
    ]
    for row in res["rows"]:
        if "skipped" in row:
            lines.append(f"| {row['searcher']} | - | not run: {row['skipped']} |")
            continue
        cells = " | ".join(f"{row[c]['mean']:.2f} +- {row[c]['std']:.2f}" for c in res["report"])
        vs = row["vs_random_search"]
        lines.append(
            f"| {row['searcher']} | {row['seeds']} | {cells} | {row['regret']:.2f} "
            f"| {vs['welch_t']:.2f} | {vs['p_one_sided']:.1e} |"
        )
    return [*lines, ""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=500)
    parser.add_argument("--model-seeds", type=int, default=100)
    parser.add_argument(
        "--spaces", nargs="+", default=["nb101", "nats_size"], choices=["nb101", "nats_size"]
    )
    parser.add_argument(
        "--skip",
        nargs="+",
        default=[],
        choices=list(SEARCHERS),
        help="searchers not to run (their rows say so)",
    )
    parser.add_argument(
        "--only",
        nargs="+",
        default=[],
        choices=list(SEARCHERS),
        help="rerun only these rows (with random search), keep the rest",
    )
    parser.add_argument("--nasbench", default=None)
    parser.add_argument("--out", default="benchmarks/results")
    args = parser.parse_args()
    results = {name: run_space(name, args) for name in args.spaces}
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "searchers_nb101_nats.json"
    if args.only and path.exists():  # keep the rows (and spaces) this run did not redo
        old = json.loads(path.read_text())
        for name, res in results.items():
            if name in old:
                ran = {row["searcher"]: row for row in res["rows"]}
                res["rows"] = [ran.get(row["searcher"], row) for row in old[name]["rows"]]
        results = {**{k: v for k, v in old.items() if k != "meta"}, **results}
    meta = {
        "seeds": args.seeds,
        "model_seeds": args.model_seeds,
        "device": jax.devices()[0].platform,
    }
    path.write_text(json.dumps({"meta": meta, **results}, indent=2))
    lines = [
        "Every searcher on the NB101 subset and the NATS size space (mean +- std of the "
        "final incumbent; Welch's t against random search on the searched metric; "
        "Hyperband/BOHB need two fidelities, which these compact tables lack).",
        "",
    ]
    for name, res in results.items():
        lines += markdown(name, res)
    (out / "searchers_nb101_nats.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
