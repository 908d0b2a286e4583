"""`jnas.nn.init_rngs`: the same keys as `nnx.Rngs`, so the same parameters, eager and traced;
parameter draws made flat (cheaper to compile) with the values of the shaped draws."""

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jnas.nn import init_normal, init_rngs, init_uniform, torch_default_init
from jnas.spaces import NB201


def _params(make):
    return jax.tree.leaves(nnx.state(make(), nnx.Param))


def test_init_rngs_draws_the_same_parameters_as_nnx_rngs():
    def build(rngs):
        return NB201().supernet(channels=2, cells_per_stage=1, rngs=rngs)

    plain = _params(lambda: build(nnx.Rngs(3)))
    assert len(plain) > 20
    for got in (
        _params(lambda: build(init_rngs(3))),
        jax.jit(lambda k: _params(lambda: build(init_rngs(k))))(jax.random.key(3)),
    ):
        for a, b in zip(plain, got, strict=True):
            np.testing.assert_array_equal(a, b)
    other = _params(lambda: build(init_rngs(4)))
    assert not all(np.array_equal(a, b) for a, b in zip(plain, other, strict=True))


def test_flat_draws_equal_jax_and_flax_draws_of_the_shape():
    # the flat draw is a compile-time saving only: jax's draw of the shape, and flax's
    # variance-scaling init (PyTorch's default), bit for bit
    key = jax.random.key(7)
    for shape in ((3, 3, 16, 32), (5, 6, 144, 16), (84, 32), (7,)):
        np.testing.assert_array_equal(
            init_uniform(key, shape, jnp.float32, -0.3, 0.2),
            jax.random.uniform(key, shape, jnp.float32, -0.3, 0.2),
        )
        np.testing.assert_array_equal(init_normal(key, shape), jax.random.normal(key, shape))
    flax_init = nnx.initializers.variance_scaling(1 / 3, "fan_in", "uniform")
    for shape in ((3, 3, 16, 32), (1, 1, 8, 4), (84, 32)):
        got = torch_default_init(key, shape, jnp.float32)
        np.testing.assert_array_equal(got, flax_init(key, shape, jnp.float32))
        bound = 1 / np.sqrt(np.prod(shape[:-1]))  # PyTorch: U(-1/sqrt(fan_in), 1/sqrt(fan_in))
        largest = float(jnp.max(jnp.abs(got)))
        assert 0.9 * bound < largest <= bound
