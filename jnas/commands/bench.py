"""`jnas bench run|convert`: the NB201 protocol for many seeds; official tables to compact."""

from __future__ import annotations

import argparse
import pathlib
import time

from jnas.commands._common import NASBENCH_HELP, SEARCHERS, SEARCHERS_HELP, progress
from jnas.search import make_searcher

FAST_SEARCHERS = ("rs", "rea", "te", "ls", "reinforce")  # the default of `bench run`


def cmd_bench_run(args: argparse.Namespace) -> int:
    import jax

    from jnas import bench
    from jnas.bench import (
        NB201_REPORT,
        plot_regret,
        regret_curves,
        summarize,
        write_jsonl,
    )

    if args.table != "nb201":
        raise ValueError(f"--table {args.table!r}: only 'nb201' runs the protocol so far")
    if args.seeds < 1:
        raise ValueError(f"--seeds must be >= 1; got {args.seeds}")
    if args.budget <= 0:
        raise ValueError(f"--budget must be > 0 simulated seconds; got {args.budget}")
    table = bench.load_nb201(args.nasbench)
    # "search on CIFAR-10" means its train/valid split, as in the NB201 API
    dataset = "cifar10-valid" if args.dataset == "cifar10" else args.dataset
    obj = bench.objective(table, dataset=dataset, metric="valid_acc", epochs=args.epochs)
    # Hyperband and BOHB evaluate at 12 or 200 epochs, each charged its training time
    multi = bench.objective(table, dataset=dataset, metric="valid_acc", epochs=(12, 200))
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sims, rows = {}, []
    for name in args.searcher:
        start = time.perf_counter()
        searcher = make_searcher(name, table.space)
        used = multi if searcher.fidelities > 1 else obj
        sim = bench.simulate(
            searcher,
            used,
            key=jax.random.key(args.seed),
            num_seeds=args.seeds,
            budget_s=args.budget,
            progress=progress(name),
        )
        summary = summarize(sim, table, NB201_REPORT)
        summary.update(
            searcher=name, fitness=used.description, wall_s=round(time.perf_counter() - start, 2)
        )
        sims[name], rows = sim, [*rows, summary]
    write_jsonl(out / "results.jsonl", rows)
    curves = regret_curves(sims, table, dataset="cifar10", metric="test_acc", epochs=200)
    plot_regret(curves, out / "regret.png", ylabel="CIFAR-10 test regret (%)")
    cols = [f"{d}/{m}/{e}" for d, m, e in NB201_REPORT]
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
    print(f"wrote {out / 'results.jsonl'} and {out / 'regret.png'}")
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


def add_parser(sub: argparse._SubParsersAction) -> None:
    """`jnas bench`: its flags, its choices from the registries."""
    bench = sub.add_parser("bench", help="benchmark searchers against NAS-Bench tables")
    bench_sub = bench.add_subparsers(dest="bench_command", required=True, metavar="COMMAND")
    run = bench_sub.add_parser(
        "run",
        help="run the NB201 protocol for many seeds on a simulated clock",
        description="Run searchers for many seeds against the NB201 table: select by the "
        "validation accuracy at --epochs, charge each query its training time, and report "
        "the final incumbent as NB201 Table 5 does.",
    )
    run.add_argument("--table", default="nb201", choices=("nb201",), help="benchmark table")
    run.add_argument("--nasbench", default=None, help=NASBENCH_HELP)
    run.add_argument(
        "--dataset",
        default="cifar10",
        choices=("cifar10", "cifar10-valid", "cifar100", "ImageNet16-120"),
        help="dataset whose validation accuracy guides the search; cifar10 "
        "means its 25k/25k train/valid split (default: cifar10)",
    )
    run.add_argument(
        "--epochs",
        type=int,
        default=12,
        choices=(12, 200),
        help="fidelity of the signal and of its cost (default: 12)",
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
        "--budget", type=float, default=12000, help="simulated seconds per run (default: 12000)"
    )
    run.add_argument("--seed", type=int, default=0, help="PRNG seed (default: 0)")
    run.add_argument("--out", default="out/bench", help="output folder (default: out/bench)")
    run.set_defaults(func=cmd_bench_run)
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
