"""Scoring many cells of a space in one program: chunks and padding change nothing, every
cell gets its own initialisation, batch norm can be removed, and SynFlow tracks what it
measures (parametric paths)."""

import functools

import jax
import numpy as np
import pytest

from jnas import proxies
from jnas.spaces import NB201

SPACE = NB201()
NET = {"channels": 4, "cells_per_stage": 1, "num_classes": 3}
SYNFLOW = functools.partial(proxies.synflow, input_shape=(1, 8, 8, 3))


def cells(*strings):
    archs = [SPACE.from_string(s) for s in strings]
    return jax.tree.map(lambda *a: np.stack(a), *archs)


CONV = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"
SKIP = "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|"


def test_chunks_and_padding_change_no_score():
    archs = jax.vmap(SPACE.sample)(jax.random.split(jax.random.key(1), 5))
    key = jax.random.key(0)
    whole = proxies.score_architectures(
        key, SYNFLOW, SPACE, archs, chunk=5, batch_norm=False, **NET
    )
    parts = proxies.score_architectures(
        key, SYNFLOW, SPACE, archs, chunk=2, batch_norm=False, **NET
    )
    np.testing.assert_allclose(parts, whole, rtol=1e-6)
    assert whole.shape == (5,)
    assert np.all(np.isfinite(whole))


def test_each_cell_gets_a_fresh_initialisation():
    scores = proxies.score_architectures(
        jax.random.key(0), SYNFLOW, SPACE, cells(CONV, CONV), batch_norm=False, **NET
    )
    assert scores[0] != scores[1]  # same cell, two initialisations


def test_synflow_grows_with_the_parametric_paths_and_batch_norm_can_be_removed():
    archs = cells(CONV, SKIP)
    key = jax.random.key(0)
    conv, skip = proxies.score_architectures(key, SYNFLOW, SPACE, archs, batch_norm=False, **NET)
    assert conv > 10 * skip  # 6 convolutions in every cell against none
    # with batch norm every layer's scale is normalised away: another score altogether
    with_bn = proxies.score_architectures(key, SYNFLOW, SPACE, archs, **NET)
    assert not np.allclose(with_bn, [conv, skip], rtol=0.5)


def test_a_space_without_a_supernet_is_refused():
    with pytest.raises(ValueError, match="HasSupernet"):
        proxies.score_architectures(jax.random.key(0), SYNFLOW, object(), None)


def test_without_batch_norm_makes_both_norms_the_identity():
    from flax import nnx

    from jnas.nn import BatchNorm, BatchStatsNorm, without_batch_norm

    x = np.random.default_rng(0).normal(3.0, 2.0, size=(8, 4)).astype(np.float32)
    for norm in (BatchNorm(4, rngs=nnx.Rngs(0)), BatchStatsNorm(4, rngs=nnx.Rngs(0))):
        normalised = np.asarray(norm(x))
        np.testing.assert_allclose(normalised.mean(0), 0.0, atol=1e-5)
        with without_batch_norm():
            np.testing.assert_array_equal(norm(x), x)
        np.testing.assert_allclose(norm(x), normalised)  # back to normal outside
