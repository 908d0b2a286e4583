"""Taps: the activations some zero-cost proxies read, recorded while a network is traced.

NASLib reads them with PyTorch forward hooks. Here the networks call `tap(kind, x)` at the
points a proxy may need (`"relu"`: every ReLU's input; `"layer"`: every convolution's and
linear layer's output; `"features"`: the last feature map before global pooling; `"norm"`:
every batch norm's input). Outside
`record_taps` a tap is the identity and costs nothing. Inside it, each tap appends
`Tap(value, weight)` to the record of its kind, and with `offsets` adds the next offset to
the value first (a zero offset whose gradient is dL/d(activation): Fisher's pruning score).

Records hold tracers of the trace that entered the block, so a tapped network must not run
its taps inside `lax.scan`, `jax.checkpoint` or `lax.switch`: jnas' networks check
`taps_active()` and unroll instead. `weight` counts how many times an activation occurs in
the architecture being scored (the NB201 supernet computes a node's ReLU once for all the
edges that read it; a one-hot architecture reads it once per convolution).
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp

KINDS = ("relu", "layer", "features", "norm")


class Tap(NamedTuple):
    value: jax.Array
    weight: jax.Array | float


class _Recorder:
    def __init__(self, kinds: Sequence[str], offsets: dict[str, Sequence[jax.Array]] | None):
        self.records: dict[str, list[Tap]] = {k: [] for k in kinds}
        self.offsets = offsets or {}

    def visit(self, kind: str, x: jax.Array, weight: jax.Array | float) -> jax.Array:
        record = self.records.get(kind)
        if record is None:
            return x
        if kind in self.offsets:
            offsets = self.offsets[kind]
            if len(record) >= len(offsets):
                raise ValueError(
                    f"record_taps: more {kind!r} taps than `offsets` ({len(offsets)}); "
                    "build the offsets from a recording of the same network"
                )
            x = x + offsets[len(record)].astype(x.dtype)
        record.append(Tap(x, weight))
        return x


_RECORDER: contextvars.ContextVar[_Recorder | None] = contextvars.ContextVar(
    "jnas_taps", default=None
)


def taps_active() -> bool:
    """Whether a `record_taps` block is open (networks then avoid scan / remat / switch)."""
    return _RECORDER.get() is not None


def tap(kind: str, x: jax.Array, weight: jax.Array | float = 1.0) -> jax.Array:
    """`x`, recorded (and offset) under `record_taps(kind)`; the identity otherwise."""
    recorder = _RECORDER.get()
    return x if recorder is None else recorder.visit(kind, x, weight)


def relu(x: jax.Array) -> jax.Array:
    """ReLU whose input is the `"relu"` tap (NASWOT's binary codes)."""
    return jax.nn.relu(tap("relu", x))


@contextlib.contextmanager
def record_taps(
    *kinds: str, offsets: dict[str, Sequence[jax.Array]] | None = None
) -> Iterator[dict[str, list[Tap]]]:
    """Record the taps of `kinds` of every jnas network traced inside the block; yields
    `{kind: [Tap, ...]}` in call order. Enter it inside the traced function."""
    unknown = [k for k in kinds if k not in KINDS]
    if unknown or not kinds:
        raise ValueError(f"record_taps: `kinds` must be among {KINDS}; got {kinds}")
    recorder = _Recorder(kinds, offsets)
    token = _RECORDER.set(recorder)
    try:
        yield recorder.records
    finally:
        _RECORDER.reset(token)


def zero_offsets(records: Sequence[Tap]) -> list[jax.Array]:
    """Zeros shaped like recorded taps: the `offsets` whose gradients are dL/d(activation)."""
    return [jnp.zeros_like(t.value) for t in records]
