"""Multi-fidelity search on NAS-Bench-NLP's real learning curves (#20 §2).

    python experiments/nbnlp_multifidelity.py --seeds 500 --out benchmarks/results

The 265 cells of the WikiText-2 table (`bench.restrict(bench.load_nbnlp())`), fitness the
validation perplexity (minimised), each query charged the benchmark GPU's wall time.
Random search and regularized evolution train every cell for 50 epochs; Hyperband,
BOHB and DEHB (eta = 3) use the fidelities 1, 3, 9, 27 and 50 epochs, and a promoted run
continues from the epoch it reached (`resume=True`: charged only the added epochs, as
NAS-Bench-NLP's own environment does; DEHB's trials at a higher rung are new cells, charged
from scratch unless the cell ran before); "no resume" rows charge every rung from scratch,
for comparison. Only 50-epoch evaluations become incumbents. The "+ curve stopping" rows
train every cell towards 50 epochs but check it at epochs 5, 10 and 20 and stop it when the
learning-curve forecast (Domhan et al. 2015's families, `bench.curve_stopping`) gives it
P < 0.05 of beating the incumbent: charged the epochs it ran, the searcher told the
forecast. Budget: `--runs` mean 50-epoch runs (one is 21,775 s); regret = the incumbent's
50-epoch validation perplexity minus the table's best (96.49), a seed without an incumbent
yet counted at the table's worst. Welch's t of each searcher's regret against random search
at several budgets (t > 0: lower regret than RS).
Writes `nbnlp_multifidelity.{json,md,png}`.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import time

import jax
import numpy as np

from jnas import bench, search

EPOCHS = (1, 3, 9, 27, 50)
CHECKS = (5, 10, 20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=500)
    parser.add_argument("--runs", type=float, default=20, help="budget in mean 50-epoch runs")
    parser.add_argument("--nasbench", default=None)
    parser.add_argument("--out", default="benchmarks/results")
    args = parser.parse_args()
    table = bench.restrict(bench.load_nbnlp(args.nasbench))
    space = table.space
    kw = {"dataset": "wikitext2", "metric": "valid_ppl", "minimize": True}
    single = bench.objective(table, epochs=50, **kw)
    multi = bench.objective(table, epochs=EPOCHS, resume=True, **kw)
    scratch = bench.objective(table, epochs=EPOCHS, **kw)
    stopping = bench.curve_stopping(table, epochs=50, check_at=CHECKS, threshold=0.05, **kw)
    run_s = float(np.mean(np.asarray(table.column("wikitext2", "train_time_s", 50))))
    budget = args.runs * run_s
    ppl = np.asarray(table.column("wikitext2", "valid_ppl", 50), np.float64)
    best, worst = np.nanmin(ppl), np.nanmax(ppl)
    searchers = {
        "random search": (search.random_search(space), single),
        "regularized evolution": (search.regularized_evolution(space), single),
        "Hyperband": (search.hyperband(space, fidelities=len(EPOCHS), eta=3), multi),
        "BOHB": (search.bohb(space, fidelities=len(EPOCHS), eta=3), multi),
        "DEHB": (search.dehb(space, fidelities=len(EPOCHS), eta=3), multi),
        "random search + curve stopping": (search.random_search(space), stopping),
        "regularized evolution + curve stopping": (
            search.regularized_evolution(space),
            stopping,
        ),
        "Hyperband (no resume)": (search.hyperband(space, fidelities=len(EPOCHS), eta=3), scratch),
        "BOHB (no resume)": (search.bohb(space, fidelities=len(EPOCHS), eta=3), scratch),
        "DEHB (no resume)": (search.dehb(space, fidelities=len(EPOCHS), eta=3), scratch),
    }
    marks = [m for m in (2, 5, 10, 20, 40) if m <= args.runs]
    grid = np.linspace(0, budget, 201)
    regrets, rows, curves = {}, [], {"grid": grid}
    for name, (searcher, obj) in searchers.items():
        start = time.perf_counter()
        sim = bench.simulate(
            searcher, obj, key=jax.random.key(0), num_seeds=args.seeds, budget_s=budget
        )
        values = sim.report(table, dataset="wikitext2", metric="valid_ppl", epochs=50)
        regret = np.nan_to_num(sim.on_grid(values, grid), nan=worst) - best
        found = {
            m: float(np.mean(sim.on_grid(values, np.array([m * run_s]))[:, 0] > 0)) for m in marks
        }
        at = {
            m: np.nan_to_num(sim.on_grid(values, np.array([m * run_s])), nan=worst)[:, 0] - best
            for m in marks
        }
        regrets[name] = at
        curves[name] = np.stack(
            [regret.mean(0), regret.std(0), *np.percentile(regret, [25, 75], axis=0)]
        )
        rows.append(
            {
                "searcher": name,
                "seeds": args.seeds,
                "evals_mean": float(np.mean(sim.num_evals)),
                "stopped_mean": (
                    None if sim.num_stopped is None else float(np.mean(sim.num_stopped))
                ),
                "with_incumbent_at_runs": {str(m): v for m, v in found.items()},
                "regret_at_runs": {
                    str(m): {"mean": float(v.mean()), "std": float(v.std())} for m, v in at.items()
                },
                "wall_s": round(time.perf_counter() - start, 1),
            }
        )
        print(
            f"{name}: {rows[-1]['wall_s']} s, regret at {marks[-1]} runs {at[marks[-1]].mean():.2f}"
        )
    for row in rows:
        row["vs_random_search"] = {}
        for m in marks:
            if row["searcher"] == "random search":
                t, p = 0.0, 0.5
            else:
                t, p = bench.welch_test(regrets["random search"][m], regrets[row["searcher"]][m])
            row["vs_random_search"][str(m)] = {"welch_t": round(t, 2), "p_one_sided": p}
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    meta = {
        "seeds": args.seeds,
        "budget_s": budget,
        "mean_run_s": run_s,
        "fidelities_epochs": EPOCHS,
        "curve_stopping": stopping.description,
        "fitness": single.description,
        "best_valid_ppl": best,
        "device": jax.devices()[0].platform,
    }
    (out / "nbnlp_multifidelity.json").write_text(
        json.dumps({"meta": meta, "rows": rows}, indent=2)
    )
    bench.plot_regret(
        curves, out / "nbnlp_multifidelity.png", ylabel="regret, validation perplexity (50 ep)"
    )
    head = " | ".join(f"{m} runs" for m in marks)
    lines = [
        f"NAS-Bench-NLP (WikiText-2, 265 cells), {args.seeds} seeds: regret of the 50-epoch "
        f"validation perplexity (mean +- std; best {best:.2f}) at budgets of k mean 50-epoch "
        f"runs ({run_s:.0f} s each); a seed without a 50-epoch incumbent yet counts the "
        f"table's worst ({worst:.0f}; the share with one in brackets); Welch t vs random "
        "search (t > 0: lower regret).",
        "",
        f"| searcher | evaluations | {head} | t vs RS ({' / '.join(map(str, marks))}) |",
        "|---" * (len(marks) + 3) + "|",
    ]
    for row in rows:
        cells = " | ".join(
            f"{row['regret_at_runs'][str(m)]['mean']:.2f} +- "
            f"{row['regret_at_runs'][str(m)]['std']:.2f} "
            f"({row['with_incumbent_at_runs'][str(m)]:.0%})"
            for m in marks
        )
        ts = " / ".join(f"{row['vs_random_search'][str(m)]['welch_t']:.1f}" for m in marks)
        lines.append(f"| {row['searcher']} | {row['evals_mean']:.1f} | {cells} | {ts} |")
    (out / "nbnlp_multifidelity.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
