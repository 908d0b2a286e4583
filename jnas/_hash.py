"""A jittable 32-bit hash shared by the NB101 fingerprint and the WL kernel."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def mix32(h: jax.Array) -> jax.Array:
    """MurmurHash3's 32-bit finaliser: a bijective, well-mixing hash of uint32 (wraps)."""
    h = h ^ (h >> 16)
    h = h * jnp.uint32(0x85EBCA6B)
    h = h ^ (h >> 13)
    h = h * jnp.uint32(0xC2B2AE35)
    return h ^ (h >> 16)
