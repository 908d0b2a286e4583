"""`canonical_conv` and `canonical_dot` against JAX's own convolution / matrix product and
their autodiff (float64), and the mechanisms they exist for: every convolution of the
derivatives is in the forward form; the 1x1 kernel gradient is one product over the rows,
not a product with the cotangent transposed."""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jnas.nn._canonical_conv import canonical_conv, canonical_dot, plain_conv, plain_dot
from jnas.nn._ops import batch_stats_norm


def _reference(x, k, padding):
    return jax.lax.conv_general_dilated(
        x, k, (1, 1), (padding, padding), dimension_numbers=("NHWC", "HWIO", "NHWC")
    )


CASES = [(3, (1, 1)), (1, (0, 0)), (3, (0, 2)), (5, (2, 1))]


@pytest.mark.parametrize(("k", "padding"), CASES)
def test_value_gradients_and_second_order_match_jax_convolution(k, padding):
    with jax.enable_x64():
        keys = jax.random.split(jax.random.key(0), 4)
        x = jax.random.normal(keys[0], (2, 7, 6, 3), jnp.float64)
        w = jax.random.normal(keys[1], (k, k, 3, 4), jnp.float64)
        dx = jax.random.normal(keys[2], x.shape, jnp.float64)
        dw = jax.random.normal(keys[3], w.shape, jnp.float64)

        def derivatives(conv):
            def loss(x, w):
                return jnp.sum(jnp.sin(conv(x, w, padding)))

            grad = jax.grad(loss, (0, 1))
            return (
                conv(x, w, padding),
                grad(x, w),
                # reverse over reverse (second-order MAML) and forward over reverse
                # (exact DARTS-V2's hypergradient)
                jax.grad(lambda x, w: jnp.sum(jnp.cos(grad(x, w)[1])), (0, 1))(x, w),
                jax.jvp(grad, (x, w), (dx, dw))[1],
            )

        got = jax.jit(lambda: derivatives(canonical_conv))()
        want = jax.jit(lambda: derivatives(_reference))()
        for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10)
        # the plain variant (the single-path forward branches') computes the same values
        np.testing.assert_allclose(plain_conv(x, w, padding), want[0], rtol=1e-10, atol=1e-10)


def test_vmap_equals_a_loop():
    x = jax.random.normal(jax.random.key(1), (3, 2, 5, 5, 2))
    w = jax.random.normal(jax.random.key(2), (3, 3, 3, 2, 4))

    def grads(x, w):
        return jax.grad(lambda x, w: jnp.sum(canonical_conv(x, w, (1, 1)) ** 2), (0, 1))(x, w)

    batched = jax.jit(jax.vmap(grads))(x, w)
    for i in range(3):
        for a, b in zip(batched, grads(x[i], w[i]), strict=True):
            np.testing.assert_allclose(a[i], b, rtol=1e-5, atol=1e-5)


def test_the_backward_pass_inside_a_loop_has_only_forward_form_convolutions():
    """The point of the module: inside `lax.scan` XLA:CPU runs only the forward form
    (b01f_01io->b01f) at speed. JAX's own transpose rules give other forms there (checked
    below on the reference, so the test would see them come back)."""

    def step(conv):
        def loss(x, ws):
            h, _ = jax.lax.scan(lambda h, w: (jax.nn.relu(conv(h, w, (1, 1))), None), x, ws)
            return jnp.sum(h**2)

        x = jnp.ones((2, 6, 6, 4))
        ws = jnp.ones((3, 3, 3, 4, 4))
        text = jax.jit(jax.grad(loss, (0, 1))).lower(x, ws).as_text(dialect="hlo")
        return set(re.findall(r"dim_labels=([^\s,]+)", text))

    assert step(canonical_conv) == {"b01f_01io->b01f"}
    assert step(_reference) != {"b01f_01io->b01f"}


def test_bad_input_is_rejected():
    x, w = jnp.ones((1, 4, 4, 2)), jnp.ones((3, 3, 2, 2))
    with pytest.raises(ValueError, match="padding"):
        canonical_conv(x, w, (3, 1))
    with pytest.raises(ValueError, match="channels"):
        canonical_conv(jnp.ones((1, 4, 4, 3)), w, (1, 1))
    with pytest.raises(ValueError, match="square HWIO"):
        canonical_conv(x, jnp.ones((3, 2, 2, 2)), (1, 1))
    with pytest.raises(ValueError, match="canonical_dot"):
        canonical_dot(x, jnp.ones((3, 2)))


def test_dot_value_gradients_and_second_order_match_jax():
    with jax.enable_x64():
        keys = jax.random.split(jax.random.key(3), 4)
        x = jax.random.normal(keys[0], (2, 5, 4, 3), jnp.float64)
        w = jax.random.normal(keys[1], (3, 6), jnp.float64)
        dx = jax.random.normal(keys[2], x.shape, jnp.float64)
        dw = jax.random.normal(keys[3], w.shape, jnp.float64)

        def derivatives(dot):
            def loss(x, w):
                return jnp.sum(jnp.sin(dot(x, w)))

            grad = jax.grad(loss, (0, 1))
            return (
                dot(x, w),
                grad(x, w),
                jax.grad(lambda x, w: jnp.sum(jnp.cos(grad(x, w)[1])), (0, 1))(x, w),
                jax.jvp(grad, (x, w), (dx, dw))[1],
            )

        got = jax.jit(lambda: derivatives(canonical_dot))()
        want = jax.jit(lambda: derivatives(lambda x, w: jnp.einsum("nhwc,cd->nhwd", x, w)))()
        for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10)


def _kernel_gradient_forms(dot) -> set[tuple[str, str]]:
    """(lhs, rhs) contracting dims of every dot XLA:CPU compiles for the gradient of
    relu -> 1x1 convolution -> batch norm, as in the NB201 search cell."""

    def loss(x, w):
        return jnp.sum(jnp.sin(batch_stats_norm(dot(jax.nn.relu(x), w))))

    x, w = jnp.ones((4, 8, 8, 16)), jnp.ones((16, 48))
    text = jax.jit(jax.grad(loss, (0, 1))).lower(x, w).compile().as_text()
    return set(
        re.findall(r" dot\(.*?lhs_contracting_dims=\{(\d)\}, rhs_contracting_dims=\{(\d)\}", text)
    )


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="XLA:CPU's dot forms")
def test_the_1x1_kernel_gradient_is_one_product_over_the_rows():
    """The point of `canonical_dot`: the kernel gradient contracts the rows of both
    operands as laid out ({0}, {0}). From JAX's own rule XLA:CPU transposes the cotangent
    and contracts ({0}, {1}) (checked on the reference, so the test would see it return)."""
    assert ("0", "0") in _kernel_gradient_forms(canonical_dot)
    assert ("0", "1") not in _kernel_gradient_forms(canonical_dot)
    assert ("0", "1") in _kernel_gradient_forms(plain_dot)
