"""Random streams for building networks, cheap to trace."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx


def init_rngs(key: int | jax.Array = 0) -> nnx.Rngs:
    """`nnx.Rngs(key)` for constructing a network, its stream counters held as array refs.

    Under `jit` or `eval_shape` nnx writes each new counter value through
    `Variable.set_value`, which probes the traced value's `sharding`; in jax 0.10 that probe
    walks every equation traced so far (jax-ml/jax#40041), so tracing a network's
    construction grows with the square of its number of parameters: `nnx.eval_shape` of
    the 8-cell DARTS supernet took 96 s with `nnx.Rngs`, 4 s with these (see
    `benchmarks/build_trace.py`). A ref is written in place, without the probe. The keys
    drawn, and so the parameters, are the same as `nnx.Rngs(key)`'s. Outside a trace it is
    a plain `nnx.Rngs` (eager reads of a ref give arrays committed to one device, which a
    later `device_put` to a multi-process mesh refuses).
    """
    if not _tracing():
        return nnx.Rngs(key)
    with nnx.var_defaults(ref=True):
        return nnx.Rngs(key)


def _tracing() -> bool:
    """Whether a `jit` / `eval_shape` trace is being built here (new values are tracers)."""
    import jax.core

    return isinstance(jnp.zeros(()), jax.core.Tracer)
