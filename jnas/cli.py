"""The `jnas` command: the top-level parser and error handling; each subcommand (its flags,
its run) lives in a module of `jnas.commands`."""

from __future__ import annotations

import argparse
import os
import pathlib
import sys
import time
from collections.abc import Sequence

from jnas.commands import (
    automl_zero,
    bench,
    demo,
    estimate,
    meta,
    oneshot,
    search,
    spaces,
    train,
    transfer,
)
from jnas.commands._common import SPACE_NAMES, enable_compilation_cache, make_space
from jnas.commands._quiet import drain_stderr, quiet_xla_alarms
from jnas.commands.spaces import describe

__all__ = ["SPACE_NAMES", "build_parser", "describe", "main", "make_space"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jnas", description="JAX-native, functional neural architecture search."
    )
    parser.add_argument("--version", action="version", version=f"jnas {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    for command in (
        demo,
        oneshot,
        search,
        train,
        meta,
        automl_zero,
        spaces,
        bench,
        estimate,
        transfer,
    ):
        command.add_parser(sub)  # each command owns its flags
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("jnas")
    except PackageNotFoundError:
        return "unknown (not installed)"


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


# Flags a resumed run may change: where the data lie, where evaluations run, and how long
# a search or a meta-training runs (none changes what the finished part computed).
MOVABLE = (
    "out",
    "resume",
    "func",
    "nasbench",
    "data_dir",
    "omniglot",
    "workers",
    "dask",
    "devices",
)
EXTENDABLE = {
    "search": ("evaluations",),
    "meta": ("steps",),
    "automl-zero": ("max_evaluations",),
}


def run_settings(args: argparse.Namespace) -> dict:
    """The settings a resumable run stores in its folder and a resume must repeat."""
    skip = {*MOVABLE, *EXTENDABLE.get(args.command, ())}
    return {k: v for k, v in sorted(vars(args).items()) if k not in skip and not callable(v)}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `jnas` console script."""
    parser = build_parser()
    console = argv is None
    if console:
        quiet_xla_alarms()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    if getattr(args, "command", None) == "oneshot" and args.dataset is None:  # its data
        from jnas.recipes.oneshot import default_dataset

        args.dataset = default_dataset(args.space)
    out = getattr(args, "out", "")
    made = out is None or (bool(out) and not pathlib.Path(out).exists())  # ours to tidy
    parents: list[pathlib.Path] = []
    if out is None:  # a run command without --out
        if getattr(args, "resume", False):
            parser.error("--resume needs --out: the folder of the run to continue")
        parent = pathlib.Path("out") / args.command
        parents = [p for p in (parent, parent.parent) if not p.exists()]
        args.out = str(new_run_folder(parent))
    try:
        return _dispatch(args, argv, console)
    finally:
        if made and sys.exc_info()[0] is None:
            _tidy(args.out)
            for p in parents:  # the out/<command> folders this call made, left empty
                if p.is_dir() and not any(p.iterdir()):
                    p.rmdir()


def _tidy(out: str | None) -> None:
    """Remove a run folder this invocation created when the run left nothing in it but
    jnas' own mark and lock (it failed on bad input before writing anything): bad input
    leaves nothing behind. A folder holding anything else is kept."""
    from jnas.checkpoint import LOCK, MARKER

    folder = pathlib.Path(out) if out else None
    if folder is None or not folder.is_dir():
        return
    names = {p.name for p in folder.iterdir()}
    if names <= {MARKER, LOCK, "records.jsonl"} and not (
        (folder / "records.jsonl").exists() and (folder / "records.jsonl").stat().st_size
    ):
        for name in names:
            (folder / name).unlink()
        folder.rmdir()


def _dispatch(args: argparse.Namespace, argv: list[str], console: bool) -> int:
    """Run the command; bad input is one line on stderr and exit code 2."""
    from jnas._cache_prune import limit_from_environment
    from jnas.checkpoint import claim

    resumable = hasattr(args, "resume")
    try:
        limit_from_environment()  # a bad $JNAS_XLA_CACHE_GB fails before a run folder
        if resumable:  # before any start-up cost: a wrong folder fails in a second
            every = {k: v for k, v in sorted(vars(args).items()) if not callable(v)}
            claim(args.out, resume=args.resume, settings=run_settings(args), args=every)
        enable_compilation_cache()
        return args.func(args)
    except (ValueError, OSError) as err:  # bad input: one clear line, no traceback
        print(f"jnas {args.command}: error: {err}", file=sys.stderr)
        return 2
    except FloatingPointError as err:
        print(f"jnas {args.command}: stopped: {err}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        print(f"\njnas {args.command}: interrupted; {_saved(args, argv)}", file=sys.stderr)
        if console:  # skip interpreter shutdown: the checkpointer's interrupted event
            sys.stdout.flush()  # loop would print tracebacks; a run survives a kill at
            sys.stderr.flush()  # any point, so nothing is lost by not tidying up
            drain_stderr()
            os._exit(130)
        return 130


def _saved(args: argparse.Namespace, argv: list[str]) -> str:
    """What an interrupted run left and how to continue it."""
    out = getattr(args, "out", None)
    if out is None or not hasattr(args, "resume"):
        return "nothing to resume"
    from jnas.checkpoint import read_jsonl

    done = len(read_jsonl(pathlib.Path(out) / "records.jsonl"))
    again = [a for a in argv if a != "--resume"]
    if "--out" not in again:
        again += ["--out", out]
    return f"{done} finished unit(s) saved in {out}; continue with: jnas {' '.join(again)} --resume"


if __name__ == "__main__":
    sys.exit(main())
