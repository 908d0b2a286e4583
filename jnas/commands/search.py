"""`jnas search`: a black-box search in the NB201 space, against the table or by training
every candidate on a dataset; checkpointed after every evaluation round (`--resume`)."""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import pathlib
import time
from typing import Any

from jnas.commands._common import (
    NASBENCH_HELP,
    SEARCHERS,
    SEARCHERS_HELP,
    add_data_flags,
    positive_int,
    progress,
)
from jnas.search import make_searcher


@dataclasses.dataclass(frozen=True)
class TrainingObjective:
    """fitness(arch) = validation accuracy (%) of the cell's network trained from scratch
    for `epochs` epochs on the dataset's `train` split. Picklable (a process pool or Dask
    worker rebuilds it): the data load once per process, at the first call."""

    dataset: str
    seed: int
    epochs: int
    channels: int
    cells_per_stage: int
    data_dir: str | None = None

    def __call__(self, arch: Any) -> float:
        import jax
        from flax import nnx

        from jnas.spaces import NB201
        from jnas.train import TrainConfig, evaluate, train

        splits, k_train = _data(self.dataset, self.seed, self.data_dir)
        num_classes = int(splits["train"].y.max()) + 1
        config = TrainConfig(
            epochs=self.epochs, batch_size=64, lr=0.05, augment=self.dataset != "digits"
        )
        model = NB201().build(
            jax.tree.map(jax.numpy.asarray, arch),
            channels=self.channels,
            cells_per_stage=self.cells_per_stage,
            num_classes=num_classes,
            rngs=nnx.Rngs(k_train),
        )
        try:
            model, _ = train(model, k_train, splits["train"], config)
        except FloatingPointError:
            return float("nan")  # a diverged candidate is the worst, not a crash
        return 100.0 * evaluate(model, splits["valid"])["acc"]


@functools.cache
def _data(dataset: str, seed: int, data_dir: str | None) -> tuple[dict, Any]:
    import jax

    from jnas import data

    k_data, k_train = jax.random.split(jax.random.key(seed))
    return data.load_dataset(dataset, k_data, data_dir=data_dir), k_train


def training_objective(
    dataset: str,
    *,
    seed: int,
    epochs: int,
    channels: int,
    cells_per_stage: int,
    data_dir: str | None = None,
) -> TrainingObjective:
    """The objective of `--objective train` (see `TrainingObjective`)."""
    return TrainingObjective(dataset, seed, epochs, channels, cells_per_stage, data_dir)


def _executor(args: argparse.Namespace) -> Any:
    """None (serial), a local process pool (`--workers N`) or a Dask cluster (`--dask`)."""
    from jnas import search

    if args.dask is None and args.workers == 1:
        if args.asynchronous:
            raise ValueError("--async needs parallel workers: --workers N (N > 1) or --dask")
        return None
    if args.objective == "table":
        raise ValueError(
            "--workers/--dask parallelise training (--objective train); a table "
            "lookup is faster in one process"
        )
    if args.dask is None:
        return search.process_executor(args.workers)
    if args.dask == "local":
        return search.dask_executor(
            n_workers=args.workers, threads_per_worker=1, dashboard_address=None
        )
    return search.dask_executor(args.dask)


def cmd_search(args: argparse.Namespace) -> int:
    import jax

    from jnas import bench, plots, search
    from jnas.spaces import NB201

    space = NB201()
    if args.objective == "table":
        table = bench.load_nb201(args.nasbench)

        def objective(arch):
            return float(table.query(arch, dataset="cifar10-valid", metric="valid_acc", epochs=12))
    else:
        objective = training_objective(
            args.dataset,
            seed=args.seed,
            epochs=args.epochs,
            channels=args.channels,
            cells_per_stage=args.cells,
            data_dir=args.data_dir,
        )
    show = progress(f"{args.searcher} ({args.objective})", "evaluations")
    searcher = make_searcher(args.searcher, space)

    def on_evaluation(e: dict) -> None:  # counted from the run's start, resumed or not
        show(min(e["round"] * searcher.batch_size + e["i"] + 1, args.evaluations), args.evaluations)

    start = time.perf_counter()
    executor = _executor(args)
    try:
        _, records = search.run(
            searcher,
            objective,
            jax.random.key(args.seed),
            num_evaluations=args.evaluations,
            space=space,
            out=args.out,
            resume=args.resume,
            on_evaluation=on_evaluation,
            executor=executor,
            asynchronous=args.asynchronous,
        )
    finally:
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)
    best = records[-1]
    summary = {
        "searcher": args.searcher,
        "objective": args.objective,
        "evaluations": sum(len(r["evaluations"]) for r in records),
        "best_arch": best["best_arch"],
        "best_fitness": best["best_fitness"],
        "wall_s": round(time.perf_counter() - start, 1),
    }
    if args.objective == "table":
        summary["nb201"] = bench.arch_report(table, space.from_string(best["best_arch"]))
    pathlib.Path(args.out, "summary.json").write_text(json.dumps(summary, indent=1))
    plots.draw_cell(
        space,
        space.from_string(best["best_arch"]),
        pathlib.Path(args.out, "cell.png"),
        title=f"{args.searcher}: best of {summary['evaluations']} evaluations",
    )
    print(
        f"best of {summary['evaluations']} evaluations: {best['best_arch']} "
        f"(fitness {best['best_fitness']:.2f})"
    )
    for name, value in summary.get("nb201", {}).items():
        print(f"  NB201 {name:32s} {value:6.2f}")
    print(f"wrote {args.out}/records.jsonl, evaluations.jsonl, summary.json, cell.png")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    """`jnas search`: its flags, its choices from the registries."""
    search = sub.add_parser(
        "search",
        help="black-box search in the NB201 space (table or real training)",
        description="Run a black-box searcher in the NB201 space for --evaluations "
        "evaluations: look each cell up in the NB201 table (12-epoch CIFAR-10 validation "
        "accuracy), or train each cell from scratch on --dataset and use its validation "
        "accuracy. Checkpointed after every round; --resume continues a killed run without "
        "losing or repeating an evaluation.",
    )
    search.add_argument("searcher", choices=SEARCHERS, help=SEARCHERS_HELP)
    search.add_argument(
        "--objective",
        default="train",
        choices=("train", "table"),
        help="train: train every candidate on --dataset; table: NB201 lookup (default: train)",
    )
    add_data_flags(search)
    search.add_argument("--evaluations", type=positive_int, default=20, help="default: 20")
    search.add_argument(
        "--epochs", type=positive_int, default=3, help="training epochs per candidate (default: 3)"
    )
    search.add_argument("--channels", type=positive_int, default=8, help="default: 8")
    search.add_argument("--cells", type=positive_int, default=1, help="default: 1")
    search.add_argument(
        "--workers",
        type=positive_int,
        default=1,
        help="evaluate this many candidates at once in a local process pool (or a local "
        "Dask cluster with --dask local); default 1: one at a time in this process",
    )
    search.add_argument(
        "--dask",
        default=None,
        metavar="ADDRESS",
        help="evaluate on a Dask cluster: a scheduler address (tcp://host:8786; start one "
        "with `dask scheduler` and `dask worker ADDRESS` on each machine) or 'local'",
    )
    search.add_argument(
        "--async",
        dest="asynchronous",
        action="store_true",
        help="asynchronous search: a worker that finishes gets the next candidate at once "
        "(searchers with batch size 1)",
    )
    search.add_argument("--nasbench", default=None, help=NASBENCH_HELP)
    search.add_argument(
        "--out", default=None, help="run folder (default: a new folder out/search/<date-time>)"
    )
    search.set_defaults(func=cmd_search)
