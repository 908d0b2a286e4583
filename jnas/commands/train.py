"""`jnas train`: train an architecture (an NB201 cell by default) from scratch on a dataset
and report test accuracy."""

from __future__ import annotations

import argparse

from jnas.commands._common import add_data_flags, positive_int, progress
from jnas.recipes.spaces import TRAIN_SPACES
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
        space_name=args.space,
    )
    print(
        f"{summary['arch']} on {summary['dataset']}: test accuracy "
        f"{100 * summary['test_acc']:.2f}% after {summary['epochs']} epochs "
        f"({summary['train_s']}s)"
    )
    print(f"wrote {args.out}/records.jsonl and summary.json")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    """`jnas train`: its flags, its choices from the registries."""
    train = sub.add_parser(
        "train",
        help="train an architecture (NB201 cell by default) from scratch",
        description="Train the network of an architecture of --space (SGD Nesterov, cosine, "
        "weight decay 5e-4) on a dataset's training split and report test accuracy every "
        "epoch. --channels and --cells size it: C and cells per stage for NB201 and the "
        "hierarchical space, the stem's C and cells per stack for NB101, C and cells per "
        "stage (3 stages) for DARTS, the first stage's C for the memory-bank space (NATS size, "
        "Chain and the sequential space fix their own widths).",
    )
    train.add_argument(
        "arch",
        help="the architecture as `jnas spaces SPACE` prints it, e.g. an NB201 cell "
        "'|nor_conv_3x3~0|+|nor_conv_3x3~0|skip_connect~1|+|...|'",
    )
    train.add_argument(
        "--space",
        default="nb201",
        choices=TRAIN_SPACES,
        help="the architecture's space (default: nb201)",
    )
    add_data_flags(train)
    train.add_argument("--epochs", type=positive_int, default=20, help="default: 20")
    train.add_argument("--batch-size", type=positive_int, default=64, help="default: 64")
    train.add_argument("--lr", type=float, default=0.05, help="default: 0.05")
    train.add_argument("--channels", type=positive_int, default=16, help="default: 16")
    train.add_argument(
        "--cells", type=positive_int, default=2, help="cells per stage N (NB201: 5; default: 2)"
    )
    train.add_argument(
        "--stream",
        action="store_true",
        help="keep the training data on the host and stream prefetched "
        "batches to the device (for data larger than device memory)",
    )
    train.add_argument(
        "--out", default=None, help="run folder (default: a new folder out/train/<date-time>)"
    )
    train.set_defaults(func=cmd_train)
