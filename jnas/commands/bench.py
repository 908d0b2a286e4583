"""`jnas bench run|pareto|convert`: the NB201 protocol for many seeds; multi-objective search
judged by hypervolume; official tables to compact."""

from __future__ import annotations

import argparse
import pathlib
import time

from jnas.commands._common import (
    NASBENCH_HELP,
    PARETO_SEARCHERS,
    SEARCHERS,
    SEARCHERS_HELP,
    progress,
)
from jnas.recipes.tables import TABLE_SPACES, TABLES_HELP, table_setup
from jnas.search import make_searcher

FAST_SEARCHERS = ("rs", "rea", "te", "ls", "reinforce")  # the default of `bench run`


def cmd_bench_run(args: argparse.Namespace) -> int:
    import jax

    from jnas import bench
    from jnas.bench import (
        plot_regret,
        regret_curves,
        summarize,
        write_jsonl,
    )

    if args.seeds < 1:
        raise ValueError(f"--seeds must be >= 1; got {args.seeds}")
    if args.budget is not None and args.budget <= 0:
        raise ValueError(f"--budget must be > 0 simulated seconds; got {args.budget}")
    setup = table_setup(
        args.table, args.nasbench, dataset=args.dataset, epochs=args.epochs, budget=args.budget
    )
    table, obj, multi, fidelities = setup.table, setup.objective, setup.multi, setup.fidelities
    report, regret_of, budget, ylabel = setup.report, setup.regret_of, setup.budget, setup.ylabel
    out = pathlib.Path(args.out)
    if (out / "results.jsonl").exists():
        raise FileExistsError(
            f"{out} holds an earlier bench run (results.jsonl); choose another --out (without "
            "--out each run gets a new folder)"
        )
    out.mkdir(parents=True, exist_ok=True)
    sims, rows = {}, []
    for name in args.searcher:
        start = time.perf_counter()
        searcher = make_searcher(name, table.space, fidelities=max(fidelities, 2))
        used = obj
        if searcher.fidelities > 1:
            if multi is None:
                raise ValueError(
                    f"--searcher {name} is multi-fidelity; --table {args.table} has one fidelity"
                )
            used = multi
        sim = bench.simulate(
            searcher,
            used,
            key=jax.random.key(args.seed),
            num_seeds=args.seeds,
            budget_s=budget,
            progress=progress(name),
        )
        summary = summarize(sim, table, report)
        summary.update(
            searcher=name, fitness=used.description, wall_s=round(time.perf_counter() - start, 2)
        )
        sims[name], rows = sim, [*rows, summary]
    write_jsonl(out / "results.jsonl", rows)
    d, m, e, minimize = regret_of
    curves = regret_curves(sims, table, dataset=d, metric=m, epochs=e, minimize=minimize)
    plot_regret(curves, out / "regret.png", ylabel=ylabel)
    cols = [f"{d}/{m}/{e}" for d, m, e in report]
    width = max(len("searcher"), *(len(r["searcher"]) for r in rows))
    print(
        f"{'searcher':{width}s} "
        + " ".join(f"{c.split('/')[0][:14] + ' ' + c.split('/')[1]:>24s}" for c in cols)
    )
    for r in rows:
        print(
            f"{r['searcher']:{width}s} "
            + " ".join(f"{r[c]['mean']:>15.2f} +- {r[c]['std']:5.2f}" for c in cols)
        )
    target = f"{d}/{m}/{e}"
    _print_tests(rows, target if target in cols else cols[0], minimize)
    print(f"wrote {out / 'results.jsonl'} (per-seed values) and {out / 'regret.png'}")
    return 0


# --dataset -> (the dataset whose validation accuracy guides the search, the one reported);
# CIFAR-10's validation accuracy is that of its 25k/25k train/valid split, as in Table 5
PARETO_DATASETS = {
    "cifar10": ("cifar10-valid", "cifar10"),
    "cifar100": ("cifar100", "cifar100"),
    "ImageNet16-120": ("ImageNet16-120", "ImageNet16-120"),
}
PARETO_COSTS = {"flops": "flops_M", "params": "params_M"}


def cmd_bench_pareto(args: argparse.Namespace) -> int:
    import json

    import jax

    from jnas import bench

    for flag in ("seeds", "generations", "population"):
        if getattr(args, flag) < 1:
            raise ValueError(f"--{flag} must be >= 1; got {getattr(args, flag)}")
    out = pathlib.Path(args.out)
    if (out / "pareto.json").exists():
        raise FileExistsError(
            f"{out} holds an earlier run (pareto.json); choose another --out (without --out "
            "each run gets a new folder)"
        )
    table = bench.load_nb201(args.nasbench)
    searched, reported = PARETO_DATASETS[args.dataset]
    start = time.perf_counter()
    searcher = make_searcher(args.searcher, table.space, population=args.population)
    result = bench.pareto_protocol(
        searcher,
        table,
        searched=searched,
        reported=reported,
        cost=PARETO_COSTS[args.cost],
        key=jax.random.key(args.seed),
        num_seeds=args.seeds,
        generations=args.generations,
    )
    result["hv_ratio"][args.searcher] = result["hv_ratio"].pop("searcher")
    result.update(
        searcher=args.searcher,
        dataset=args.dataset,
        cost=args.cost,
        seeds=args.seeds,
        wall_s=round(time.perf_counter() - start, 2),
    )
    out.mkdir(parents=True, exist_ok=True)
    (out / "pareto.json").write_text(json.dumps(result, indent=1) + "\n")
    print(
        f"{args.dataset}, test error against {args.cost}, {result['evaluations']} evaluations, "
        f"{args.seeds} seeds: hypervolume / the table's front"
    )
    for name in (args.searcher, "random search"):
        r = result["hv_ratio"][name]
        print(f"  {name:>14s}: {r['mean']:.4f} +- {r['std']:.4f}")
    t, p = result["welch_vs_random_search"]["t"], result["welch_vs_random_search"]["p"]
    print(f"Welch's t test vs random search (one-sided: better than it): t = {t:.2f}, p = {p:.3g}")
    print(f"wrote {out / 'pareto.json'} (per-seed ratios)")
    return 0


def cmd_bench_convert(args: argparse.Namespace) -> int:
    from jnas import bench

    start = time.perf_counter()
    source = pathlib.Path(args.official)
    if source.is_file() and source.suffix == ".tfrecord":
        table = bench.load_nb101(source)
    else:
        table = bench.convert_official(source)
    out = pathlib.Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    bench.save_table(table, out)
    print(
        f"converted {args.official} ({table.name}, {len(table.columns)} columns, seeds "
        f"{list(table.seeds)}) to {out} in {time.perf_counter() - start:.1f}s"
    )
    return 0


def _print_tests(rows: list[dict], column: str, minimize: bool) -> None:
    """Welch's t test of each searcher against the first (random search when listed) on the
    final value of `column`, across seeds."""
    import numpy as np

    from jnas.bench import welch_test

    base = next((r for r in rows if r["searcher"] == "rs"), rows[0])

    def values(r: dict) -> np.ndarray:
        v = np.asarray([x for x in r[column]["values"] if x is not None], np.float64)
        return -v if minimize else v

    if len(values(base)) < 2:
        return
    print(f"Welch's t test vs {base['searcher']} on {column} (one-sided: better than it):")
    for r in rows:
        if r is base or len(values(r)) < 2:
            continue
        t, p = welch_test(values(r), values(base))
        print(f"  {r['searcher']:>12s}: t = {t:6.2f}, p = {p:.3g}")


def add_parser(sub: argparse._SubParsersAction) -> None:
    """`jnas bench`: its flags, its choices from the registries."""
    bench = sub.add_parser("bench", help="benchmark searchers against NAS-Bench tables")
    bench_sub = bench.add_subparsers(dest="bench_command", required=True, metavar="COMMAND")
    run = bench_sub.add_parser(
        "run",
        help="run searchers for many seeds against a NAS-Bench table on a simulated clock",
        description="Run searchers for many seeds against a NAS-Bench table (NB201 by "
        "default: select by the validation accuracy at --epochs, charge each query its "
        "training time, and report the final incumbent as NB201 Table 5 does; the subsets "
        "of NB101 and NB301 and the NATS size table count evaluations).",
    )
    run.add_argument(
        "--table",
        default="nb201",
        choices=tuple(TABLE_SPACES),
        help=f"benchmark table (default: nb201): {TABLES_HELP}",
    )
    run.add_argument("--nasbench", default=None, help=NASBENCH_HELP)
    run.add_argument(
        "--dataset",
        default=None,
        choices=("cifar10", "cifar10-valid", "cifar100", "ImageNet16-120"),
        help="nb201: dataset whose validation accuracy guides the search; cifar10 "
        "means its 25k/25k train/valid split (default: cifar10)",
    )
    run.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="nb201: fidelity of the signal and of its cost, 12 or 200 (default: 12)",
    )
    run.add_argument(
        "--searcher",
        nargs="+",
        default=list(FAST_SEARCHERS),
        choices=SEARCHERS,
        help=f"searchers to run: {SEARCHERS_HELP} (default: {' '.join(FAST_SEARCHERS)})",
    )
    run.add_argument("--seeds", type=int, default=500, help="independent runs (default: 500)")
    run.add_argument(
        "--budget",
        type=float,
        default=None,
        help="simulated seconds per run (default: 12000 for nb201, 20 mean 50-epoch runs "
        "= 435,509 s for nbnlp), or evaluations for nats_sss, nb101 and nb301 (default: 100)",
    )
    run.add_argument("--seed", type=int, default=0, help="PRNG seed (default: 0)")
    run.add_argument(
        "--out", default=None, help="output folder (default: a new folder out/bench/<date-time>)"
    )
    run.set_defaults(func=cmd_bench_run)
    pareto = bench_sub.add_parser(
        "pareto",
        help="multi-objective search on NB201 (accuracy against FLOPs or parameters)",
        description="Run a multi-objective searcher for many seeds on NB201: it maximises "
        "the 200-epoch validation accuracy and minimises --cost; the cells each seed "
        "evaluated give a front of test error against cost, whose hypervolume is reported "
        "as a fraction of the whole table's front (reference point: the median error and "
        "the largest cost), beside random search with as many evaluations.",
    )
    pareto.add_argument("--nasbench", default=None, help=NASBENCH_HELP)
    pareto.add_argument(
        "--searcher",
        default="nsga2",
        choices=PARETO_SEARCHERS,
        help=", ".join(f"{k} {v}" for k, v in PARETO_SEARCHERS.items()) + " (default: nsga2)",
    )
    pareto.add_argument(
        "--dataset",
        default="cifar10",
        choices=tuple(PARETO_DATASETS),
        help="NB201 dataset (default: cifar10; searched by its train/valid split)",
    )
    pareto.add_argument(
        "--cost", default="flops", choices=tuple(PARETO_COSTS), help="the cost (default: flops)"
    )
    pareto.add_argument("--population", type=int, default=20, help="batch a generation (20)")
    pareto.add_argument("--generations", type=int, default=10, help="generations (default: 10)")
    pareto.add_argument("--seeds", type=int, default=100, help="independent runs (default: 100)")
    pareto.add_argument("--seed", type=int, default=0, help="PRNG seed (default: 0)")
    pareto.add_argument(
        "--out", default=None, help="output folder (default: a new folder out/bench/<date-time>)"
    )
    pareto.set_defaults(func=cmd_bench_pareto)
    convert = bench_sub.add_parser(
        "convert",
        help="turn an official release into a compact table",
        description="Read an official NATS-Bench '*-simple' folder (meta.pickle.pbz2 and one "
        "<index>.pickle.pbz2 per cell, with a restricted unpickler) or a NAS-Bench-101 "
        ".tfrecord (without TensorFlow) and write jnas' compact .npz, which "
        "`jnas.bench.load_table` reads in well under a second.",
    )
    convert.add_argument("official", help="the release folder or .tfrecord file")
    convert.add_argument("-o", "--output", required=True, help="the .npz to write")
    convert.set_defaults(func=cmd_bench_convert)
