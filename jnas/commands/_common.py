"""What the commands share: space names, a progress bar, the on-disk compile cache."""

from __future__ import annotations

import argparse
import pathlib
import sys
from typing import Any, TextIO

# the commands find the spaces here
from jnas.recipes.spaces import SPACE_NAMES as SPACE_NAMES
from jnas.recipes.spaces import make_space as make_space
from jnas.search import REGISTRY, single_objective

# `jnas search` and `jnas bench run`: one fitness per architecture; `jnas bench pareto`:
# the multi-objective searchers
SEARCHERS = {name: entry.description for name, entry in single_objective().items()}
PARETO_SEARCHERS = {n: e.description for n, e in REGISTRY.items() if e.multi_objective}
SEARCHERS_HELP = ", ".join(f"{k} {v}" for k, v in SEARCHERS.items())


class _Lines:
    """A stream for tqdm in a log (not a terminal): each status on its own line, no
    carriage returns."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def write(self, text: str) -> None:
        text = text.replace("\r", "").strip()
        if text:
            self.stream.write(text + "\n")

    def flush(self) -> None:
        self.stream.flush()


def data_parallel_mesh(devices: int, batch_size: int) -> Any:
    """None for one device; else a 1-D mesh (`jnas.parallel.mesh`) over the first
    `devices` devices, asking JAX first for that many CPU devices (a CPU's cores as
    devices: `jax_num_cpu_devices`, which must be set before JAX starts). A JAX already
    started with enough devices (a test's forced ones) is used as it is."""
    if batch_size % devices:
        raise ValueError(
            f"--devices: the batch size must split evenly over the devices; got "
            f"--batch-size {batch_size} and --devices {devices}"
        )
    if devices == 1:
        return None
    import jax

    from jnas import parallel

    try:
        jax.config.update("jax_num_cpu_devices", devices)
    except RuntimeError:  # JAX has started: its devices are what there is
        pass
    have = jax.devices()
    if len(have) < devices:
        raise ValueError(
            f"--devices: expected at most the {len(have)} {jax.default_backend()} "
            f"device(s) JAX has; got {devices}"
        )
    return parallel.mesh(have[:devices])


def progress(label: str, unit: str = "seeds", *, stream: TextIO | None = None):
    """A tqdm progress bar on stderr: `show(done, total)` with absolute counts, so a resumed
    run's bar starts where the run was. On a terminal it redraws in place; in a log (CI, a
    file) it writes a plain line at most every 30 s and at the end."""
    from tqdm import tqdm

    out: TextIO = sys.stderr if stream is None else stream
    bar = None

    def show(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            terminal = out.isatty()
            bar = tqdm(
                total=total,
                initial=done,
                desc=label,
                unit=f" {unit}",
                file=out if terminal else _Lines(out),  # type: ignore[arg-type]
                mininterval=0.1 if terminal else 30.0,
                dynamic_ncols=terminal,
                ascii=not terminal,
            )
        bar.update(done - bar.n)
        if done >= total:
            bar.close()

    return show


def enable_compilation_cache() -> None:
    """Keep compiled XLA programs on disk, so a repeated run skips most of its compile
    (the NB201 protocol: ~7 s cold, under 1 s warm on 2 CPU cores). The folder is
    `$JNAS_XLA_CACHE` (default `~/.cache/jnas/xla`); set it empty to turn this off. Every
    program is kept, even the op-by-op ones of building a network (59 of them, 3.7 s of
    each start of `jnas train`). A one-shot run's step program is kept too, traced
    (`jnas._trace_store`, under `traces/`; `JNAS_TRACE_STORE=0` turns it off): a warm
    start then skips tracing it. The folder is bounded to `$JNAS_XLA_CACHE_GB` GiB (default
    4; 0: no bound), least recently used programs removed at the start
    (`jnas._cache_prune`). A program that calls `cli.main` with a cache of its own
    configured keeps it (and no traces, no bound)."""
    import os

    from jnas import _cache_prune

    folder = os.environ.get("JNAS_XLA_CACHE", str(pathlib.Path.home() / ".cache" / "jnas" / "xla"))
    if not folder:
        return
    limit = _cache_prune.limit_from_environment()  # a bad value fails before any work
    import jax

    if getattr(jax.config, "jax_compilation_cache_dir", None):
        return
    try:
        _cache_prune.prune(folder, limit)
    except OSError as error:  # a cache it cannot list or prune still serves
        print(f"jnas: compile cache {folder} not pruned ({error})", file=sys.stderr)
    jax.config.update("jax_compilation_cache_dir", folder)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    if os.environ.get("JNAS_TRACE_STORE", "1") != "0":
        from jnas import _trace_store

        _trace_store.enable(pathlib.Path(folder) / "traces")


# Flags several commands share (each command adds its own in its module's `add_parser`).
DATASETS = ("digits", "cifar10", "cifar100", "imagenet16", "mnist", "fashion_mnist", "svhn")
TEXT_DATASETS = ("python", "text", "lm1b")
NASBENCH_HELP = "folder of the NAS-Bench tables (default: $JNAS_NASBENCH_DIR or ../shared/nasbench)"


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1; got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1; got {text}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number > 0; got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0; got {text}")
    return value


ALPHA_LR_HELP = (
    "Adam's learning rate on the architecture parameters α (methods with α; "
    "default: NB201's 3e-4, set for 19,550 steps: a search of a few hundred steps "
    "needs ~1e-2 for α to move)"
)


def add_data_flags(p: argparse.ArgumentParser, *, text: bool = False) -> None:
    """`--dataset`, `--data-dir`, `--seed`, `--resume`; with `text`, `--dataset python`
    too (the standard library's sources, for the recurrent spaces), and the default
    follows the space (None here)."""
    p.add_argument(
        "--dataset",
        default=None if text else "digits",
        choices=(*DATASETS, *TEXT_DATASETS) if text else DATASETS,
        help="digits (bundled, no download) or a prepared TFDS dataset with "
        "NB201's splits (default: digits)"
        + (
            "; python: the standard library's .py files as a character corpus (the "
            "recurrent space's default); text: PTB / WikiText token files in --data-dir; "
            "lm1b: TFDS's One Billion Word, prepared in --data-dir"
            if text
            else ""
        ),
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
