"""`jnas automl-zero`: evolve learning algorithms from empty programs (AutoML-Zero, Real et
al. 2020) on the paper's linear tasks or projected binary digit tasks; the run itself is
`jnas.recipes.automl_zero.run_automl_zero`."""

from __future__ import annotations

import argparse

from jnas.commands._common import positive_int, progress
from jnas.recipes.automl_zero import METRICS, OP_SETS, TASKS, run_automl_zero


def cmd_automl_zero(args: argparse.Namespace) -> int:
    s = run_automl_zero(
        args.task,
        op_set=args.op_set,
        sizes=tuple(args.sizes) if args.sizes else None,
        metric=args.metric,
        vectors=args.vectors,
        population=args.population,
        tournament=args.tournament,
        children=args.children,
        mutate_prob=args.mutate_prob,
        max_evaluations=args.max_evaluations,
        target=args.target,
        check_every=args.check_every,
        record_every=args.record_every,
        held_out_tasks=args.held_out_tasks,
        seed=args.seed,
        out=args.out,
        resume=args.resume,
        progress=progress(f"automl-zero {args.task}", "evaluations"),
    )
    found = s["evaluations_to_target"]
    what = (
        f"target {s['target']:.6g} reached at {found:,} evaluations"
        if found is not None
        else f"target not reached in {s['evaluations']:,} evaluations"
        if s["target"] is not None
        else f"{s['evaluations']:,} evaluations"
    )
    print(
        f"automl-zero {s['task']} ({s['metric']}): {what}; held-out fitness "
        f"{s['held_out_fitness']:.6g} on {s['held_out_tasks']} unseen tasks ({s['wall_s']} s)"
    )
    if "sgd_reference_rms_fitness" in s:
        sgd = s["sgd_reference_rms_fitness" if s["metric"] == "rms" else "sgd_reference_mse"]
        print(f"  (SGD linear regression on the same tasks: {sgd:.6g})")
    print("best program (instructions that reach the prediction):")
    for component, lines in s["best_program_live"].items():
        print(f"  {component}:" + ("".join(f"\n    {line}" for line in lines) or " (empty)"))
    print(f"wrote {args.out}/records.jsonl, summary.json and fitness.png")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    """`jnas automl-zero`: its flags."""
    p = sub.add_parser(
        "automl-zero",
        help="AutoML-Zero: evolve learning algorithms (setup / predict / learn) from scratch",
        description="Regularized evolution of learning algorithms from empty programs "
        "(AutoML-Zero, Real et al. 2020): every program is scored on 10 search tasks, the "
        "best so far every --check-every generations on 100 unseen tasks, and the search "
        "stops at --target or --max-evaluations. The defaults are the authors' restricted "
        "linear search (population 1,000, tournament 10) from empty programs. Records, "
        "checkpoints (--resume; a larger --max-evaluations continues a finished run), "
        "summary.json and fitness.png (the fitness curve) go under --out.",
    )
    p.add_argument(
        "--task",
        choices=TASKS,
        default="linear",
        help="linear regression tasks (4 features) or projected binary digit tasks "
        "(default: linear)",
    )
    p.add_argument(
        "--op-set",
        choices=tuple(OP_SETS),
        default="linear-by-component",
        help="ops new instructions draw from: every op, the demo's six linear ops, or "
        "those split by component as the restricted linear search (default: "
        "linear-by-component)",
    )
    p.add_argument(
        "--sizes",
        type=positive_int,
        nargs=3,
        default=None,
        metavar=("SETUP", "PREDICT", "LEARN"),
        help="start from random programs of these component sizes and keep them (the "
        "authors' setting: 5 1 4); default: empty programs that grow to 8 instructions",
    )
    metrics = sorted({m for ms in METRICS.values() for m in ms})
    p.add_argument(
        "--metric",
        choices=metrics,
        default=None,
        help="fitness: linear rms (1 - 2/pi arctan(RMSE), the paper's; default) or mse "
        "(minus the MSE); digits accuracy",
    )
    p.add_argument(
        "--target",
        type=float,
        default=None,
        help="stop when the held-out fitness reaches this (default: 0.9999 for rms, the "
        "authors' sufficient_fitness; 1e-3 of the targets' variance for mse; none for "
        "accuracy)",
    )
    p.add_argument("--vectors", type=positive_int, default=3, help="vector registers (default: 3)")
    p.add_argument(
        "--population", type=positive_int, default=1000, help="population (default: 1000)"
    )
    p.add_argument(
        "--tournament", type=positive_int, default=10, help="tournament size (default: 10)"
    )
    p.add_argument(
        "--children",
        type=positive_int,
        default=100,
        help="children per generation, evaluated in one compiled call (default: 100)",
    )
    p.add_argument(
        "--mutate-prob",
        type=float,
        default=0.9,
        help="probability a child is mutated, else copied (default: 0.9)",
    )
    p.add_argument(
        "--max-evaluations",
        type=positive_int,
        default=1_000_000,
        help="programs to evaluate at most (default: 1000000)",
    )
    p.add_argument(
        "--check-every",
        type=positive_int,
        default=10,
        help="generations between held-out checks (default: 10)",
    )
    p.add_argument(
        "--record-every",
        type=positive_int,
        default=100,
        help="generations per record and checkpoint, a multiple of --check-every (default: 100)",
    )
    p.add_argument(
        "--held-out-tasks",
        type=positive_int,
        default=100,
        help="unseen tasks the best program is checked on, at most 100 (default: 100)",
    )
    p.add_argument("--seed", type=int, default=0, help="PRNG seed (default: 0)")
    p.add_argument("--resume", action="store_true", help="continue a killed run")
    p.add_argument(
        "--out", default=None, help="run folder (default: a new folder out/automl-zero/<date-time>)"
    )
    p.set_defaults(func=cmd_automl_zero)
