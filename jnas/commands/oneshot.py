"""`jnas oneshot`: a one-shot search in the NB201 space on a dataset, with records,
checkpoints, α plots, the derived cell's drawing and its NB201 table accuracy."""

from __future__ import annotations

import argparse
import json
import pathlib
import time
from typing import Any

from jnas.commands._common import progress

# `jnas.oneshot.REGISTRY`'s names, here so that `jnas --help` need not import jax
# (tests/oneshot/test_registry.py keeps the two equal).
METHOD_NAMES = ("darts-v1", "darts-v2", "gdas", "snas", "proxyless", "enas", "rsws", "spos",
                "oneshot-dropout", "setn", "drnas")


def load_nb201_if_present(path: str | None) -> Any:
    """The NB201 table from `path` (or the default folder); None when absent and not asked
    for explicitly."""
    from jnas import bench

    if path is None and not (bench.default_dir() / "nb201_tss.npz").exists():
        return None
    return bench.load_nb201(path)


def run_oneshot(method: str, dataset: str = "digits", *, seed: int = 0, epochs: int = 10,
                batch_size: int = 64, channels: int = 8, cells_per_stage: int = 1,
                out: str | pathlib.Path = "out/oneshot", resume: bool = False,
                table: Any = None, data_dir: str | None = None, steps_mode: str = "auto",
                quiet: bool = False) -> dict:
    """Search the NB201 space with a one-shot method; derive the cell after every epoch.

    Writes `out/records.jsonl` (per epoch: losses, derived cell, α, and the cell's NB201
    accuracies when `table` is given), `out/checkpoints/`, `out/alpha.png`, `out/cell.png`
    and `out/summary.json`; returns the summary.
    """
    import jax

    from jnas import bench, data, oneshot, plots
    from jnas.spaces import NB201

    if method not in METHOD_NAMES:
        raise ValueError(f"unknown one-shot method {method!r}; expected one of "
                         f"{', '.join(METHOD_NAMES)}")
    out = pathlib.Path(out)
    out.mkdir(parents=True, exist_ok=True)
    space = NB201()
    k_data, k_search = jax.random.split(jax.random.key(seed))
    splits = data.load_dataset(dataset, k_data, data_dir=data_dir)
    train, valid = splits["train"], splits["valid"]
    steps = min(len(train.y), len(valid.y)) // batch_size
    if steps < 1:
        raise ValueError(f"--batch-size {batch_size} exceeds the search splits "
                         f"({len(train.y)} / {len(valid.y)} examples)")
    num_classes = int(max(train.y.max(), valid.y.max())) + 1
    searcher = oneshot.REGISTRY[method].make(
        space, epochs=epochs, steps_per_epoch=steps, channels=channels,
        cells_per_stage=cells_per_stage, num_classes=num_classes,
        in_channels=int(train.x.shape[-1]))
    augment = None if dataset == "digits" else data.random_crop_flip  # digits don't mirror
    show = progress(f"{method} on {dataset}", "epochs")
    start = time.perf_counter()

    def on_epoch(record: dict) -> None:
        if table is not None:
            record["nb201"] = bench.arch_report(table, space.from_string(record["arch"]))
        if not quiet:
            show(record["epoch"] + 1, epochs)

    _, records = oneshot.search(searcher, k_search, train, valid, epochs=epochs,
                                    batch_size=batch_size, space=space, augment=augment,
                                    out=out, resume=resume, steps_mode=steps_mode,
                                    on_epoch=on_epoch)
    if "alpha" in records[-1]:
        plots.plot_alpha(records, space, out / "alpha.png")
    arch = space.from_string(records[-1]["arch"])
    plots.draw_cell(space, arch, out / "cell.png", title=f"{method}: {records[-1]['arch']}")
    summary = {"method": method, "dataset": dataset, "seed": seed, "epochs": epochs,
               "arch": records[-1]["arch"], "search_s": round(time.perf_counter() - start, 1),
               **{k: v for k, v in records[-1].items() if k not in ("alpha", "epoch", "arch")}}
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary


def cmd_oneshot(args: argparse.Namespace) -> int:
    table = load_nb201_if_present(args.nasbench)
    summary = run_oneshot(args.method, args.dataset, seed=args.seed, epochs=args.epochs,
                          batch_size=args.batch_size, channels=args.channels,
                          cells_per_stage=args.cells, out=args.out, resume=args.resume,
                          table=table, data_dir=args.data_dir)
    print(f"derived cell: {summary['arch']}")
    print(f"supernet train loss {summary['w_loss']:.3f}, accuracy {summary['w_acc']:.3f}; "
          f"searched in {summary['search_s']}s")
    for name, value in summary.get("nb201", {}).items():
        print(f"  NB201 {name:32s} {value:6.2f}")
    print(f"wrote {args.out}/records.jsonl, alpha.png, cell.png, summary.json")
    return 0
