"""`jnas.nn.init_rngs`: the same keys as `nnx.Rngs`, so the same parameters, eager and traced."""

import jax
import numpy as np
from flax import nnx

from jnas.nn import init_rngs
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
