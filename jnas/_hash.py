"""A jittable 32-bit hash shared by the NB101 fingerprint and the WL kernel."""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp


def mix32(h: Any, xp: Any = jnp) -> Any:
    """MurmurHash3's 32-bit finaliser: a bijective, well-mixing hash of uint32 (wraps).
    `xp` is `jax.numpy` (jittable) or `numpy` (the same values on the host)."""
    h = h ^ (h >> 16)
    h = h * xp.uint32(0x85EBCA6B)
    h = h ^ (h >> 13)
    h = h * xp.uint32(0xC2B2AE35)
    return h ^ (h >> 16)
