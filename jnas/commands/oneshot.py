"""`jnas oneshot`: flags and printing around `jnas.recipes.oneshot.run_oneshot`, a one-shot
search in a space with a supernet (NB201 by default) on a dataset, with records,
checkpoints, α plots, the derived cell's drawing and its NB201 table accuracy."""

from __future__ import annotations

import argparse

from jnas.commands._common import (
    ALPHA_LR_HELP,
    NASBENCH_HELP,
    add_data_flags,
    data_parallel_mesh,
    positive_float,
    positive_int,
    progress,
)
from jnas.recipes.oneshot import ONESHOT_SPACES, load_nb201_if_present, run_oneshot

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
    "smash",
)


def cmd_oneshot(args: argparse.Namespace) -> int:
    mesh = data_parallel_mesh(args.devices, args.batch_size)  # before JAX starts
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
        space_name=args.space,
        alpha_lr=args.alpha_lr,
        mesh=mesh,
    )
    print(f"derived architecture ({args.space}): {summary['arch']}")
    print(
        f"supernet train loss {summary['w_loss']:.3f}, accuracy {summary['w_acc']:.3f}; "
        f"searched in {summary['search_s']}s"
    )
    if "w_perplexity" in summary:
        unit = "character" if summary["dataset"] == "python" else "word"
        print(f"  perplexity (per {unit}): train {summary['w_perplexity']:.2f}", end="")
        if "alpha_perplexity" in summary:
            print(f", validation {summary['alpha_perplexity']:.2f}", end="")
        print(f" on {summary['dataset']}")
    for name, value in summary.get("nb201", {}).items():
        print(f"  NB201 {name:32s} {value:6.2f}")
    print(f"wrote {args.out}/records.jsonl, alpha.png, cell.png, summary.json")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    """`jnas oneshot`: its flags, its choices from the registries."""
    oneshot = sub.add_parser(
        "oneshot",
        help="one-shot (weight-sharing) search in a space with a supernet (NB201 by default)",
        description="Train a supernet with a one-shot method, derive the architecture every "
        "epoch and log it (and, in NB201, its table accuracy when the table is present) to "
        "--out/records.jsonl, with checkpoints, an α heatmap and a drawing of it.",
    )
    oneshot.add_argument("method", choices=METHOD_NAMES, help="one-shot method")
    oneshot.add_argument(
        "--space",
        choices=ONESHOT_SPACES,
        default="nb201",
        help="search space (default: nb201); darts: the DARTS search network, chain: "
        "ProxylessNAS' MobileNet blocks, nats_size: NATS channel widths, memory_bank: SMASH, "
        "darts_rnn: DARTS' recurrent cell in a character language model (--dataset python; "
        "--channels is its embedding and hidden size)",
    )
    add_data_flags(oneshot, text=True)
    oneshot.add_argument("--epochs", type=positive_int, default=10, help="default: 10")
    oneshot.add_argument("--batch-size", type=positive_int, default=64, help="default: 64")
    oneshot.add_argument(
        "--channels",
        type=positive_int,
        default=8,
        help="supernet channels C (NB201: 16; default: 8)",
    )
    oneshot.add_argument(
        "--cells",
        type=positive_int,
        default=1,
        help="search cells per stage N (NB201: 5; DARTS: the number of cells, 8; default: 1)",
    )
    oneshot.add_argument("--alpha-lr", type=positive_float, default=None, help=ALPHA_LR_HELP)
    oneshot.add_argument(
        "--devices",
        type=positive_int,
        default=1,
        help="data parallel: split every batch over this many devices; on a CPU, devices "
        "made from its cores (2 on 2 cores, NB201 at batch 64: a DARTS-V1 step 0.77x the "
        "time of one device, GDAS 0.87x; at batch 16 GDAS 1.13x; "
        "benchmarks/cpu_data_parallel.py); default: 1",
    )
    oneshot.add_argument("--nasbench", default=None, help=NASBENCH_HELP)
    oneshot.add_argument(
        "--out", default=None, help="run folder (default: a new folder out/oneshot/<date-time>)"
    )
    oneshot.set_defaults(func=cmd_oneshot)
