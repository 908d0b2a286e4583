"""`jnas.nn.functional`: an NNX module as pure init / apply, with mixed precision, against
the module itself and a NumPy re-derivation."""

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest
from flax import nnx

from jnas.nn import functional


def make(rngs):
    return nnx.Linear(3, 2, rngs=rngs)


def test_init_and_apply_are_the_modules():
    net = functional(make)
    params = net.init(jax.random.key(0))
    module = make(nnx.Rngs(jax.random.key(0)))
    kernel = np.asarray(module.kernel[...])
    np.testing.assert_array_equal(params["kernel"][...], kernel)
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    np.testing.assert_allclose(
        net.apply(params, x), x @ kernel + np.asarray(module.bias[...]), rtol=1e-6
    )
    other = net.init(jax.random.key(1))
    assert not np.array_equal(other["kernel"][...], kernel)


def test_mixed_precision_computes_in_bfloat16_and_returns_float32():
    net = functional(make, jnp.bfloat16)
    params = net.init(jax.random.key(0))
    x = np.asarray([[0.1, 0.2, 0.3]], np.float32) * 1.001
    out = net.apply(params, x)
    assert out.dtype == jnp.float32
    assert params["kernel"][...].dtype == jnp.float32  # the master copy stays float32
    bf = ml_dtypes.bfloat16
    k = np.asarray(params["kernel"][...]).astype(bf).astype(np.float32)
    b = np.asarray(params["bias"][...]).astype(bf).astype(np.float32)
    want = (x.astype(bf).astype(np.float32) @ k + b).astype(bf).astype(np.float32)
    np.testing.assert_allclose(out, want, rtol=1e-2)
    full = functional(make).apply(params, x)
    assert not np.array_equal(out, full)  # it did round


def test_a_non_floating_compute_dtype_is_refused():
    with pytest.raises(ValueError, match="compute_dtype"):
        functional(make, jnp.int8)
