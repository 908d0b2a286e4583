"""Meta-training loops that checkpoint and resume: `run_steps` runs a jitted step function
in chunks, each chunk a unit of `jnas.runs.run_units` (a checkpoint and a record per chunk
when given a folder), so a killed meta-training restarted with `resume=True` continues after
its last finished chunk and ends with the same result as an uninterrupted one. Step i draws
from `fold_in(key, i)`, never from a split of the whole run, so a resumed run may also be
extended to more steps."""

from __future__ import annotations

import hashlib
import os
import pathlib
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jnas._checks import check_positive
from jnas.runs import run_units


def fingerprint(*arrays: Any) -> str:
    """A short hash of arrays' shapes and bytes: the data a resumed run must be given again."""
    h = hashlib.sha256()
    for a in arrays:
        a = np.asarray(a)
        h.update(str((a.shape, a.dtype.str)).encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]


def run_steps(
    name: str,
    step: Callable[[Any, jax.Array], tuple[Any, jax.Array]],
    init: Callable[[jax.Array], Any],
    key: jax.Array,
    *,
    steps: int,
    chunk: int,
    out: str | os.PathLike | None = None,
    resume: bool = False,
    settings: dict | None = None,
    after_chunk: Callable[[Any, int], tuple[Any, dict]] | None = None,
) -> tuple[Any, list[dict]]:
    """Steps 0..`steps`-1 of `step(state, i) -> (state, value)` from `init(key)`, `chunk`
    steps per compiled call; returns the final state and one record per chunk (`values`:
    the step values). With `out`, every chunk is checkpointed (`settings` stored and checked
    on resume; `steps` may grow between runs, so it is not one of them). `after_chunk(state,
    steps done) -> (state, fields)` runs on the host after each chunk (e.g. a validation)
    and adds `fields` to its record."""
    check_positive(name, steps=steps, chunk=chunk)
    if out is not None and steps % chunk:
        raise ValueError(
            f"{name}: with a run folder `steps` ({steps}) must be a multiple of the "
            f"checkpoint interval ({chunk}), so that a resumed run's chunks line up"
        )

    @jax.jit
    def full(state: Any, start: jax.Array) -> tuple[Any, jax.Array]:
        return jax.lax.scan(step, state, start + jnp.arange(chunk))

    # the checkpoint holds {"state": ...}: orbax saves a pytree, not a bare array
    def unit(boxed: dict, u: int) -> tuple[dict, dict, dict]:
        state, lo = boxed["state"], u * chunk
        n = min(chunk, steps - lo)
        if n == chunk:
            state, values = full(state, jnp.int32(lo))
        else:  # a last, shorter chunk (in memory only)
            state, values = jax.lax.scan(step, state, lo + jnp.arange(n))
        values = np.asarray(values)
        record: dict = {"chunk": u, "steps": [lo, lo + n], "values": values.tolist()}
        if after_chunk is not None:
            state, fields = after_chunk(state, lo + n)
            record.update(fields)
        record["finished_at"] = time.time()
        return {"state": state}, {"value": values}, record

    units = -(-steps // chunk)
    boxed, records = run_units(
        unit,
        units=units,
        init=lambda k: {"state": init(k)},
        key=key,
        out=None if out is None else pathlib.Path(out),
        resume=resume,
        describe=lambda u: f"{name}, steps {u * chunk}..{min(steps, (u + 1) * chunk) - 1}",
        settings=None if settings is None else {"what": name, **settings, "chunk": chunk},
    )
    return boxed["state"], records


def step_values(records: list[dict]) -> np.ndarray:
    """float32[steps]: every step's value from `run_steps`' records."""
    return np.concatenate([np.asarray(r["values"], np.float32) for r in records])
