"""Gradients of row-additive losses over a fixed-size history that is mostly empty early in
a search: summed block by block up to the last row in use, so a surrogate's training step
costs what the history holds, not its capacity (`max_points`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

BLOCK = 32  # rows per block


def used_rows(mask: jax.Array) -> jax.Array:
    """int32[]: rows up to and including the last True of `mask` (0 if none): the rows a
    row-additive loss must see (masked rows in between add zero)."""
    return jnp.max(jnp.where(mask, jnp.arange(mask.shape[0]) + 1, 0)).astype(jnp.int32)


def blocked_grad(
    loss: Callable[..., jax.Array],
    params: Any,
    rows: tuple[jax.Array, ...],
    used: jax.Array,
    block: int = BLOCK,
) -> Any:
    """The gradient of `sum_b loss(params, *rows[b])` over blocks b of `block` rows covering
    the first `used` rows (a loop whose trip count is their block count; under `vmap` the
    batch's most). `loss` must be additive over rows and zero on rows that are masked by
    its own arguments: the padding of the last block is zeros (False)."""
    n = rows[0].shape[0]
    count = -(-n // block)
    pad = count * block - n
    blocks = tuple(
        jnp.pad(r, [(0, pad)] + [(0, 0)] * (r.ndim - 1)).reshape(count, block, *r.shape[1:])
        for r in rows
    )
    grad = jax.grad(loss)

    def add(i: jax.Array, total: Any) -> Any:
        return jax.tree.map(jnp.add, total, grad(params, *(b[i] for b in blocks)))

    zero = jax.tree.map(jnp.zeros_like, params)
    return jax.lax.fori_loop(0, -(-used // block), add, zero)
