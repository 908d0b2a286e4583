"""What the commands share: space names, a progress bar, the on-disk compile cache."""

from __future__ import annotations

import argparse
import pathlib
import sys
import time

from jnas.search import REGISTRY

SPACE_NAMES = ("nb201", "nb101", "darts", "nats_size", "chain", "sequential", "hierarchical")


def make_space(name: str):
    """The search space called `name` with its default configuration."""
    from jnas import spaces

    table = {
        "nb201": spaces.NB201,
        "nb101": spaces.NB101,
        "darts": spaces.DARTS,
        "nats_size": spaces.NATSSize,
        "chain": spaces.Chain,
        "sequential": spaces.Sequential,
        "hierarchical": spaces.Hierarchical,
    }
    if name not in table:
        raise ValueError(f"unknown space {name!r}; expected one of {', '.join(table)}")
    return table[name]()


SEARCHERS = {name: entry.description for name, entry in REGISTRY.items()}
SEARCHERS_HELP = ", ".join(f"{k} {v}" for k, v in SEARCHERS.items())


def progress(label: str, unit: str = "seeds"):
    """A one-line progress bar with ETA on stderr: `show(done, total)`."""
    start = time.perf_counter()

    def show(done: int, total: int) -> None:
        elapsed = time.perf_counter() - start
        eta = elapsed / done * (total - done) if done else 0.0
        bar = "#" * int(30 * done / total)
        print(
            f"\r{label} [{bar:<30s}] {done}/{total} {unit}, {elapsed:5.1f}s, ETA {eta:5.1f}s",
            end="" if done < total else "\n",
            file=sys.stderr,
            flush=True,
        )

    return show


def enable_compilation_cache() -> None:
    """Keep compiled XLA programs on disk, so a repeated run skips most of its compile
    (the NB201 protocol: ~7 s cold, under 1 s warm on 2 CPU cores). The folder is
    `$JNAS_XLA_CACHE` (default `~/.cache/jnas/xla`); set it empty to turn this off."""
    import os

    folder = os.environ.get("JNAS_XLA_CACHE", str(pathlib.Path.home() / ".cache" / "jnas" / "xla"))
    if not folder:
        return
    import jax

    jax.config.update("jax_compilation_cache_dir", folder)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)


# Flags several commands share (each command adds its own in its module's `add_parser`).
DATASETS = ("digits", "cifar10", "cifar100", "imagenet16", "mnist", "fashion_mnist", "svhn")
NASBENCH_HELP = "folder of the NAS-Bench tables (default: $JNAS_NASBENCH_DIR or ../shared/nasbench)"


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1; got {text}")
    return value


def add_data_flags(p: argparse.ArgumentParser) -> None:
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
