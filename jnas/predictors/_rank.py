"""Rank correlation of predictions with the truth, in `jit` (how NAS predictors are judged)."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def average_ranks(x: jax.Array) -> jax.Array:
    """1-based ranks of a vector, ties sharing their mean rank (as `scipy.stats.rankdata`):
    phones' latency tables hold whole milliseconds, so ties are common."""
    s = jnp.sort(x)
    low = jnp.searchsorted(s, x, side="left")
    high = jnp.searchsorted(s, x, side="right")
    return (low + high + 1) / 2.0


def spearman(a: jax.Array, b: jax.Array) -> jax.Array:
    """Spearman's rho of two vectors: Pearson's correlation of their average ranks; NaN
    where either vector is constant."""
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(
            f"spearman: expected two vectors of one shape; got {a.shape} and {b.shape}"
        )
    ra = average_ranks(a.astype(jnp.float32))
    rb = average_ranks(b.astype(jnp.float32))
    ra, rb = ra - ra.mean(), rb - rb.mean()
    return (ra @ rb) / jnp.sqrt((ra @ ra) * (rb @ rb))
