"""The `jnas` command: argument parsing; each subcommand lives in `jnas.commands`."""

from __future__ import annotations

import argparse
import pathlib
import sys
import time
from collections.abc import Sequence

from jnas.commands._common import (
    SEARCHERS,
    SEARCHERS_HELP,
    SPACE_NAMES,
    enable_compilation_cache,
    make_space,
)
from jnas.commands.bench import FAST_SEARCHERS, cmd_bench_convert, cmd_bench_run
from jnas.commands.demo import cmd_demo
from jnas.commands.meta import DATASETS as META_DATASETS
from jnas.commands.meta import METHODS as META_METHODS
from jnas.commands.meta import cmd_meta
from jnas.commands.oneshot import METHOD_NAMES, cmd_oneshot
from jnas.commands.search import cmd_search
from jnas.commands.spaces import cmd_spaces, describe
from jnas.commands.train import cmd_train

__all__ = ["SPACE_NAMES", "build_parser", "describe", "main", "make_space"]

DATASETS = ("digits", "cifar10", "cifar100", "imagenet16", "mnist", "fashion_mnist", "svhn")
NASBENCH_HELP = "folder of the NAS-Bench tables (default: $JNAS_NASBENCH_DIR or ../shared/nasbench)"


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1; got {text}")
    return value


def _add_data_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--dataset",
        default="digits",
        choices=DATASETS,
        help="digits (bundled, no download) or a prepared TFDS dataset with "
        "NB201's splits (default: digits)",
    )
    p.add_argument(
        "--data-dir",
        default=None,
        help="TFDS data_dir (default: $TFDS_DATA_DIR or ~/tensorflow_datasets)",
    )
    p.add_argument("--seed", type=int, default=0, help="PRNG seed (default: 0)")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue a killed run from the checkpoints under --out",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jnas", description="JAX-native, functional neural architecture search."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser(
        "demo",
        help="the main job: a one-shot search on the bundled digits, end to end",
        description="Search the NB201 cell space with a one-shot method on scikit-learn's "
        "digits, derive the cell, train it from scratch and report its test accuracy; with "
        "the NB201 table, also report the cell's published CIFAR-10/100/ImageNet16 "
        "accuracies and run regularized evolution vs random search on the table.",
    )
    demo.add_argument(
        "--out", default=None, help="run folder (default: a new folder out/demo/<date-time>)"
    )
    demo.add_argument(
        "--method",
        default="darts-v1",
        choices=METHOD_NAMES,
        help="one-shot method (default: darts-v1)",
    )
    demo.add_argument(
        "--epochs", type=_positive_int, default=10, help="search epochs (default: 10)"
    )
    demo.add_argument(
        "--train-epochs",
        type=_positive_int,
        default=20,
        help="epochs of the final training (default: 20)",
    )
    demo.add_argument(
        "--seeds", type=_positive_int, default=100, help="seeds of the table search (default: 100)"
    )
    demo.add_argument("--nasbench", default=None, help=NASBENCH_HELP)
    demo.add_argument("--seed", type=int, default=0, help="PRNG seed (default: 0)")
    demo.set_defaults(func=cmd_demo)

    oneshot = sub.add_parser(
        "oneshot",
        help="one-shot (weight-sharing) search in the NB201 space",
        description="Train an NB201 supernet with a one-shot method, derive the cell every "
        "epoch and log it (and its NB201 table accuracy when the table is present) to "
        "--out/records.jsonl, with checkpoints, an α heatmap and a drawing of the cell.",
    )
    oneshot.add_argument("method", choices=METHOD_NAMES, help="one-shot method")
    _add_data_flags(oneshot)
    oneshot.add_argument("--epochs", type=_positive_int, default=10, help="default: 10")
    oneshot.add_argument("--batch-size", type=_positive_int, default=64, help="default: 64")
    oneshot.add_argument(
        "--channels",
        type=_positive_int,
        default=8,
        help="supernet channels C (NB201: 16; default: 8)",
    )
    oneshot.add_argument(
        "--cells",
        type=_positive_int,
        default=1,
        help="search cells per stage N (NB201: 5; default: 1)",
    )
    oneshot.add_argument("--nasbench", default=None, help=NASBENCH_HELP)
    oneshot.add_argument(
        "--out", default=None, help="run folder (default: a new folder out/oneshot/<date-time>)"
    )
    oneshot.set_defaults(func=cmd_oneshot)

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
    _add_data_flags(search)
    search.add_argument("--evaluations", type=_positive_int, default=20, help="default: 20")
    search.add_argument(
        "--epochs", type=_positive_int, default=3, help="training epochs per candidate (default: 3)"
    )
    search.add_argument("--channels", type=_positive_int, default=8, help="default: 8")
    search.add_argument("--cells", type=_positive_int, default=1, help="default: 1")
    search.add_argument("--nasbench", default=None, help=NASBENCH_HELP)
    search.add_argument(
        "--out", default=None, help="run folder (default: a new folder out/search/<date-time>)"
    )
    search.set_defaults(func=cmd_search)

    train = sub.add_parser(
        "train",
        help="train an NB201 cell from scratch",
        description="Train the NB201 network of a cell (SGD Nesterov, cosine, weight decay "
        "5e-4) on a dataset's training split and report test accuracy every epoch.",
    )
    train.add_argument(
        "arch",
        help="NB201 cell string, e.g. '|nor_conv_3x3~0|+|nor_conv_3x3~0|skip_connect~1|+|...|'",
    )
    _add_data_flags(train)
    train.add_argument("--epochs", type=_positive_int, default=20, help="default: 20")
    train.add_argument("--batch-size", type=_positive_int, default=64, help="default: 64")
    train.add_argument("--lr", type=float, default=0.05, help="default: 0.05")
    train.add_argument("--channels", type=_positive_int, default=16, help="default: 16")
    train.add_argument(
        "--cells", type=_positive_int, default=2, help="cells per stage N (NB201: 5; default: 2)"
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

    meta = sub.add_parser(
        "meta",
        help="meta-learning: MAML, Reptile, ANIL, ProtoNets, MetaNAS, T-NAS",
        description="Meta-train on few-shot tasks (sinusoid regression, Omniglot from the "
        "official zips, or the bundled digits) and report the held-out tasks' loss and "
        "accuracy before and after adaptation (mean ± 95%% CI). MetaNAS and T-NAS adapt an "
        "NB201 supernet's weights and α per task and print the task's cell. Records, "
        "checkpoints (--resume) and summary.json go under --out.",
    )
    meta.add_argument("method", choices=META_METHODS, help="meta-learning method")
    meta.add_argument(
        "--dataset",
        default="omniglot",
        choices=META_DATASETS,
        help="task source (default: omniglot)",
    )
    meta.add_argument(
        "--omniglot",
        default=None,
        help="folder of images_background_small{1,2}.zip (default: ../shared/omniglot)",
    )
    meta.add_argument(
        "--data-dir",
        default=None,
        help="TFDS data_dir for --dataset "
        "omniglot-tfds (default: $TFDS_DATA_DIR or ~/tensorflow_datasets)",
    )
    meta.add_argument("--ways", type=_positive_int, default=5, help="classes per task (default: 5)")
    meta.add_argument(
        "--shots",
        type=_positive_int,
        default=1,
        help="support examples per class, or points for the sinusoid (default: 1)",
    )
    meta.add_argument(
        "--queries", type=_positive_int, default=15, help="query examples per class (default: 15)"
    )
    meta.add_argument(
        "--steps", type=_positive_int, default=1000, help="outer (meta) steps (default: 1000)"
    )
    meta.add_argument(
        "--meta-batch", type=_positive_int, default=16, help="tasks per outer step (default: 16)"
    )
    meta.add_argument(
        "--inner-steps",
        type=_positive_int,
        default=None,
        help="inner steps (default: the method's paper setting)",
    )
    meta.add_argument(
        "--test-tasks",
        type=_positive_int,
        default=600,
        help="held-out tasks to evaluate (default: 600)",
    )
    meta.add_argument("--seed", type=int, default=0, help="PRNG seed (default: 0)")
    meta.add_argument("--resume", action="store_true", help="continue a killed run")
    meta.add_argument(
        "--out", default=None, help="run folder (default: a new folder out/meta/<date-time>)"
    )
    meta.set_defaults(func=cmd_meta)

    spaces = sub.add_parser(
        "spaces",
        help="list search spaces, sample and print architectures",
        description="List the search spaces, or sample "
        "an architecture of one (or all) and print its network's size.",
    )
    spaces.add_argument(
        "space",
        nargs="?",
        default="all",
        choices=("all", *SPACE_NAMES),
        help="which space (default: all)",
    )
    spaces.add_argument("--list", action="store_true", help="list spaces and their sizes")
    spaces.add_argument("--seed", type=int, default=0, help="PRNG seed (default: 0)")
    spaces.add_argument(
        "--arch",
        help="an architecture string of SPACE (as printed) to "
        "describe or draw instead of a sampled one",
    )
    spaces.add_argument(
        "--draw",
        metavar="PATH",
        help="draw the architecture to PATH (.png, .svg or .pdf); needs one SPACE",
    )
    spaces.set_defaults(func=cmd_spaces)

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
    return parser


def new_run_folder(parent: pathlib.Path) -> pathlib.Path:
    """`parent/<UTC date-time>` (a `-N` suffix if taken): a run without `--out` never
    lands in an earlier run's folder."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    parent.mkdir(parents=True, exist_ok=True)
    for n in range(1, 1000):
        folder = parent / (stamp if n == 1 else f"{stamp}-{n}")
        try:
            folder.mkdir()  # atomic: two runs started in the same second get two folders
            return folder
        except FileExistsError:
            continue
    raise FileExistsError(f"new_run_folder: 999 runs in {parent} this second")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `jnas` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "out", "") is None:  # a run command without --out
        if getattr(args, "resume", False):
            parser.error("--resume needs --out: the folder of the run to continue")
        args.out = str(new_run_folder(pathlib.Path("out") / args.command))
    enable_compilation_cache()
    try:
        return args.func(args)
    except (ValueError, OSError) as err:  # bad input: one clear line, no traceback
        print(f"jnas {args.command}: error: {err}", file=sys.stderr)
        return 2
    except FloatingPointError as err:
        print(f"jnas {args.command}: stopped: {err}", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
