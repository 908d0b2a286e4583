"""`jnas search`: a black-box search in a space (NB201 by default), against the space's
NAS-Bench table or by training every candidate on a dataset; checkpointed after every
evaluation round (`--resume`)."""

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
from jnas.recipes.spaces import TRAIN_SPACES
from jnas.recipes.tables import SPACE_TABLES, search_setup
from jnas.search import make_searcher

SEARCH_SPACES = tuple(dict.fromkeys((*TRAIN_SPACES, *SPACE_TABLES)))


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
    space: str = "nb201"

    def __call__(self, arch: Any) -> float:
        import jax
        from flax import nnx

        from jnas.recipes.spaces import make_space, network_config
        from jnas.train import TrainConfig, evaluate, train

        splits, k_train = _data(self.dataset, self.seed, self.data_dir)
        num_classes = int(splits["train"].y.max()) + 1
        config = TrainConfig(
            epochs=self.epochs, batch_size=64, lr=0.05, augment=self.dataset != "digits"
        )
        size = network_config(
            self.space,
            self.channels,
            self.cells_per_stage,
            num_classes,
            int(splits["train"].x.shape[-1]),
        )
        model = make_space(self.space).build(
            jax.tree.map(jax.numpy.asarray, arch), **size, rngs=nnx.Rngs(k_train)
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
    space: str = "nb201",
) -> TrainingObjective:
    """The objective of `--objective train` (see `TrainingObjective`)."""
    return TrainingObjective(dataset, seed, epochs, channels, cells_per_stage, data_dir, space)


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

    executor = _executor(args)  # a bad flag combination fails before any loading
    try:
        space, setup = search_setup(args.space, args.objective, args.nasbench)
        if setup is not None:
            lookup = jax.jit(lambda a: setup.objective(jax.tree.map(lambda x: x[None], a))[0][0])

            def objective(arch):  # the table's signal (a perplexity's negative for nbnlp)
                return float(lookup(arch))
        else:
            objective = training_objective(
                args.dataset,
                seed=args.seed,
                epochs=args.epochs,
                channels=args.channels,
                cells_per_stage=args.cells,
                data_dir=args.data_dir,
                space=args.space,
            )
        show = progress(f"{args.searcher} ({args.objective})", "evaluations")
        searcher = make_searcher(args.searcher, space)

        def on_evaluation(e: dict) -> None:  # counted from the run's start, resumed or not
            show(
                min(e["round"] * searcher.batch_size + e["i"] + 1, args.evaluations),
                args.evaluations,
            )

        start = time.perf_counter()
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
        "space": args.space,
        "objective": args.objective,
        "evaluations": sum(len(r["evaluations"]) for r in records),
        "best_arch": best["best_arch"],
        "best_fitness": best["best_fitness"],
        "wall_s": round(time.perf_counter() - start, 1),
    }
    found = space.from_string(best["best_arch"])
    if setup is not None:  # the incumbent's reported values in its table
        summary[setup.name] = bench.arch_report(setup.table, found, setup.report)
    pathlib.Path(args.out, "summary.json").write_text(json.dumps(summary, indent=1))
    base = getattr(space, "base", space)  # a table's subset draws its cells in their space
    plots.draw_cell(
        base,
        space.cell(found) if base is not space else found,
        pathlib.Path(args.out, "cell.png"),
        title=f"{args.searcher}: best of {summary['evaluations']} evaluations",
    )
    print(
        f"best of {summary['evaluations']} evaluations: {best['best_arch']} "
        f"(fitness {best['best_fitness']:.2f})"
    )
    if setup is not None:
        for name, value in summary[setup.name].items():
            print(f"  {setup.name} {name:32s} {value:8.2f}")
    print(f"wrote {args.out}/records.jsonl, evaluations.jsonl, summary.json, cell.png")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    """`jnas search`: its flags, its choices from the registries."""
    search = sub.add_parser(
        "search",
        help="black-box search in a space (table or real training)",
        description="Run a black-box searcher in --space for --evaluations evaluations: "
        "look each architecture up in the space's NAS-Bench table (NB201: 12-epoch CIFAR-10 "
        "validation accuracy; NATS size: 90-epoch; the NB101 and NB301 subsets and "
        "NAS-Bench-NLP: their cells only, NAS-Bench-NLP's negative validation perplexity), "
        "or train each from scratch on --dataset and use its validation accuracy. "
        "Checkpointed after every round; --resume continues a killed run without losing or "
        "repeating an evaluation.",
    )
    search.add_argument("searcher", choices=SEARCHERS, help=SEARCHERS_HELP)
    search.add_argument(
        "--space",
        default="nb201",
        choices=SEARCH_SPACES,
        help="the space searched (default: nb201); --objective table needs one with a "
        f"table: {', '.join(SPACE_TABLES)}",
    )
    search.add_argument(
        "--objective",
        default="train",
        choices=("train", "table"),
        help="train: train every candidate on --dataset; table: the space's NAS-Bench table "
        "(default: train)",
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
