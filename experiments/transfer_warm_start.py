"""Learning to search across datasets (#19 §1-2): leave-one-dataset-out warm starts.

    python experiments/transfer_warm_start.py --seeds 500 --out benchmarks/results

For each rotation of NB201's three datasets (and of the NATS size space's), a zero-shot
portfolio of 10 cells is learned from the two source datasets' tables (Wistuba et al. 2015)
and evaluated first on the target, in front of regularized evolution and random search
(`search.warm_start`); the baselines start from scratch. The protocol on the target is
the repository's NB201 one (the target's 12-epoch validation accuracy, charged its training
time, 12,000 simulated s; NATS size: its 90-epoch validation accuracy, 100 evaluations).
Reported: each searcher's final mean +- std of the target's test accuracy (NATS: validation
accuracy, the only one tabulated), the first simulated time at which its mean incumbent
reaches regularized evolution's final mean, and Welch's t test of the warm-started
evolution at 25% of the budget against plain evolution at 100%. Writes
`transfer_warm_start.json`, `.md` and one regret plot per rotation.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import time

import jax
import numpy as np

from jnas import bench, search, transfer


def run_rotation(table, tasks, sources, target, args, budget, source_tasks):
    task = tasks[target]
    obj = task.objective(table)
    scores = transfer.suite_scores(table, [source_tasks[s] for s in sources])
    rows = transfer.portfolio(scores, args.portfolio)
    archs = table.space.from_index(rows)
    space = table.space
    makers = {
        "random search": lambda: search.random_search(space),
        "regularized evolution": lambda: search.regularized_evolution(space),
        "RS + portfolio": lambda: search.warm_start(search.random_search(space), space, archs),
        "REA + portfolio": lambda: search.warm_start(
            search.regularized_evolution(space), space, archs
        ),
    }
    key = jax.random.key(args.seed)
    sims = {
        name: bench.simulate(make(), obj, key=key, num_seeds=args.seeds, budget_s=budget)
        for name, make in makers.items()
    }
    quarter = bench.simulate(
        makers["REA + portfolio"](), obj, key=key, num_seeds=args.seeds, budget_s=budget / 4
    )
    report = (task.report_dataset, task.report_metric, task.report_epochs)
    curves = bench.regret_curves(sims, table, dataset=report[0], metric=report[1], epochs=report[2])
    best = float(np.nanmax(np.asarray(task.truth(table))))
    finals = {
        name: sim.report(table, dataset=report[0], metric=report[1], epochs=report[2])[:, -1]
        for name, sim in sims.items()
    }
    rea_final = float(np.nanmean(finals["regularized evolution"]))
    out: dict = {
        "target": target,
        "sources": list(sources),
        "report": "/".join(map(str, report)),
        "budget": budget,
        "portfolio_rows": [int(r) for r in rows],
        "portfolio_truth": [round(float(v), 2) for v in np.asarray(task.truth(table))[rows]],
        "best_in_table": round(best, 2),
        "searchers": {},
    }
    grid = curves["grid"]
    for name, values in finals.items():
        mean_regret = curves[name][0]
        reached = np.flatnonzero(best - mean_regret >= rea_final - 1e-9)
        out["searchers"][name] = {
            "final_mean": round(float(np.nanmean(values)), 3),
            "final_std": round(float(np.nanstd(values)), 3),
            "evals_mean": round(float(np.mean(sims[name].num_evals)), 1),
            "reaches_rea_final_at": float(grid[reached[0]]) if reached.size else None,
            "reaches_rea_final_at_fraction": (
                round(float(grid[reached[0]]) / budget, 4) if reached.size else None
            ),
        }
    q = quarter.report(table, dataset=report[0], metric=report[1], epochs=report[2])[:, -1]
    t, p = bench.welch_test(q[~np.isnan(q)], finals["regularized evolution"])
    out["rea_portfolio_at_25pct_vs_rea_at_100pct"] = {
        "mean_at_25pct": round(float(np.nanmean(q)), 3),
        "rea_final": round(rea_final, 3),
        "t": round(t, 2),
        "p": p,
    }
    plot = pathlib.Path(args.out) / f"transfer_{args.space_tag}_{target}.png"
    bench.plot_regret(curves, plot, ylabel=f"{target} regret ({report[1]}, %)")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=500)
    parser.add_argument("--portfolio", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--nasbench", default=None)
    parser.add_argument("--out", default="benchmarks/results")
    args = parser.parse_args()
    pathlib.Path(args.out).mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    spaces = {
        "nb201": (
            bench.load_nb201(args.nasbench),
            transfer.nb201_tasks(12),
            transfer.nb201_tasks(200),  # the sources' tables: their full 200-epoch results
            12_000.0,
        ),
        "nats_size": (
            bench.load_nats_sss(args.nasbench),
            transfer.nats_size_tasks(),
            transfer.nats_size_tasks(),
            100.0,
        ),
    }
    result: dict = {"seeds": args.seeds, "portfolio": args.portfolio, "rotations": []}
    for tag, (table, tasks, source_tasks, budget) in spaces.items():
        args.space_tag = tag
        for sources, target in transfer.leave_one_out(list(tasks)):
            row = run_rotation(table, tasks, sources, target, args, budget, source_tasks)
            row["space"] = tag
            result["rotations"].append(row)
            print(json.dumps(row), flush=True)
    result["wall_s"] = round(time.perf_counter() - start, 1)
    out = pathlib.Path(args.out)
    (out / "transfer_warm_start.json").write_text(json.dumps(result, indent=1))
    lines = [
        f"Leave-one-dataset-out warm starts, {args.seeds} seeds, portfolio of "
        f"{args.portfolio} from the two source datasets (`experiments/transfer_warm_start.py`).",
        "",
        "| space | target | searcher | final mean +- std | reaches REA's final at (share of "
        "budget) | evals |",
        "|---|---|---|---|---|---|",
    ]
    for r in result["rotations"]:
        for name, s in r["searchers"].items():
            frac = s["reaches_rea_final_at_fraction"]
            reach = "-" if frac is None else f"{100 * frac:.1f}%"
            if name == "regularized evolution":
                reach = "(the reference)"
            lines.append(
                f"| {r['space']} | {r['target']} | {name} | {s['final_mean']:.2f} +- "
                f"{s['final_std']:.2f} | {reach} | "
                f"{s['evals_mean']:.0f} |"
            )
    lines += ["", "REA + portfolio at 25% of the budget vs REA at 100% (Welch's t, one-sided):", ""]
    for r in result["rotations"]:
        w = r["rea_portfolio_at_25pct_vs_rea_at_100pct"]
        lines.append(
            f"- {r['space']} {r['target']}: {w['mean_at_25pct']:.2f} vs {w['rea_final']:.2f}, "
            f"t = {w['t']:.2f}, p = {w['p']:.1e}"
        )
    (out / "transfer_warm_start.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
