"""A one-shot search in the NB201 space on a dataset, with records, checkpoints, α plots,
the derived cell's drawing and its NB201 table accuracy: the run behind `jnas oneshot`,
the demo and `experiments/nb201_oneshot.py`."""

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


def oneshot_setup(
    method: str,
    dataset: str,
    seed: int,
    epochs: int,
    batch_size: int,
    channels: int,
    cells_per_stage: int,
    data_dir: str | None,
) -> tuple[Any, Any, Any, Any]:
    """(the one-shot method as `run_oneshot` builds it, train split, valid split, search
    key): shared by the run and by `jnas.recipes.load`, which rebuilds it."""
    import jax

    from jnas import data, oneshot
    from jnas.spaces import NB201

    if method not in oneshot.REGISTRY:
        raise ValueError(
            f"unknown one-shot method {method!r}; expected one of {', '.join(oneshot.REGISTRY)}"
        )
    k_data, k_search = jax.random.split(jax.random.key(seed))
    splits = data.load_dataset(dataset, k_data, data_dir=data_dir)
    train, valid = splits["train"], splits["valid"]
    steps = min(len(train.y), len(valid.y)) // batch_size
    if steps < 1:
        raise ValueError(
            f"--batch-size {batch_size} exceeds the search splits "
            f"({len(train.y)} / {len(valid.y)} examples)"
        )
    num_classes = int(max(train.y.max(), valid.y.max())) + 1
    made = oneshot.REGISTRY[method].make(
        NB201(),
        epochs=epochs,
        steps_per_epoch=steps,
        channels=channels,
        cells_per_stage=cells_per_stage,
        num_classes=num_classes,
        in_channels=int(train.x.shape[-1]),
    )
    return made, train, valid, k_search


def run_oneshot(
    method: str,
    dataset: str = "digits",
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
) -> dict:
    """Search the NB201 space with a one-shot method; derive the cell after every epoch.

    Writes `out/records.jsonl` (per epoch: losses, derived cell, α, and the cell's NB201
    accuracies when `table` is given), `out/checkpoints/`, `out/alpha.png`, `out/cell.png`
    and `out/summary.json`; returns the summary. `progress(done, total)` after every epoch.
    """

    from jnas import bench, data, oneshot, plots
    from jnas.spaces import NB201

    out = pathlib.Path(out)
    out.mkdir(parents=True, exist_ok=True)
    space = NB201()
    searcher, train, valid, k_search = oneshot_setup(
        method, dataset, seed, epochs, batch_size, channels, cells_per_stage, data_dir
    )
    augment = None if dataset == "digits" else data.random_crop_flip  # digits don't mirror
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
    )
    if "alpha" in records[-1]:
        plots.plot_alpha(records, space, out / "alpha.png")
    arch = space.from_string(records[-1]["arch"])
    plots.draw_cell(space, arch, out / "cell.png", title=f"{method}: {records[-1]['arch']}")
    summary = {
        "method": method,
        "dataset": dataset,
        "seed": seed,
        "epochs": epochs,
        "arch": records[-1]["arch"],
        "search_s": round(time.perf_counter() - start, 1),
        **{k: v for k, v in records[-1].items() if k not in ("alpha", "epoch", "arch")},
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary
