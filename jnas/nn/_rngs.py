"""Random streams for building networks, cheap to trace."""

from __future__ import annotations

import math

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


# Parameter draws, one flat vector reshaped. Threefry's counters are the elements' flat
# positions, so the values are bit for bit those of a draw of `shape` (tested), but XLA:CPU
# compiles a draw of a many-axis shape (one 64-bit iota per axis) 2-10x slower than a flat
# one (a [5, 6, 144, 16] kernel: 0.5 s against 0.24 s on a quiet machine, 0.9-2.4 s against
# 0.2 s beside another job), and a network draws dozens (the NB201 supernet's `jit(init)`
# compiles in 3.3 s instead of 6.1 s on 2 cores).


def init_uniform(
    key: jax.Array,
    shape: tuple[int, ...],
    dtype: jnp.dtype = jnp.float32,
    minval: float | jax.Array = 0.0,
    maxval: float | jax.Array = 1.0,
) -> jax.Array:
    """`jax.random.uniform(key, shape, dtype, minval, maxval)`, drawn flat."""
    size = math.prod(shape)
    return jax.random.uniform(key, (size,), dtype, minval, maxval).reshape(shape)


def init_normal(
    key: jax.Array, shape: tuple[int, ...], dtype: jnp.dtype = jnp.float32
) -> jax.Array:
    """`jax.random.normal(key, shape, dtype)`, drawn flat."""
    return jax.random.normal(key, (math.prod(shape),), dtype).reshape(shape)


def torch_default_init(
    key: jax.Array, shape: tuple[int, ...], dtype: jnp.dtype = jnp.float32, out_sharding=None
) -> jax.Array:
    """PyTorch's default conv / linear weight init (kaiming_uniform, a=sqrt(5)):
    U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with fan_in all axes but the last (HWIO, [in, out]);
    the values of `nnx.initializers.variance_scaling(1/3, "fan_in", "uniform")`, drawn flat."""
    if out_sharding is not None:
        raise ValueError(f"torch_default_init: `out_sharding` is not supported; got {out_sharding}")
    fan_in = math.prod(shape[:-1])
    variance = jnp.array((1 / 3) / fan_in, dtype=dtype)
    return init_uniform(key, tuple(shape), dtype, -1) * jnp.sqrt(3 * variance)
