"""`jnas bench run|convert`: the NB201 protocol for many seeds; official tables to compact."""

from __future__ import annotations

import argparse
import pathlib
import time

from jnas.commands._common import progress
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
