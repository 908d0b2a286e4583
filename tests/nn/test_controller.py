"""The LSTM controller's probability of every decision tuple (one pass over the tree of
prefixes) against its own teacher-forced scoring of each tuple in turn."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jnas.nn import lstm_controller


def test_log_probs_of_every_tuple_equal_teacher_forcing_each():
    sizes = (3, 2, 4)
    c = lstm_controller(sizes, hidden=8)
    # scaled up so that the choices' probabilities differ by far more than float error
    params = jax.tree.map(lambda a: a * 10, c.init(jax.random.key(1)))
    got = np.asarray(jax.jit(c.log_probs)(params))
    tuples = list(itertools.product(*map(range, sizes)))  # row-major: the last fastest
    want = [float(c.log_prob(params, jnp.asarray(t))[0]) for t in tuples]
    np.testing.assert_allclose(got, want, atol=2e-6)
    assert np.exp(got).sum() == pytest.approx(1.0, abs=1e-5)
    assert np.ptp(got) > 0.3  # not uniform: the order of the tuples is what is checked
