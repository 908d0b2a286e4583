"""The `jnas` command."""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time
from collections.abc import Sequence

SPACE_NAMES = ("nb201", "nb101", "darts", "nats_size", "chain", "sequential", "hierarchical")


def make_space(name: str):
    """The search space called `name` with its default configuration."""
    from jnas import spaces

    table = {
        "nb201": spaces.NB201, "nb101": spaces.NB101, "darts": spaces.DARTS,
        "nats_size": spaces.NATSSize, "chain": spaces.Chain,
        "sequential": spaces.Sequential, "hierarchical": spaces.Hierarchical,
    }
    if name not in table:
        raise ValueError(f"unknown space {name!r}; expected one of {', '.join(table)}")
    return table[name]()


# Network settings that make each space's network take a 32x32x3 image with 10 classes.
_BUILD_FOR_CIFAR = {"chain": {"num_classes": 10, "stem_stride": 1}}


def describe(name: str, seed: int) -> dict:
    """Sample an architecture of a space, compile its network, count its parameters."""
    import jax
    import jax.numpy as jnp
    from flax import nnx

    from jnas.nn import count_flops, count_params

    space = make_space(name)
    arch = space.sample(jax.random.key(seed))
    start = time.perf_counter()
    model = space.build(arch, **_BUILD_FOR_CIFAR.get(name, {}), rngs=nnx.Rngs(seed))
    model.eval()
    graphdef, state = nnx.split(model)
    out = jax.jit(lambda s, x: nnx.merge(graphdef, s)(x))(state, jnp.zeros((1, 32, 32, 3)))
    return {
        "space": name,
        "arch": space.to_string(arch),
        "params": count_params(model, exclude=("aux",)),
        "flops_M": round(count_flops(model, (1, 32, 32, 3)) / 1e6, 3),
        "output_shape": list(out.shape),
        "build_s": round(time.perf_counter() - start, 2),
    }


def _cmd_spaces(args: argparse.Namespace) -> int:
    names = SPACE_NAMES if args.space == "all" else (args.space,)
    if args.list:
        for name in SPACE_NAMES:
            space = make_space(name)
            print(f"{name:13s} {type(space).__name__:13s} size {space.size:.3e}")
        return 0
    for name in names:
        row = describe(name, args.seed)
        print(f"{name:13s} params {row['params']:>10,d}  flops {row['flops_M']:>9.2f}M  "
              f"{row['arch']}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    print(f"jnas demo: one architecture of each of the {len(SPACE_NAMES)} search spaces, "
          "compiled to a Flax network (32x32 input, 10 classes)")
    for name in SPACE_NAMES:
        row = describe(name, args.seed)
        rows.append(row)
        print(f"  {name:13s} params {row['params']:>10,d}  flops {row['flops_M']:>9.2f}M  "
              f"built in {row['build_s']:5.2f}s  {row['arch'][:70]}")
    path = out / "architectures.jsonl"
    with path.open("w") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
    print(f"wrote {path}")
    return 0


SEARCHERS = ("rs", "rea", "te", "ls", "reinforce")


def _progress(label: str):
    """A one-line progress bar with ETA on stderr."""
    start = time.perf_counter()

    def show(done: int, total: int) -> None:
        elapsed = time.perf_counter() - start
        eta = elapsed / done * (total - done) if done else 0.0
        bar = "#" * int(30 * done / total)
        print(f"\r{label} [{bar:<30s}] {done}/{total} seeds, {elapsed:5.1f}s, "
              f"ETA {eta:5.1f}s", end="" if done < total else "\n", file=sys.stderr,
              flush=True)

    return show


def _cmd_bench_run(args: argparse.Namespace) -> int:
    import jax

    from jnas import bench, search
    from jnas.bench._report import (
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
    makers = {"rs": search.random_search, "rea": search.regularized_evolution,
              "te": search.tournament_evolution, "ls": search.local_search,
              "reinforce": search.reinforce}
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sims, rows = {}, []
    for name in args.searcher:
        start = time.perf_counter()
        sim = bench.simulate(makers[name](table.space), obj, key=jax.random.key(args.seed),
                             num_seeds=args.seeds, budget_s=args.budget,
                             progress=_progress(name))
        summary = summarize(sim, table, NB201_REPORT)
        summary.update(searcher=name, fitness=obj.description,
                       wall_s=round(time.perf_counter() - start, 2))
        sims[name], rows = sim, [*rows, summary]
    write_jsonl(out / "results.jsonl", rows)
    curves = regret_curves(sims, table, dataset="cifar10", metric="test_acc", epochs=200)
    plot_regret(curves, out / "regret.png", ylabel="CIFAR-10 test regret (%)")
    cols = [f"{d}/{m}/{e}" for d, m, e in NB201_REPORT]
    print(f"{'searcher':10s} " + " ".join(f"{c.split('/')[0][:14] + ' ' + c.split('/')[1]:>24s}"
                                          for c in cols))
    for r in rows:
        print(f"{r['searcher']:10s} " + " ".join(
            f"{r[c]['mean']:>15.2f} +- {r[c]['std']:5.2f}" for c in cols))
    print(f"wrote {out / 'results.jsonl'} and {out / 'regret.png'}")
    return 0


def _cmd_bench_convert(args: argparse.Namespace) -> int:
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
    print(f"converted {args.official} ({table.name}, {len(table.columns)} columns, seeds "
          f"{list(table.seeds)}) to {out} in {time.perf_counter() - start:.1f}s")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jnas", description="JAX-native, functional neural architecture search.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser("demo", help="the main job: sample and compile an architecture "
                          "of every search space", description="Sample an architecture of "
                          "every search space, compile it to a Flax network and report its "
                          "parameters and FLOPs; writes JSON lines under --out.")
    demo.add_argument("--out", default="out/demo", help="output folder (default: out/demo)")
    demo.add_argument("--seed", type=int, default=0, help="PRNG seed (default: 0)")
    demo.set_defaults(func=_cmd_demo)

    spaces = sub.add_parser("spaces", help="list search spaces, sample and print "
                            "architectures", description="List the search spaces, or sample "
                            "an architecture of one (or all) and print its network's size.")
    spaces.add_argument("space", nargs="?", default="all", choices=("all", *SPACE_NAMES),
                        help="which space (default: all)")
    spaces.add_argument("--list", action="store_true", help="list spaces and their sizes")
    spaces.add_argument("--seed", type=int, default=0, help="PRNG seed (default: 0)")
    spaces.set_defaults(func=_cmd_spaces)

    bench = sub.add_parser("bench", help="benchmark searchers against NAS-Bench tables")
    bench_sub = bench.add_subparsers(dest="bench_command", required=True, metavar="COMMAND")
    run = bench_sub.add_parser(
        "run", help="run the NB201 protocol for many seeds on a simulated clock",
        description="Run searchers for many seeds against the NB201 table: select by the "
        "validation accuracy at --epochs, charge each query its training time, and report "
        "the final incumbent as NB201 Table 5 does.")
    run.add_argument("--table", default="nb201", choices=("nb201",), help="benchmark table")
    run.add_argument("--nasbench", default=None,
                     help="folder of the tables (default: $JNAS_NASBENCH_DIR or "
                     "../shared/nasbench)")
    run.add_argument("--dataset", default="cifar10",
                     choices=("cifar10", "cifar10-valid", "cifar100", "ImageNet16-120"),
                     help="dataset whose validation accuracy guides the search; cifar10 "
                     "means its 25k/25k train/valid split (default: cifar10)")
    run.add_argument("--epochs", type=int, default=12, choices=(12, 200),
                     help="fidelity of the signal and of its cost (default: 12)")
    run.add_argument("--searcher", nargs="+", default=list(SEARCHERS), choices=SEARCHERS,
                     help="searchers to run: rs random search, rea regularized evolution, "
                     "te tournament evolution, ls local search, reinforce (default: all)")
    run.add_argument("--seeds", type=int, default=500, help="independent runs (default: 500)")
    run.add_argument("--budget", type=float, default=12000,
                     help="simulated seconds per run (default: 12000)")
    run.add_argument("--seed", type=int, default=0, help="PRNG seed (default: 0)")
    run.add_argument("--out", default="out/bench", help="output folder (default: out/bench)")
    run.set_defaults(func=_cmd_bench_run)
    convert = bench_sub.add_parser(
        "convert", help="turn an official release into a compact table",
        description="Read an official NATS-Bench '*-simple' folder (meta.pickle.pbz2 and one "
        "<index>.pickle.pbz2 per cell, with a restricted unpickler) or a NAS-Bench-101 "
        ".tfrecord (without TensorFlow) and write jnas' compact .npz, which "
        "`jnas.bench.load_table` reads in well under a second.")
    convert.add_argument("official", help="the release folder or .tfrecord file")
    convert.add_argument("-o", "--output", required=True, help="the .npz to write")
    convert.set_defaults(func=_cmd_bench_convert)
    return parser


def _enable_compilation_cache() -> None:
    """Keep compiled XLA programs on disk, so a repeated run skips most of its compile
    (the NB201 protocol: ~7 s cold, under 1 s warm on 2 CPU cores). The folder is
    `$JNAS_XLA_CACHE` (default `~/.cache/jnas/xla`); set it empty to turn this off."""
    import os

    folder = os.environ.get("JNAS_XLA_CACHE",
                            str(pathlib.Path.home() / ".cache" / "jnas" / "xla"))
    if not folder:
        return
    import jax

    jax.config.update("jax_compilation_cache_dir", folder)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `jnas` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    _enable_compilation_cache()
    try:
        return args.func(args)
    except (ValueError, OSError) as err:
        print(f"jnas {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
