"""Training an architecture (an NB201 cell by default) from scratch on a dataset: the run behind `jnas train` and the
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
    space_name: str = "nb201",
) -> tuple[Any, Any, dict, Any]:
    """(the freshly initialised network, its TrainConfig, the splits, the training key) as
    `run_train` builds them: shared by the run and by `jnas.recipes.load`."""
    import jax
    from flax import nnx

    from jnas import data
    from jnas.recipes.spaces import make_space, network_config
    from jnas.train import TrainConfig

    space = make_space(space_name)
    parsed = space.from_string(arch)  # a bad string fails before the data load
    k_data, k_init, k_train = jax.random.split(jax.random.key(seed), 3)
    splits = data.load_dataset(dataset, k_data, data_dir=data_dir)
    num_classes = int(splits["train_full"].y.max()) + 1
    size = network_config(
        space_name, channels, cells_per_stage, num_classes, int(splits["train_full"].x.shape[-1])
    )
    model = space.build(parsed, **size, rngs=nnx.Rngs(k_init))
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
    space_name: str = "nb201",
) -> dict:
    """Train the network of architecture `arch` (a string of space `space_name`, NB201 by
    default; sized by `recipes.spaces.network_config`) on `train_full`; evaluate on `test`
    every epoch. Records, checkpoints and `summary.json` go under `out`. With
    `stream`, the training data stays on the host and batches are streamed to the device.
    `progress(done, total)` is called after every epoch.
    """
    import numpy as np

    from jnas import data
    from jnas.train import train

    out = pathlib.Path(out)
    model, config, splits, k_train = train_setup(
        arch, dataset, seed, epochs, batch_size, lr, channels, cells_per_stage, data_dir, space_name
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
        "space": space_name,
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
