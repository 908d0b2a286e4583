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


def blocked_sum(
    f: Callable[..., Any],
    rows: tuple[jax.Array, ...],
    used: jax.Array,
    block: int = BLOCK,
) -> Any:
    """`sum_b f(*rows[b])` over blocks b of `block` rows covering the first `used` rows (a
    loop whose trip count is their block count; under `vmap` the batch's most). `f` must
    give zero on rows past `used` (masked by its own arguments) and on the padding of the
    last block, which is zeros (False)."""
    n = rows[0].shape[0]
    count = -(-n // block)
    pad = count * block - n
    blocks = tuple(
        jnp.pad(r, [(0, pad)] + [(0, 0)] * (r.ndim - 1)).reshape(count, block, *r.shape[1:])
        for r in rows
    )

    def add(i: jax.Array, total: Any) -> Any:
        return jax.tree.map(jnp.add, total, f(*(b[i] for b in blocks)))

    shapes = jax.eval_shape(f, *(b[0] for b in blocks))
    zero = jax.tree.map(lambda a: jnp.zeros(a.shape, a.dtype), shapes)
    return jax.lax.fori_loop(0, -(-used // block), add, zero)


def blocked_grad(
    loss: Callable[..., jax.Array],
    params: Any,
    rows: tuple[jax.Array, ...],
    used: jax.Array,
    block: int = BLOCK,
) -> Any:
    """The gradient of `sum_b loss(params, *rows[b])` over blocks b of `block` rows covering
    the first `used` rows (`blocked_sum`). `loss` must be additive over rows and zero on
    rows that are masked by its own arguments: the padding of the last block is zeros."""
    grad = jax.grad(loss)
    return blocked_sum(lambda *b: grad(params, *b), rows, used, block)


def block_size(n: int, target: int = BLOCK) -> int:
    """The divisor of `n` nearest `target` (from target / 2 to 2 target; `n` itself when
    it has none: one block), so that blocks tile the rows without padding."""
    divisors = [d for d in range(max(target // 2, 1), 2 * target + 1) if n % d == 0 and d <= n]
    return min(divisors, key=lambda d: (abs(d - target), d)) if divisors else n


def _pair(t: jax.Array) -> tuple[jax.Array, jax.Array]:
    """The t-th block pair (i, j) with j <= i, row by row: (0,0), (1,0), (1,1), (2,0)..."""
    i = jnp.floor((jnp.sqrt(8.0 * t.astype(jnp.float32) + 1.0) - 1.0) / 2.0).astype(jnp.int32)
    i = jnp.where((i + 1) * (i + 2) // 2 <= t, i + 1, i)  # float rounding, either way
    i = jnp.where(i * (i + 1) // 2 > t, i - 1, i)
    return i, t - i * (i + 1) // 2


def tril_prefix_matmul(
    w: jax.Array, v: jax.Array, used: jax.Array, *, transpose: bool = False
) -> jax.Array:
    """`w @ v` (or `w^T @ v`) for lower-triangular `w` [G, P, P] whose rows and columns from
    `used` on do not mix with the first `used` (the identity rows of a history's inverse
    Cholesky factors) and `v` [G, P, K] zero from row `used` on: the result is zero there,
    and only the blocks of `w`'s lower triangle inside the first `used` rows are read (a
    loop over them; under `vmap` the batch's most). Cost ~ used^2 / 2, not P^2."""
    g, p, _ = w.shape
    k = v.shape[-1]
    blk = block_size(p)
    nb = p // blk
    vb = v.reshape(g, nb, blk, k)
    n_used = (used + blk - 1) // blk
    slots = jnp.arange(nb)

    def add(t: jax.Array, out: jax.Array) -> jax.Array:
        i, j = _pair(t)
        wb = jax.lax.dynamic_slice(w, (0, i * blk, j * blk), (g, blk, blk))
        if transpose:  # out[j] += w[i, j]^T v[i]
            prod = jnp.einsum("gab,gak->gbk", wb, jax.lax.dynamic_index_in_dim(vb, i, 1, False))
            dst = j
        else:  # out[i] += w[i, j] v[j]
            prod = jnp.einsum("gab,gbk->gak", wb, jax.lax.dynamic_index_in_dim(vb, j, 1, False))
            dst = i
        return out + jnp.where((slots == dst)[None, :, None, None], prod[:, None], 0.0)

    pairs = n_used * (n_used + 1) // 2
    out = jax.lax.fori_loop(0, pairs, add, jnp.zeros((g, nb, blk, k), v.dtype))
    return out.reshape(g, p, k)


def prefix_columns(
    f: Callable[[Any], jax.Array], rows: Any, used: jax.Array, width: int
) -> jax.Array:
    """float32[width, P]: `f(block)` ([width, B]) for each block of B rows of the pytree
    `rows` (leading axis P) before row `used`, zero after (a loop over the blocks in use)."""
    p = jax.tree.leaves(rows)[0].shape[0]
    blk = block_size(p)
    nb = p // blk
    blocks = jax.tree.map(lambda r: r.reshape(nb, blk, *r.shape[1:]), rows)
    slots = jnp.arange(nb)

    def put(b: jax.Array, out: jax.Array) -> jax.Array:
        value = f(jax.tree.map(lambda r: jax.lax.dynamic_index_in_dim(r, b, 0, False), blocks))
        return out + jnp.where((slots == b)[:, None, None], value[None], 0.0)

    out = jax.lax.fori_loop(0, (used + blk - 1) // blk, put, jnp.zeros((nb, width, blk)))
    return out.transpose(1, 0, 2).reshape(width, p)
