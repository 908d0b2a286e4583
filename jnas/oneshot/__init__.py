"""One-shot (weight-sharing) architecture search as pure, jittable, vmappable functions.

Each factory returns a `OneShot(init, step, derive, apply)`; see `OneShot`.
"""

import functools

from jnas.oneshot._base import (
    OneShot,
    OneShotState,
    make_supernet,
    nb201_alpha_optimizer,
    nb201_w_lr,
    nb201_w_optimizer,
)
from jnas.oneshot._darts import darts, hypergradient
from jnas.oneshot._gdas import gdas, gdas_tau, hard_gumbel
from jnas.oneshot._loop import check_finite, epoch_fn, search
from jnas.oneshot._sampling import rsws, spos

# Method names as the NB201 paper and the `jnas oneshot` command use them.
METHODS = {
    "darts-v1": functools.partial(darts, order=1),
    "darts-v2": functools.partial(darts, order=2),
    "gdas": gdas,
    "rsws": rsws,
    "spos": spos,
}

__all__ = [
    "METHODS",
    "OneShot",
    "OneShotState",
    "check_finite",
    "darts",
    "epoch_fn",
    "gdas",
    "gdas_tau",
    "hard_gumbel",
    "hypergradient",
    "make_supernet",
    "nb201_alpha_optimizer",
    "nb201_w_lr",
    "nb201_w_optimizer",
    "rsws",
    "search",
    "spos",
]
