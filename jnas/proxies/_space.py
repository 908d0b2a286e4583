"""A zero-cost proxy over many architectures of a space in one compiled program.

A supernet with one-hot op weights *is* each architecture of its space (the equality the
supernet tests check), so one program scores a whole batch of cells: each gets a fresh
initialisation (`fold_in(key, i)` for cell i), its one-hot weights and its sampled-op
index, and the proxy runs on that network. Chunks of `chunk` cells are streamed through
the same compiled program, so memory stays constant over the whole space (NASLib scores
one PyTorch model at a time and runs out of memory on NB201's 15,625 cells, its #142).

Proxies whose every term is weighted by a gradient (synflow, snip, grad_norm, plain,
grasp, jacob_cov, epe_nas, fisher) score exactly the architecture: the supernet's unused ops
get zero gradient. NASWOT (nwot) reads every ReLU, each counted as often as the one-hot
cell uses it (`jnas.nn.record_taps`). Weight-only ones (l2_norm, params, flops) count every
candidate op and must be computed on `space.build(arch)`; they are refused here.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from jnas._checks import check_positive
from jnas._execution import map_in_chunks
from jnas.nn import functional, without_batch_norm
from jnas.proxies._zero_cost import NOT_ON_SUPERNET, READS_TAPS
from jnas.spaces import HasSupernet, require

# proxy(apply, params) -> score; e.g. functools.partial(synflow, input_shape=(1, 32, 32, 3))
SpaceProxy = Callable[[Callable[[Any, jax.Array], jax.Array], Any], jax.Array]


def score_architectures(
    key: jax.Array,
    proxy: SpaceProxy,
    space: Any,
    archs: Any,
    *,
    chunk: int = 64,
    batch_norm: bool = True,
    **supernet: Any,
) -> np.ndarray:
    """float64[N] scores of the N architectures in `archs` (a batched arch pytree) under
    `proxy`, each on its own fresh initialisation of `space.supernet(**supernet)`.

    `batch_norm=False` removes every batch norm (Abdelfattah et al.'s SynFlow setting).
    On CPU a chunk's cells run one after another inside the program (`lax.map`); on
    accelerators they are vmapped.
    """
    require("score_architectures", space, HasSupernet)
    check_positive("score_architectures", chunk=chunk)
    base = proxy
    while isinstance(base, functools.partial):
        base = base.func
    if base in NOT_ON_SUPERNET:
        raise ValueError(
            f"score_architectures: `proxy` {base.__name__} reads every candidate op of a "
            "supernet (weights, sizes or wide batch norms): score it on `space.build(arch)` instead"
        )
    taps = base in READS_TAPS  # run every op (no lax.switch), selected by one-hot weights
    net = functional(lambda rngs: space.supernet(**supernet, rngs=rngs))
    num_ops = tuple(space.supernet_shape)[1]

    def one(i: jax.Array, arch: Any) -> jax.Array:
        params = net.init(jax.random.fold_in(key, i))
        index = space.supernet_index(arch)
        weights = jax.nn.one_hot(index, num_ops)

        def apply(p: Any, x: jax.Array) -> jax.Array:
            return net.apply(p, x, weights.astype(x.dtype), None if taps else index)

        if batch_norm:
            return proxy(apply, params)
        with without_batch_norm():
            return proxy(apply, params)

    parts = map_in_chunks(one, archs, chunk)
    return np.concatenate([np.asarray(p, np.float64) for p in parts])
