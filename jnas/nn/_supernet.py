"""The mixed edge of weight-sharing supernets: every candidate op, op weights as an input.

One supernet serves every one-shot method: DARTS passes softmax weights, GDAS hard
straight-through one-hots with the sampled index, RSWS/SPOS/ENAS a sampled index with
one-hot weights. The DARTS and chain supernets mix per edge with `MixedEdge`; the NB201
supernet (`_supernet_nb201.py`) mixes per node, each op computed once for all its edges.
"""

from __future__ import annotations

from typing import cast

import jax
import jax.numpy as jnp
from flax import nnx


class MixedEdge(nnx.Module):
    """All candidate ops of one edge, mixed by op weights.

    - `index is None`: the weighted sum `sum_k w[k] * op_k(x)` (DARTS, SNAS, DrNAS);
    - `index` given: only op `index` runs (`lax.switch`), scaled by `w[index]`, plus the
      other weights' (zero-valued, straight-through) sum so their gradients flow as in
      GDAS. Under `vmap` over a batched `index` the switch becomes a select and every op
      runs.
    """

    def __init__(self, ops: list[nnx.Module]):
        self.ops = nnx.List(ops)

    def __call__(self, x: jax.Array, w: jax.Array, index: jax.Array | None = None) -> jax.Array:
        if index is None:
            return cast(jax.Array, sum(w[k] * op(x) for k, op in enumerate(self.ops)))
        branches = [lambda x, op=op: op(x) for op in self.ops]
        return w[index] * jax.lax.switch(index, branches, x) + (jnp.sum(w) - w[index])
