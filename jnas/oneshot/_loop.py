"""Whole epochs of one-shot search as one compiled `lax.scan`, and the epoch loop around it
with per-epoch derivation, NaN checks, JSON-lines records and resumable checkpoints."""

from __future__ import annotations

import functools
import pathlib
from collections.abc import Callable
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jnas import _trace_store, parallel
from jnas._checks import check_positive
from jnas._execution import cpu_compiler_options, stepper
from jnas.data import Split, batch_indices
from jnas.oneshot._base import OneShot, OneShotState
from jnas.runs import run_units

Augment = Callable[[jax.Array, jax.Array], jax.Array]


@functools.lru_cache(maxsize=16)  # one compiled step per (method, configuration)
def epoch_fn(
    method: OneShot,
    batch_size: int,
    augment: Augment | None = None,
    steps_mode: str = "auto",
    mesh: Mesh | None = None,
) -> Callable[[OneShotState, jax.Array, Split, Split], tuple[OneShotState, dict]]:
    """`epoch(state, key, train, valid) -> (state, metrics[steps])`.

    Both splits stay on the device; each step takes a shuffled training batch and a
    shuffled validation batch (min(len) // batch_size steps, NB201's pairing of the two
    25k halves) and optionally augments both with `augment(key, images)`. `steps_mode`:
    one `lax.scan` per epoch (`"scan"`), a loop of jitted steps (`"loop"`), or `"auto"`
    (scan except on CPU, see `jnas._execution`); the results are the same.
    `mesh` (1-D, `jnas.parallel.mesh`): data parallel, each device steps on its rows of
    every batch (the state and splits replicated: `search` places them).
    """
    check_positive("epoch_fn", batch_size=batch_size)
    rows = None
    if mesh is not None:
        if len(mesh.axis_names) != 1:
            raise ValueError(f"epoch_fn: `mesh` must be 1-D; got axes {mesh.axis_names}")
        if batch_size % mesh.size:
            raise ValueError(
                f"epoch_fn: `batch_size` must split evenly over the mesh's {mesh.size} "
                f"devices; got {batch_size}"
            )
        rows = NamedSharding(mesh, PartitionSpec(mesh.axis_names[0]))

    def body(carry, inputs):
        state, train, valid = carry
        it, iv, k = inputs
        k_step, k_at, k_av = jax.random.split(k, 3)
        xt, yt, xv, yv = train.x[it], train.y[it], valid.x[iv], valid.y[iv]
        if rows is not None:  # each device its rows; XLA all-reduces BN statistics, grads
            xt, yt, xv, yv = jax.lax.with_sharding_constraint((xt, yt, xv, yv), rows)
        if augment is not None:
            xt, xv = augment(k_at, xt), augment(k_av, xv)
        state, metrics = method.step(k_step, state, (xt, yt), (xv, yv))
        return (state, train, valid), metrics

    run = stepper(
        body,
        steps_mode,
        cpu_compiler_options(method.cpu_compiler_options),
        _epoch_identity(method, batch_size, augment, mesh),
    )

    @jax.jit
    def schedule(key, n_train, n_valid):
        k_t, k_v, k_s = jax.random.split(key, 3)
        steps = min(n_train.shape[0], n_valid.shape[0]) // batch_size
        return (
            batch_indices(k_t, n_train.shape[0], batch_size)[:steps],
            batch_indices(k_v, n_valid.shape[0], batch_size)[:steps],
            jax.random.split(k_s, steps),
        )

    def epoch(state: OneShotState, key: jax.Array, train: Split, valid: Split):
        if min(len(train.y), len(valid.y)) < batch_size:
            raise ValueError(
                f"epoch: `batch_size` {batch_size} exceeds the splits' sizes "
                f"{len(train.y)} / {len(valid.y)}"
            )
        (state, _, _), metrics = run((state, train, valid), schedule(key, train.y, valid.y))
        return state, metrics

    return epoch


def _epoch_identity(
    method: OneShot, batch_size: int, augment: Augment | None, mesh: Mesh | None
) -> str | None:
    """What names an epoch's step program for `jnas._trace_store`: the method's identity
    (given by `REGISTRY`'s `make`), the batch size and the augmentation (a jnas function);
    None (nothing stored) for a method or augmentation it cannot name, or a mesh."""
    named = _trace_store.identity_of(method.step)
    if named is None or mesh is not None:
        return None
    try:
        augmented = _trace_store.name_of(augment)
    except TypeError:
        return None
    # the XLA options the step compiles with are part of the store's key already
    return f"oneshot.epoch_fn:{named}|batch={batch_size}|augment={augmented}"


def search(
    method: OneShot,
    key: jax.Array,
    train: Split,
    valid: Split,
    *,
    epochs: int,
    batch_size: int,
    space: Any,
    augment: Augment | None = None,
    out: str | pathlib.Path | None = None,
    resume: bool = False,
    steps_mode: str = "auto",
    on_epoch: Callable[[dict], None] | None = None,
    mesh: Mesh | None = None,
) -> tuple[OneShotState, list[dict]]:
    """Run `epochs` epochs of `method`; derive the cell after every epoch.

    Every epoch appends a record (metrics averaged over the epoch, the derived cell, α)
    to `out/records.jsonl` and checkpoints the state to `out/checkpoints` (orbax; see
    `jnas.checkpoint.RunDir`), so a
    killed run restarted with `resume=True` continues after the last finished epoch and
    ends with the same state and records as an uninterrupted run. Epoch e uses key
    `fold_in(key, e)`, independent of where a run was resumed. `on_epoch(record)` may add
    fields (e.g. the cell's benchmark accuracy) before the record is written.

    `mesh`: data parallel over its devices (`epoch_fn`), the state and both splits
    replicated. On a multi-core CPU, one device per core (`jax_num_cpu_devices`, set before
    JAX starts) beat one device spread over the cores by XLA's threads on the NB201
    supernet (`benchmarks/cpu_data_parallel.py`).
    """
    check_positive("search", epochs=epochs)
    k_init, k_epochs, k_derive = jax.random.split(key, 3)
    epoch = epoch_fn(method, batch_size, augment, steps_mode, mesh)
    if mesh is not None:
        train, valid = parallel.replicate((train, valid), mesh)
    derive_batch = (valid.x[:batch_size], valid.y[:batch_size])
    derive = jax.jit(method.derive)

    def unit(state: Any, e: int) -> tuple[Any, dict, dict]:
        if mesh is not None:  # a fresh or restored state: onto every device (else a no-op)
            state = parallel.replicate(state, mesh)
        state, metrics = epoch(state, jax.random.fold_in(k_epochs, e), train, valid)
        arch = derive(state, jax.random.fold_in(k_derive, e), derive_batch)
        record = {
            "epoch": e,
            **{k: float(np.mean(v)) for k, v in metrics.items()},
            "arch": space.to_string(arch),
        }
        if isinstance(state, OneShotState):  # the methods with architecture parameters
            record["alpha"] = np.asarray(state.alpha).round(6).tolist()
        return state, metrics, record

    return run_units(
        unit, units=epochs, init=method.init, key=k_init, out=out, resume=resume, on_record=on_epoch
    )
