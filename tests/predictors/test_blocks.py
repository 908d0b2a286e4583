"""Block-summed gradients of row-additive losses (the surrogates' training steps) against
the full-batch gradient written out, and the rows they must cover."""

import jax
import jax.numpy as jnp
import numpy as np

from jnas.predictors import blocked_grad, used_rows


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
