"""One-shot (weight-sharing) architecture search as pure, jittable, vmappable functions.

Each factory returns a `OneShot(init, step, derive, apply)`; see `OneShot`.
"""

import functools

from jnas._steps import check_finite
from jnas.oneshot._base import (
    OneShot,
    OneShotState,
    alpha_shape,
    make_supernet,
    nb201_alpha_optimizer,
    nb201_w_lr,
    nb201_w_optimizer,
)
from jnas.oneshot._darts import darts, hypergradient
from jnas.oneshot._drnas import drnas
from jnas.oneshot._enas import enas
from jnas.oneshot._gdas import gdas, gdas_tau, hard_gumbel
from jnas.oneshot._loop import epoch_fn, search
from jnas.oneshot._proxyless import linear_op_costs, proxyless, two_path_gates
from jnas.oneshot._sampling import oneshot_dropout, rsws, spos
from jnas.oneshot._setn import setn
from jnas.oneshot._snas import op_costs, relaxed_gumbel, snas

# Method names as the NB201 paper and the `jnas oneshot` command use them.
METHODS = {
    "darts-v1": functools.partial(darts, order=1),
    "darts-v2": functools.partial(darts, order=2),
    "gdas": gdas,
    "snas": snas,
    "proxyless": proxyless,
    "enas": enas,
    "rsws": rsws,
    "spos": spos,
    "oneshot-dropout": oneshot_dropout,
    "setn": setn,
    "drnas": drnas,
}

__all__ = [
    "METHODS",
    "OneShot",
    "OneShotState",
    "alpha_shape",
    "check_finite",
    "darts",
    "drnas",
    "enas",
    "epoch_fn",
    "gdas",
    "gdas_tau",
    "hard_gumbel",
    "hypergradient",
    "linear_op_costs",
    "make_supernet",
    "nb201_alpha_optimizer",
    "nb201_w_lr",
    "nb201_w_optimizer",
    "oneshot_dropout",
    "op_costs",
    "proxyless",
    "relaxed_gumbel",
    "rsws",
    "search",
    "setn",
    "snas",
    "spos",
    "two_path_gates",
]
