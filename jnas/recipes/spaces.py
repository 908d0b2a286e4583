"""The search spaces by name, as the CLI and the run recipes take them, and how each one's
network is sized from the CLI's `--channels` / `--cells` when a run trains it from scratch.
"""

from __future__ import annotations

import inspect
from typing import Any

# the spaces `jnas spaces` lists and draws (the recurrent ones read text, not images)
SPACE_NAMES = (
    "nb201",
    "nb101",
    "darts",
    "nats_size",
    "chain",
    "sequential",
    "hierarchical",
    "memory_bank",
)
# the spaces whose networks `jnas train` and `jnas search --objective train` train on images
TRAIN_SPACES = SPACE_NAMES


def make_space(name: str) -> Any:
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
        "memory_bank": spaces.MemoryBank,
        "nbnlp": spaces.NBNLP,
        "darts_rnn": spaces.DARTSRecurrent,
    }
    if name not in table:
        raise ValueError(f"unknown space {name!r}; expected one of {', '.join(table)}")
    return table[name]()


def network_config(
    name: str, channels: int, cells: int, num_classes: int, in_channels: int = 3
) -> dict:
    """The `space.build(...)` keywords of space `name` for `--channels` / `--cells`: NB201
    and the hierarchical space take C and cells per stage; NB101 C of its stem and cells
    per stack; DARTS C and 3 x cells (cells per stage; a reduction cell opens the second
    and the third stage, as in DARTS' evaluation network); the memory-bank space its first stage's
    width; Chain keeps small images' resolution in its stem; NATS size and the sequential
    space fix their own widths."""
    if name not in TRAIN_SPACES:
        raise ValueError(
            f"space {name!r} has no image network to train; expected one of "
            f"{', '.join(TRAIN_SPACES)}"
        )
    base: dict[str, Any] = {"num_classes": num_classes}
    if name in ("nb201", "hierarchical"):
        base.update(channels=channels, cells_per_stage=cells)
    elif name == "nb101":
        base.update(stem_channels=channels, cells_per_stack=cells)
    elif name == "darts":
        base.update(channels=channels, num_cells=3 * cells)
    elif name == "memory_bank":
        base.update(channels=channels)
    elif name == "chain":
        base.update(stem_stride=1)
    accepts = inspect.signature(make_space(name).build).parameters
    if "in_channels" in accepts:
        base["in_channels"] = in_channels
    elif in_channels != 3:
        raise ValueError(
            f"the {name} network reads 3-channel images; the data have {in_channels} channels"
        )
    return base
