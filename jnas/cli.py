"""The `jnas` command: the top-level parser and error handling; each subcommand (its flags,
its run) lives in a module of `jnas.commands`."""

from __future__ import annotations

import argparse
import pathlib
import sys
import time
from collections.abc import Sequence

from jnas.commands import bench, demo, estimate, meta, oneshot, search, spaces, train
from jnas.commands._common import SPACE_NAMES, enable_compilation_cache, make_space
from jnas.commands.spaces import describe

__all__ = ["SPACE_NAMES", "build_parser", "describe", "main", "make_space"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jnas", description="JAX-native, functional neural architecture search."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    for command in (demo, oneshot, search, train, meta, spaces, bench, estimate):
        command.add_parser(sub)  # each command owns its flags
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
