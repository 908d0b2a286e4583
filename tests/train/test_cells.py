"""`train_cells`: many cells trained in one program learn what their architecture allows, a
chunk trains each cell as it would be trained alone, bad configurations are named."""

import jax
import numpy as np
import pytest

from jnas.data import digits
from jnas.spaces import NB201
from jnas.train import TrainConfig, train_cells

SPACE = NB201()
NET = {"channels": 4, "cells_per_stage": 1, "num_classes": 10, "in_channels": 1}
CONFIG = TrainConfig(epochs=2, batch_size=64, lr=0.05, augment=False)
CELLS = (
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|",
    "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|",  # the cell outputs zeros
    "|skip_connect~0|+|avg_pool_3x3~0|none~1|+|nor_conv_1x1~0|none~1|skip_connect~2|",
)


@pytest.fixture(scope="module")
def data():
    return digits(jax.random.key(0), size=8, channels=1)


def archs(strings):
    return jax.tree.map(lambda *a: np.stack(a), *[SPACE.from_string(s) for s in strings])


def test_cells_learn_what_their_architecture_allows_and_chunks_change_nothing(data):
    together = train_cells(jax.random.key(1), SPACE, archs(CELLS), data, CONFIG, chunk=2, **NET)
    assert together.valid_acc.shape == (3, 2)
    assert together.test_acc[0, -1] > 0.6  # convolutions learn the digits (chance: 0.1)
    assert together.test_acc[1, -1] < 0.2  # a cell of zeros cuts the signal: chance
    assert together.train_loss[0, -1] < together.train_loss[0, 0]
    # cell i keeps its own init and batches whatever chunk it is trained in
    alone = train_cells(jax.random.key(1), SPACE, archs(CELLS), data, CONFIG, chunk=1, **NET)
    for name in ("train_loss", "valid_acc", "test_loss"):
        np.testing.assert_allclose(getattr(alone, name), getattr(together, name), rtol=2e-4)


def test_bad_configurations_are_named(data):
    with pytest.raises(ValueError, match="augment"):
        train_cells(jax.random.key(1), SPACE, archs(CELLS[:1]), data, TrainConfig(), **NET)
    with pytest.raises(ValueError, match="missing"):
        train_cells(jax.random.key(1), SPACE, archs(CELLS[:1]), {"train": data["train"]}, CONFIG)
