"""`jnas train`: train an NB201 cell from scratch on a dataset and report test accuracy."""

from __future__ import annotations

import argparse

from jnas.commands._common import progress
from jnas.recipes.train import run_train


def cmd_train(args: argparse.Namespace) -> int:
    summary = run_train(
        args.arch,
        args.dataset,
        seed=args.seed,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        channels=args.channels,
        cells_per_stage=args.cells,
        out=args.out,
        resume=args.resume,
        data_dir=args.data_dir,
        stream=args.stream,
        progress=progress(f"train on {args.dataset}", "epochs"),
    )
    print(
        f"{summary['arch']} on {summary['dataset']}: test accuracy "
        f"{100 * summary['test_acc']:.2f}% after {summary['epochs']} epochs "
        f"({summary['train_s']}s)"
    )
    print(f"wrote {args.out}/records.jsonl and summary.json")
    return 0
