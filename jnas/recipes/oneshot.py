"""A one-shot search on a dataset in any space with a supernet (NB201 by default), with
records, checkpoints, α plots, the derived architecture's drawing and, for NB201, its table
accuracy: the run behind `jnas oneshot`, the demo and `experiments/nb201_oneshot.py`."""

from __future__ import annotations

import json
import pathlib
import time
from collections.abc import Callable
from typing import Any

Progress = Callable[[int, int], None]  # (done, total)


def load_nb201_if_present(path: str | None) -> Any:
    """The NB201 table from `path` (or the default folder); None when absent and not asked
    for explicitly."""
    from jnas import bench

    if path is None and not (bench.default_dir() / "nb201_tss.npz").exists():
        return None
    return bench.load_nb201(path)


ONESHOT_SPACES = ("nb201", "darts", "nats_size", "chain", "memory_bank", "darts_rnn")
# the recurrent spaces search language models on text, not classifiers on images
TEXT_SPACES = ("darts_rnn",)
BPTT = 35  # DARTS' (and AWD-LSTM's) truncation length
TEXT_CHARS = 400_000  # of the standard library's sources: ~10k windows, a CPU-sized search
TEXT_DATASETS = ("python", "text", "lm1b")
LM1B_RECORDS = 200_000  # of lm1b's 30M training sentences (and of its test split)


def oneshot_space(name: str) -> Any:
    """The search space `jnas oneshot --space name` searches (its default configuration)."""
    from jnas.recipes.spaces import make_space

    if name not in ONESHOT_SPACES:
        raise ValueError(
            f"unknown one-shot space {name!r}; expected one of {', '.join(ONESHOT_SPACES)}"
        )
    return make_space(name)


def default_dataset(space_name: str) -> str:
    """The dataset a one-shot search of `space_name` reads when none is named."""
    return "python" if space_name in TEXT_SPACES else "digits"


def text_splits(
    chars: int = TEXT_CHARS,
    bptt: int = BPTT,
    *,
    dataset: str = "python",
    data_dir: str | None = None,
) -> tuple[dict, int]:
    """({"train", "valid"} `Split`s of BPTT windows of a text corpus, the vocabulary size).
    `dataset`: "python", a character corpus of the Python standard library's sources
    (`jnas.data.python_corpus`, `chars` characters: offline, no download); "text", PTB or
    WikiText from their token files in `data_dir` (`jnas.data.text_file_corpus`, words);
    "lm1b", TFDS's One Billion Word benchmark prepared in `data_dir` (its first
    `LM1B_RECORDS` sentences; `jnas.data.tfds_text_corpus`). An example is a window of
    `bptt` tokens, its label the next token at each position (int32[windows, bptt]
    both); windows are drawn independently, each starting from a zero hidden state, as
    the one-shot steps take them (the corpus' splits are fixed: no key)."""
    import jax.numpy as jnp

    from jnas import data

    if dataset not in TEXT_DATASETS:
        raise ValueError(f"text_splits: `dataset` must be one of {TEXT_DATASETS}; got {dataset!r}")
    if dataset == "text" and data_dir is None:
        raise ValueError("--dataset text reads PTB / WikiText files: give their folder, --data-dir")
    if dataset == "python":
        corpus = data.python_corpus(chars)
    elif dataset == "text":
        corpus = data.text_file_corpus(str(data_dir))
    else:
        corpus = data.tfds_text_corpus("lm1b", data_dir=data_dir, max_records=LM1B_RECORDS)
    splits = {}
    for name in ("train", "valid"):
        x, y = data.bptt_batches(getattr(corpus, name), 1, bptt)  # [windows, 1, bptt]
        splits[name] = data.Split(jnp.asarray(x[:, 0]), jnp.asarray(y[:, 0]))
    return splits, len(corpus.vocab)


def supernet_config(
    name: str, channels: int, cells: int, num_classes: int, in_channels: int
) -> dict:
    """The `space.supernet(...)` keywords of space `name` for `--channels` / `--cells`
    (NB201: C and cells per stage; DARTS: C and the number of cells; the memory-bank
    space: the first stage's width; Chain and NATS size fix their widths, and Chain's stem
    keeps the resolution of small images; the DARTS recurrent cell: embedding and hidden
    size C, `num_classes` the vocabulary, and Adam at 3e-2, with which a small model
    learns in few steps where DARTS' SGD at 20 is noise)."""
    if name in TEXT_SPACES:
        import optax

        return {
            "vocab_size": num_classes,
            "emsize": channels,
            "nhid": channels,
            "w_lr": 3e-2,
            "w_optimizer": optax.adam(3e-2),
        }
    base = {"num_classes": num_classes, "in_channels": in_channels}
    if name == "nb201":
        return {**base, "channels": channels, "cells_per_stage": cells}
    if name == "darts":
        return {**base, "channels": channels, "num_cells": cells}
    if name == "memory_bank":
        return {**base, "channels": channels}
    if name == "chain":
        return {**base, "stem_stride": 1}
    return base


def oneshot_setup(
    method: str,
    dataset: str | None,
    seed: int,
    epochs: int,
    batch_size: int,
    channels: int,
    cells_per_stage: int,
    data_dir: str | None,
    space_name: str = "nb201",
    alpha_lr: float | None = None,
) -> tuple[Any, Any, Any, Any]:
    """(the one-shot method as `run_oneshot` builds it, train split, valid split, search
    key): shared by the run and by `jnas.recipes.load`, which rebuilds it. `alpha_lr`
    replaces the NB201 α learning rate (Adam 3e-4) in the methods with α."""
    import jax

    from jnas import data, oneshot

    if method not in oneshot.REGISTRY:
        raise ValueError(
            f"unknown one-shot method {method!r}; expected one of {', '.join(oneshot.REGISTRY)}"
        )
    dataset = dataset or default_dataset(space_name)
    if (space_name in TEXT_SPACES) != (dataset in TEXT_DATASETS):
        raise ValueError(
            f"the {space_name} space searches "
            + (
                f"text: --dataset one of {', '.join(TEXT_DATASETS)}"
                if space_name in TEXT_SPACES
                else "images"
            )
            + f"; got --dataset {dataset}"
        )
    k_data, k_search = jax.random.split(jax.random.key(seed))
    if dataset in TEXT_DATASETS:
        splits, vocab = text_splits(dataset=dataset, data_dir=data_dir)
    else:
        splits, vocab = data.load_dataset(dataset, k_data, data_dir=data_dir), None
    train, valid = splits["train"], splits["valid"]
    steps = min(len(train.y), len(valid.y)) // batch_size
    if steps < 1:
        raise ValueError(
            f"--batch-size {batch_size} exceeds the search splits "
            f"({len(train.y)} / {len(valid.y)} examples)"
        )
    num_classes = vocab or int(max(train.y.max(), valid.y.max())) + 1
    space = oneshot_space(space_name)
    entry = oneshot.REGISTRY[method]
    if not oneshot.supports(entry, space):
        raise ValueError(f"one-shot method {method!r} does not run on the {space_name} space")
    extra: dict[str, Any] = {}
    if alpha_lr is not None:
        if not entry.uses_alpha:
            raise ValueError(
                f"--alpha-lr: one-shot method {method!r} has no architecture parameters α; "
                "expected one of "
                + ", ".join(name for name, e in oneshot.REGISTRY.items() if e.uses_alpha)
            )
        if not alpha_lr > 0:
            raise ValueError(f"--alpha-lr: expected a positive learning rate; got {alpha_lr!r}")
        extra["alpha_optimizer"] = oneshot.nb201_alpha_optimizer(alpha_lr)
    made = entry.make(
        space,
        epochs=epochs,
        steps_per_epoch=steps,
        **supernet_config(
            space_name, channels, cells_per_stage, num_classes, int(train.x.shape[-1])
        ),
        **extra,
    )
    return made, train, valid, k_search


def run_oneshot(
    method: str,
    dataset: str | None = None,
    *,
    seed: int = 0,
    epochs: int = 10,
    batch_size: int = 64,
    channels: int = 8,
    cells_per_stage: int = 1,
    out: str | pathlib.Path = "out/oneshot",
    resume: bool = False,
    table: Any = None,
    data_dir: str | None = None,
    steps_mode: str = "auto",
    progress: Progress | None = None,
    space_name: str = "nb201",
    alpha_lr: float | None = None,
    mesh: Any = None,
) -> dict:
    """Search `space_name` (NB201 by default) with a one-shot method; derive the
    architecture after every epoch. `mesh`: data parallel over its devices
    (`jnas.oneshot.search`). `alpha_lr`: Adam's learning rate on α (NB201's 3e-4
    when None; a search of a few hundred steps needs more for α to move). The recurrent
    space (`darts_rnn`) searches a language model on a text corpus (`dataset` "python",
    its default, the standard library's sources by character; "text", PTB / WikiText
    files in `data_dir`; "lm1b": see `text_splits`), and its summary adds the
    perplexities exp(loss).

    Writes `out/records.jsonl` (per epoch: losses, derived architecture, α, and the cell's
    NB201 accuracies when `table` is given and the space is NB201), `out/checkpoints/`,
    `out/alpha.png`, `out/cell.png` and `out/summary.json`; returns the summary.
    `progress(done, total)` after every epoch.
    """

    from jnas import bench, data, oneshot, plots

    out = pathlib.Path(out)
    out.mkdir(parents=True, exist_ok=True)
    space = oneshot_space(space_name)
    if space_name != "nb201":
        table = None  # the NB201 table knows NB201 cells only
    dataset = dataset or default_dataset(space_name)
    searcher, train, valid, k_search = oneshot_setup(
        method,
        dataset,
        seed,
        epochs,
        batch_size,
        channels,
        cells_per_stage,
        data_dir,
        space_name,
        alpha_lr,
    )
    # digits don't mirror; text is not augmented
    augment = None if dataset in ("digits", *TEXT_DATASETS) else data.random_crop_flip
    start = time.perf_counter()

    def on_epoch(record: dict) -> None:
        if table is not None:
            record["nb201"] = bench.arch_report(table, space.from_string(record["arch"]))
        if progress is not None:
            progress(record["epoch"] + 1, epochs)

    _, records = oneshot.search(
        searcher,
        k_search,
        train,
        valid,
        epochs=epochs,
        batch_size=batch_size,
        space=space,
        augment=augment,
        out=out,
        resume=resume,
        steps_mode=steps_mode,
        on_epoch=on_epoch,
        mesh=mesh,
    )
    if "alpha" in records[-1]:
        plots.plot_alpha(records, space, out / "alpha.png")
    arch = space.from_string(records[-1]["arch"])
    plots.draw_cell(space, arch, out / "cell.png", title=f"{method}: {records[-1]['arch']}")
    summary = {
        "method": method,
        "space": space_name,
        "dataset": dataset,
        "seed": seed,
        "epochs": epochs,
        "alpha_lr": alpha_lr,
        "devices": 1 if mesh is None else mesh.size,
        "arch": records[-1]["arch"],
        "search_s": round(time.perf_counter() - start, 1),
        **{k: v for k, v in records[-1].items() if k not in ("alpha", "epoch", "arch")},
    }
    if space_name in TEXT_SPACES:
        import math

        for name in ("w_loss", "alpha_loss"):
            if name in summary:
                summary[name.replace("loss", "perplexity")] = round(math.exp(summary[name]), 3)
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary
