"""Training an NB201 cell from scratch on a dataset: the run behind `jnas train` and the
demo's second half."""

from __future__ import annotations

import json
import pathlib
import time
from collections.abc import Callable
from typing import Any

Progress = Callable[[int, int], None]  # (done, total)


def train_setup(
    arch: str,
    dataset: str,
    seed: int,
    epochs: int,
    batch_size: int,
    lr: float,
    channels: int,
    cells_per_stage: int,
    data_dir: str | None,
) -> tuple[Any, Any, dict, Any]:
    """(the freshly initialised network, its TrainConfig, the splits, the training key) as
    `run_train` builds them: shared by the run and by `jnas.recipes.load`."""
    import jax
    from flax import nnx

    from jnas import data
    from jnas.spaces import NB201
    from jnas.train import TrainConfig

    k_data, k_init, k_train = jax.random.split(jax.random.key(seed), 3)
    splits = data.load_dataset(dataset, k_data, data_dir=data_dir)
    num_classes = int(splits["train_full"].y.max()) + 1
    model = NB201().build(
        NB201().from_string(arch),
        channels=channels,
        cells_per_stage=cells_per_stage,
        num_classes=num_classes,
        rngs=nnx.Rngs(k_init),
    )
    config = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, augment=dataset != "digits")
    return model, config, splits, k_train


def run_train(
    arch: str,
    dataset: str = "digits",
    *,
    seed: int = 0,
    epochs: int = 20,
    batch_size: int = 64,
    lr: float = 0.05,
    channels: int = 16,
    cells_per_stage: int = 2,
    out: str | pathlib.Path = "out/train",
    resume: bool = False,
    data_dir: str | None = None,
    stream: bool = False,
    progress: Progress | None = None,
) -> dict:
    """Train the NB201 network of cell `arch` (NB201 string) on `train_full`; evaluate on
    `test` every epoch. Records, checkpoints and `summary.json` go under `out`. With
    `stream`, the training data stays on the host and batches are streamed to the device.
    `progress(done, total)` is called after every epoch.
    """
    import numpy as np

    from jnas import data
    from jnas.train import train

    out = pathlib.Path(out)
    model, config, splits, k_train = train_setup(
        arch, dataset, seed, epochs, batch_size, lr, channels, cells_per_stage, data_dir
    )
    start = time.perf_counter()
    train_data = splits["train_full"]
    if stream:
        train_data = data.ArraySource(np.asarray(train_data.x), np.asarray(train_data.y))
    _, records = train(
        model,
        k_train,
        train_data,
        config,
        test=splits["test"],
        out=out,
        resume=resume,
        on_epoch=None if progress is None else lambda r: progress(r["epoch"] + 1, epochs),
    )
    summary = {
        "arch": arch,
        "dataset": dataset,
        "seed": seed,
        "epochs": epochs,
        "channels": channels,
        "cells_per_stage": cells_per_stage,
        "test_acc": records[-1]["test_acc"],
        "train_acc": records[-1]["train_acc"],
        "train_s": round(time.perf_counter() - start, 1),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary
