"""Learning to search across datasets (#19 §1-2): leave-one-dataset-out warm starts.

    python experiments/transfer_warm_start.py --seeds 500 --out benchmarks/results
    python experiments/transfer_warm_start.py --seeds 100 \
        --out benchmarks/results/transfer_surrogates --name transfer_surrogates
    python experiments/transfer_warm_start.py --seeds 100 \
        --out benchmarks/results/transfer_maml_policy --name transfer_maml_policy \
        --only "REINFORCE" "REINFORCE, Reptile-meta-learned" \
        "REINFORCE, MAML-meta-learned (exact)"

For each rotation of NB201's three datasets (and of the NATS size space's), a zero-shot
portfolio of 10 cells is learned from the two source datasets' tables (Wistuba et al. 2015)
and evaluated first on the target, in front of regularized evolution and random search
(`search.warm_start`); the baselines start from scratch. The protocol on the target is
the repository's NB201 one (the target's 12-epoch validation accuracy, charged its training
time, 12,000 simulated s; NATS size: its 90-epoch validation accuracy, 100 evaluations).
With surrogates (unless `--no-surrogates`), BO with surrogates meta-learned on the sources'
evaluations (RGPE, FSBO; `jnas.transfer`) and a GP from scratch join them.
Reported: each searcher's final mean +- std of the target's test accuracy (NATS: validation
accuracy, the only one tabulated), the first simulated time at which its mean incumbent
reaches regularized evolution's final mean, and Welch's t test of the warm-started
evolution at 25% of the budget against plain evolution at 100%. Writes
`transfer_warm_start.json`, `.md` and a folder per rotation (its summary and regret plot;
`jnas.recipes.transfer.run_warm_start`, also `jnas transfer warm-start`).
"""

from __future__ import annotations

import argparse
import json
import pathlib
import time

from jnas.recipes.transfer import run_warm_start

TARGETS = ("cifar10", "cifar100", "ImageNet16-120")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=500)
    parser.add_argument("--portfolio", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--nasbench", default=None)
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument(
        "--name", default="transfer_warm_start", help="the JSON / Markdown files' stem"
    )
    parser.add_argument("--spaces", nargs="+", default=["nb201", "nats_size"])
    parser.add_argument(
        "--no-surrogates",
        action="store_true",
        help="leave out RGPE / FSBO / the MAML policy",
    )
    parser.add_argument(
        "--targets", nargs="+", default=list(TARGETS), help="the rotations' target datasets"
    )
    parser.add_argument(
        "--only", nargs="+", default=None, help="just these searchers (and REA, the reference)"
    )
    parser.add_argument(
        "--rgpe-marginal",
        action="store_true",
        help="RGPE draws each source per cell from its marginals (default: jointly, the paper)",
    )
    args = parser.parse_args()
    out = pathlib.Path(args.out)
    start = time.perf_counter()
    result: dict = {"seeds": args.seeds, "portfolio": args.portfolio, "rotations": []}
    for space in args.spaces:
        for target in args.targets:
            row = run_warm_start(
                space,
                target,
                seeds=args.seeds,
                portfolio=args.portfolio,
                seed=args.seed,
                nasbench=args.nasbench,
                out=out / f"transfer_{space}_{target}",
                surrogates=not args.no_surrogates,
                only=args.only,
                rgpe_joint=not args.rgpe_marginal,
            )
            result["rotations"].append(row)
            result["wall_s"] = round(time.perf_counter() - start, 1)
            print(json.dumps(row), flush=True)
            write(result, out, args.name)  # after each rotation: a long run keeps its rows
    print(write(result, out, args.name))


def write(result: dict, out: pathlib.Path, name: str) -> str:
    """Writes `name`.json and `name`.md (the table) under `out`; returns the table."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(result, indent=1))
    lines = [
        f"Leave-one-dataset-out warm starts, {result['seeds']} seeds, portfolio of "
        f"{result['portfolio']} from the two source datasets "
        "(`experiments/transfer_warm_start.py`).",
        "",
        "| space | target | searcher | final mean +- std | reaches REA's final at (share of "
        "budget) | evals |",
        "|---|---|---|---|---|---|",
    ]
    for r in result["rotations"]:
        for searcher, s in r["searchers"].items():
            frac = s["reaches_rea_final_at_fraction"]
            reach = "-" if frac is None else f"{100 * frac:.1f}%"
            if searcher == "regularized evolution":
                reach = "(the reference)"
            lines.append(
                f"| {r['space']} | {r['target']} | {searcher} | {s['final_mean']:.2f} +- "
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
    table = "\n".join(lines) + "\n"
    (out / f"{name}.md").write_text(table)
    return table


if __name__ == "__main__":
    main()
