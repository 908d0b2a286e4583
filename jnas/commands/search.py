"""`jnas search`: a black-box search in the NB201 space, against the table or by training
every candidate on a dataset; checkpointed after every evaluation round (`--resume`)."""

from __future__ import annotations

import argparse
import json
import pathlib
import time
from typing import Any

from jnas.commands._common import progress
from jnas.search import make_searcher


def training_objective(
    dataset: str,
    *,
    seed: int,
    epochs: int,
    channels: int,
    cells_per_stage: int,
    data_dir: str | None = None,
):
    """fitness(arch) = validation accuracy (%) of the cell's network trained from scratch
    for `epochs` epochs on the dataset's `train` split."""
    import jax
    from flax import nnx

    from jnas import data
    from jnas.spaces import NB201
    from jnas.train import TrainConfig, evaluate, train

    space = NB201()
    k_data, k_train = jax.random.split(jax.random.key(seed))
    splits = data.load_dataset(dataset, k_data, data_dir=data_dir)
    num_classes = int(splits["train"].y.max()) + 1
    config = TrainConfig(epochs=epochs, batch_size=64, lr=0.05, augment=dataset != "digits")

    def fitness(arch: Any) -> float:
        model = space.build(
            arch,
            channels=channels,
            cells_per_stage=cells_per_stage,
            num_classes=num_classes,
            rngs=nnx.Rngs(k_train),
        )
        try:
            model, _ = train(model, k_train, splits["train"], config)
        except FloatingPointError:
            return float("nan")  # a diverged candidate is the worst, not a crash
        return 100.0 * evaluate(model, splits["valid"])["acc"]

    return fitness


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
    count = [0]

    def on_evaluation(e: dict) -> None:
        count[0] += 1
        show(min(count[0], args.evaluations), args.evaluations)

    start = time.perf_counter()
    _, records = search.run(
        make_searcher(args.searcher, space),
        objective,
        jax.random.key(args.seed),
        num_evaluations=args.evaluations,
        space=space,
        out=args.out,
        resume=args.resume,
        on_evaluation=on_evaluation,
    )
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
