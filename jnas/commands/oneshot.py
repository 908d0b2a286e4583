"""`jnas oneshot`: flags and printing around `jnas.recipes.oneshot.run_oneshot`, a one-shot
search in the NB201 space on a dataset, with records,
checkpoints, α plots, the derived cell's drawing and its NB201 table accuracy."""

from __future__ import annotations

import argparse

from jnas.commands._common import progress
from jnas.recipes.oneshot import load_nb201_if_present, run_oneshot

# `jnas.oneshot.REGISTRY`'s names, here so that `jnas --help` need not import jax
# (tests/oneshot/test_registry.py keeps the two equal).
METHOD_NAMES = (
    "darts-v1",
    "darts-v2",
    "gdas",
    "snas",
    "proxyless",
    "enas",
    "rsws",
    "spos",
    "oneshot-dropout",
    "setn",
    "drnas",
)


def cmd_oneshot(args: argparse.Namespace) -> int:
    table = load_nb201_if_present(args.nasbench)
    summary = run_oneshot(
        args.method,
        args.dataset,
        seed=args.seed,
        epochs=args.epochs,
        batch_size=args.batch_size,
        channels=args.channels,
        cells_per_stage=args.cells,
        out=args.out,
        resume=args.resume,
        table=table,
        data_dir=args.data_dir,
        progress=progress(f"{args.method} on {args.dataset}", "epochs"),
    )
    print(f"derived cell: {summary['arch']}")
    print(
        f"supernet train loss {summary['w_loss']:.3f}, accuracy {summary['w_acc']:.3f}; "
        f"searched in {summary['search_s']}s"
    )
    for name, value in summary.get("nb201", {}).items():
        print(f"  NB201 {name:32s} {value:6.2f}")
    print(f"wrote {args.out}/records.jsonl, alpha.png, cell.png, summary.json")
    return 0
