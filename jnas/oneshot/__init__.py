"""One-shot (weight-sharing) architecture search as pure, jittable, vmappable functions.

Each method returns a `OneShot(init, step, derive, apply)`; see `OneShot`. Methods with
architecture parameters are one call of `relaxed_search` with a relaxation (how α becomes
op weights) and an optional penalty; α-free ones one call of `weight_sharing`.
`REGISTRY` names them all.
"""

from jnas._execution import check_finite
from jnas.oneshot._base import (
    OneShot,
    OneShotState,
    SharedWeightsState,
    Supernet,
    alpha_shape,
    darts_rnn_optimizers,
    jit_step,
    make_supernet,
    nb201_alpha_optimizer,
    nb201_w_lr,
    nb201_w_optimizer,
    supernet_accuracy,
)
from jnas.oneshot._bilevel import (
    bilevel_step,
    hypergradient,
    relaxed_search,
    single_level_step,
    weight_sharing,
)
from jnas.oneshot._darts import darts
from jnas.oneshot._drnas import drnas
from jnas.oneshot._enas import ENASState, enas
from jnas.oneshot._gdas import gdas
from jnas.oneshot._loop import epoch_fn, search
from jnas.oneshot._penalties import (
    Penalty,
    dirichlet_anchor_penalty,
    dirichlet_kl_to_uniform,
    expected_cost_penalty,
    linear_op_costs,
    op_costs,
)
from jnas.oneshot._proxyless import proxyless
from jnas.oneshot._registry import REGISTRY, Entry, supports
from jnas.oneshot._relaxations import (
    Relaxation,
    binary_gate_relaxation,
    dirichlet_relaxation,
    gdas_tau,
    gumbel_relaxation,
    hard_gumbel,
    linear_tau_schedule,
    path_dropout_relaxation,
    path_relaxation,
    relaxed_gumbel,
    softmax_relaxation,
    two_path_gates,
    uniform_path_relaxation,
)
from jnas.oneshot._rsws_spos_dropout import oneshot_dropout, rsws, spos
from jnas.oneshot._setn import setn
from jnas.oneshot._smash import generate, hypernetwork, smash
from jnas.oneshot._snas import snas

__all__ = [
    "REGISTRY",
    "ENASState",
    "Entry",
    "OneShot",
    "OneShotState",
    "Penalty",
    "Relaxation",
    "SharedWeightsState",
    "Supernet",
    "alpha_shape",
    "bilevel_step",
    "binary_gate_relaxation",
    "check_finite",
    "darts",
    "darts_rnn_optimizers",
    "dirichlet_anchor_penalty",
    "dirichlet_kl_to_uniform",
    "dirichlet_relaxation",
    "drnas",
    "enas",
    "epoch_fn",
    "expected_cost_penalty",
    "gdas",
    "gdas_tau",
    "generate",
    "gumbel_relaxation",
    "hard_gumbel",
    "hypergradient",
    "hypernetwork",
    "jit_step",
    "linear_op_costs",
    "linear_tau_schedule",
    "make_supernet",
    "nb201_alpha_optimizer",
    "nb201_w_lr",
    "nb201_w_optimizer",
    "oneshot_dropout",
    "op_costs",
    "path_dropout_relaxation",
    "path_relaxation",
    "proxyless",
    "relaxed_gumbel",
    "relaxed_search",
    "rsws",
    "search",
    "setn",
    "single_level_step",
    "smash",
    "snas",
    "softmax_relaxation",
    "spos",
    "supernet_accuracy",
    "supports",
    "two_path_gates",
    "uniform_path_relaxation",
    "weight_sharing",
]
