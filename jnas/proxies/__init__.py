"""Cheap performance estimation: zero-cost proxies that score an untrained network.

Each proxy is a pure function of `apply(params, x)`, `params` and (for the data-dependent
ones) a batch; `PROXIES` names them with what they read.
"""

from jnas.proxies._space import score_architectures
from jnas.proxies._zero_cost import (
    epe_nas,
    fisher,
    flops,
    grad_norm,
    grasp,
    jacob_cov,
    kernels,
    l2_norm,
    num_params,
    nwot,
    plain,
    snip,
    synflow,
    zen,
)

__all__ = [
    "epe_nas",
    "fisher",
    "flops",
    "grad_norm",
    "grasp",
    "jacob_cov",
    "kernels",
    "l2_norm",
    "num_params",
    "nwot",
    "plain",
    "score_architectures",
    "snip",
    "synflow",
    "zen",
]
