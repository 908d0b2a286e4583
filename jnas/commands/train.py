"""`jnas train`: train an NB201 cell from scratch on a dataset and report test accuracy."""

from __future__ import annotations

import argparse
import json
import pathlib
import time

from jnas.commands._common import progress


def run_train(arch: str, dataset: str = "digits", *, seed: int = 0, epochs: int = 20,
              batch_size: int = 64, lr: float = 0.05, channels: int = 16,
              cells_per_stage: int = 2, out: str | pathlib.Path = "out/train",
              resume: bool = False, data_dir: str | None = None, stream: bool = False,
              quiet: bool = False) -> dict:
    """Train the NB201 network of cell `arch` (NB201 string) on `train_full`; evaluate on
    `test` every epoch. Records, checkpoints and `summary.json` go under `out`. With
    `stream`, the training data stays on the host and batches are streamed to the device.
    """
    import jax
    import numpy as np
    from flax import nnx

    from jnas import data
    from jnas.spaces import NB201
    from jnas.train import TrainConfig, train

    space = NB201()
    cell = space.from_string(arch)
    out = pathlib.Path(out)
    k_data, k_init, k_train = jax.random.split(jax.random.key(seed), 3)
    splits = data.load_dataset(dataset, k_data, data_dir=data_dir)
    num_classes = int(splits["train_full"].y.max()) + 1
    model = space.build(cell, channels=channels, cells_per_stage=cells_per_stage,
                        num_classes=num_classes, rngs=nnx.Rngs(k_init))
    config = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr,
                         augment=dataset != "digits")
    show = progress(f"train on {dataset}", "epochs")
    start = time.perf_counter()
    train_data = splits["train_full"]
    if stream:
        train_data = data.ArraySource(np.asarray(train_data.x), np.asarray(train_data.y))
    _, records = train(model, k_train, train_data, config, test=splits["test"],
                       out=out, resume=resume,
                       on_epoch=None if quiet else lambda r: show(r["epoch"] + 1, epochs))
    summary = {"arch": arch, "dataset": dataset, "seed": seed, "epochs": epochs,
               "channels": channels, "cells_per_stage": cells_per_stage,
               "test_acc": records[-1]["test_acc"], "train_acc": records[-1]["train_acc"],
               "train_s": round(time.perf_counter() - start, 1)}
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary


def cmd_train(args: argparse.Namespace) -> int:
    summary = run_train(args.arch, args.dataset, seed=args.seed, epochs=args.epochs,
                        batch_size=args.batch_size, lr=args.lr, channels=args.channels,
                        cells_per_stage=args.cells, out=args.out, resume=args.resume,
                        data_dir=args.data_dir, stream=args.stream)
    print(f"{summary['arch']} on {summary['dataset']}: test accuracy "
          f"{100 * summary['test_acc']:.2f}% after {summary['epochs']} epochs "
          f"({summary['train_s']}s)")
    print(f"wrote {args.out}/records.jsonl and summary.json")
    return 0
