"""Block-summed gradients of row-additive losses (the surrogates' training steps) against
the full-batch gradient written out, and the rows they must cover."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jnas.predictors import blocked_grad, used_rows
from jnas.predictors._blocks import block_size, prefix_columns, tril_prefix_matmul


def test_used_rows_ends_at_the_last_true_row():
    mask = np.zeros(70, bool)
    assert int(used_rows(jnp.asarray(mask))) == 0
    mask[[3, 40]] = True
    assert int(used_rows(jnp.asarray(mask))) == 41  # a count of 2 would miss row 40
    mask[69] = True
    assert int(used_rows(jnp.asarray(mask))) == 70


def test_blocked_gradient_is_the_full_batch_gradient_of_the_rows_in_use():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(70, 5)).astype(np.float32)
    t = rng.normal(size=70).astype(np.float32)
    mask = np.zeros(70, bool)
    mask[:20] = mask[45] = True  # a hole, then a row in the second block of 32
    params = {"w": jnp.asarray(rng.normal(size=5), jnp.float32), "b": jnp.float32(0.3)}

    def loss(p, x, t, m):  # row-additive: zero on masked rows
        return jnp.sum(jnp.where(m, jnp.tanh(x @ p["w"] + p["b"]) - t, 0.0) ** 2)

    got = jax.jit(blocked_grad, static_argnums=0)(
        loss, params, (jnp.asarray(x), jnp.asarray(t), jnp.asarray(mask)), used_rows(mask)
    )
    full = jax.grad(lambda p: jnp.sum((jnp.tanh(x[mask] @ p["w"] + p["b"]) - t[mask]) ** 2))
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(full(params)), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    # vmapped over histories of different fill: each its own gradient
    masks = np.stack([mask, np.arange(70) < 5])
    many = jax.vmap(
        lambda m: blocked_grad(loss, params, (jnp.asarray(x), jnp.asarray(t), m), used_rows(m))
    )(jnp.asarray(masks))
    few = jax.grad(lambda p: jnp.sum((jnp.tanh(x[:5] @ p["w"] + p["b"]) - t[:5]) ** 2))(params)
    np.testing.assert_allclose(many["w"][1], few["w"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(many["w"][0], got["w"], rtol=1e-5, atol=1e-6)


def test_block_size_tiles_the_rows():
    assert block_size(200) == 25  # the divisor nearest 32
    assert block_size(256) == 32
    assert block_size(97) == 97  # a prime: one block
    assert block_size(10) == 10
    assert block_size(32) == 32  # n itself is a divisor (16 would also tile)
    assert block_size(48) == 24  # 24 is nearer 32 than 16 or 48
    assert block_size(3, target=1) == 1  # down to blocks of one row


@pytest.mark.parametrize("transpose", [False, True])
def test_tril_prefix_matmul_is_the_dense_product_of_a_history_factor(transpose):
    """Against NumPy's dense product, per member of a vmapped batch whose histories hold
    different numbers of points (0, within the first block, across blocks, all): a lower
    triangular block for the points held, identity rows after (an inverse Cholesky factor
    of a masked Gram matrix), a vector zero after the points."""
    rng = np.random.default_rng(0)
    g, p, k = 3, 100, 2  # block_size(100) = 25: four blocks
    ws, vs, useds = [], [], [0, 7, 51, 58, 100]  # 51: one row into a third block
    for used in useds:
        w = np.eye(p, dtype=np.float32)
        w[:used, :used] = np.tril(rng.normal(size=(used, used)))
        ws.append(np.broadcast_to(w, (g, p, p)) * (1 + np.arange(g))[:, None, None])
        v = rng.normal(size=(g, p, k)).astype(np.float32)
        v[:, used:] = 0.0
        vs.append(v)
    kw = {"transpose": True} if transpose else {}  # the product itself by default
    got = jax.vmap(lambda w, v, u: tril_prefix_matmul(w, v, u, **kw))(
        jnp.asarray(np.stack(ws), jnp.float32), jnp.asarray(np.stack(vs)), jnp.asarray(useds)
    )
    for i in range(len(useds)):
        w = np.swapaxes(ws[i], 1, 2) if transpose else ws[i]
        np.testing.assert_allclose(got[i], w @ vs[i], rtol=1e-5, atol=1e-4)


def test_prefix_columns_fills_the_blocks_in_use_and_zeros_the_rest():
    rows = jnp.arange(100.0)[:, None] * jnp.ones((1, 3))
    f = lambda block: jnp.outer(jnp.arange(1.0, 5.0), block[:, 0])  # [4, B]
    for used in (0, 1, 25, 26, 100):
        got = np.asarray(prefix_columns(f, rows, jnp.int32(used), 4))
        blocks = -(-used // 25) * 25  # whole blocks are computed
        want = np.outer(np.arange(1.0, 5.0), np.where(np.arange(100) < blocks, np.arange(100), 0))
        np.testing.assert_allclose(got, want)
