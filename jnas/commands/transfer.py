"""`jnas transfer`: learning to search across tasks (HELP's latency predictor, portfolio
warm starts from other datasets)."""

from __future__ import annotations

import argparse
import pathlib

from jnas.commands._common import positive_int, progress


def cmd_latency(args: argparse.Namespace) -> int:
    from jnas.recipes.transfer import run_latency

    print(
        f"jnas transfer latency: HELP meta-trained over {args.seeds} seed(s) x {args.steps} "
        "MAML steps on 9 devices, scored on 6 unseen ones from 10 measurements each",
        flush=True,
    )
    r = run_latency(
        seeds=args.seeds,
        steps=args.steps,
        nasbench=args.nasbench,
        out=args.out,
        progress=progress("meta-training", "seeds"),
    )
    rho = r["spearman"]
    print("Spearman over the 15,625 NB201 cells (mean over the six meta-test devices):")
    print(
        f"  HELP (meta-learned)     {rho['help']['mean']:.3f} +- {rho['help']['std_over_seeds']:.3f}"
    )
    print(f"  same MLP from scratch   {rho['scratch']['mean']:.3f}")
    print(f"  FLOPs                   {rho['flops']['mean']:.3f}")
    print(f"  published (HELP Table 2): HELP {r['published_mean']['help']}, FLOPs 0.787")
    for device, v in rho["help"]["per_device_mean"].items():
        print(f"    {device:16s} {v:.3f}")
    s = r["constrained_summary"]
    print(
        f"latency-constrained search (CIFAR-100): true latency within the bound "
        f"{s['within_bound']}, accuracy {s['mean_accuracy_gap_when_within']} points below "
        "the true constrained optimum when within"
    )
    print(f"wrote {args.out}/ (summary.json, predictor.npz)")
    return 0


def cmd_warm_start(args: argparse.Namespace) -> int:
    from jnas.recipes.transfer import run_warm_start

    r = run_warm_start(
        args.space,
        args.target,
        seeds=args.seeds,
        portfolio=args.portfolio,
        seed=args.seed,
        nasbench=args.nasbench,
        out=args.out,
        surrogates=not args.no_surrogates,
    )
    print(
        f"{args.space}: target {args.target}, portfolio of {args.portfolio} from "
        f"{' + '.join(r['sources'])}; {args.seeds} seeds, final {r['report']}:"
    )
    for name, s in r["searchers"].items():
        frac = s["reaches_rea_final_at_fraction"]
        reach = (
            "" if frac is None else f"  reaches REA's final mean at {100 * frac:.1f}% of the budget"
        )
        print(f"  {name:31s} {s['final_mean']:6.2f} +- {s['final_std']:4.2f}{reach}")
    w = r["rea_portfolio_at_25pct_vs_rea_at_100pct"]
    print(
        f"  REA + portfolio at 25% of the budget {w['mean_at_25pct']:.2f} vs REA at 100% "
        f"{w['rea_final']:.2f}: Welch's t = {w['t']:.2f}, p = {w['p']:.1e}"
    )
    print(f"wrote {pathlib.Path(args.out)}/ (summary.json, regret.png)")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    """`jnas transfer latency | warm-start`: their flags."""
    p = sub.add_parser(
        "transfer",
        help="learn to search across tasks (HELP latency, portfolio warm starts)",
        description="Learning to search across tasks on the NAS-Bench tables.",
    )
    inner = p.add_subparsers(dest="transfer_command", required=True)
    lat = inner.add_parser(
        "latency",
        help="HELP: a latency predictor meta-learned over devices (Lee et al. 2021)",
        description="Meta-train HELP's latency predictor on its 9 meta-train devices, score "
        "it on its 6 meta-test devices from 10 measurements each (Spearman over all NB201 "
        "cells) beside FLOPs and the same network from scratch, then search the most "
        "accurate CIFAR-100 cell under latency bounds on each unseen device.",
    )
    lat.add_argument("--seeds", type=positive_int, default=5, help="meta-trainings (default 5)")
    lat.add_argument("--steps", type=positive_int, default=3000, help="MAML steps (default 3000)")
    ws = inner.add_parser(
        "warm-start",
        help="a portfolio from the other datasets in front of RS and REA on one target",
        description="Leave one dataset out: learn a zero-shot portfolio from the other "
        "datasets' tables (Wistuba et al. 2015), evaluate it first on the target in front of "
        "random search and regularized evolution, and compare with both from scratch; also "
        "a bounding box and a quantile prior from the sources, a Reptile-meta-learned "
        "REINFORCE policy, and BO with surrogates meta-learned on the sources (RGPE, FSBO) "
        "(simulated NB201 protocol, regret curves, Welch's t test).",
    )
    ws.add_argument("--space", default="nb201", choices=("nb201", "nats_size"))
    ws.add_argument(
        "--target", default="ImageNet16-120", choices=("cifar10", "cifar100", "ImageNet16-120")
    )
    ws.add_argument("--seeds", type=positive_int, default=500, help="default 500")
    ws.add_argument("--portfolio", type=positive_int, default=10, help="cells (default 10)")
    ws.add_argument("--seed", type=int, default=0)
    ws.add_argument(
        "--no-surrogates",
        action="store_true",
        help="leave out BO with meta-learned surrogates (RGPE, FSBO) and its GP baseline",
    )
    for q, func in ((lat, cmd_latency), (ws, cmd_warm_start)):
        q.add_argument("--nasbench", default=None, help="NAS-Bench folder (JNAS_NASBENCH_DIR)")
        q.add_argument("--out", default=None, help="output folder (default out/transfer/<time>)")
        q.set_defaults(func=func)
