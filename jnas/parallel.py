"""Meshes and shardings: data parallel over a batch axis and seed (population) parallel.

jnas steps are pure functions, so parallelism is a matter of where the inputs live: put
the batch sharded over a mesh axis and the state replicated, and `jax.jit` compiles one
SPMD program in which batch statistics and gradients are all-reduced (the math is the
single-device step's, so every device holds the same α: the divergence NNI and DARTS users
report under DDP cannot happen). Shard the leading axis of a `vmap`-ed state instead and
seeds train in parallel. Multi-host: call `jax.distributed.initialize()` first (see
`initialize_multihost`); the same code then spans every process's devices.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec


def mesh(devices: Any = None, axis: str = "data") -> Mesh:
    """A 1-D mesh over `devices` (all of `jax.devices()` by default)."""
    devices = jax.devices() if devices is None else list(devices)
    if not devices:
        raise ValueError("mesh: `devices` is empty")
    return Mesh(np.asarray(devices), (axis,))


def shard_leading(tree: Any, mesh: Mesh, axis: str | None = None) -> Any:
    """Place every leaf split along its leading axis over the mesh (a batch or seeds).

    The leading axis must divide evenly by the number of devices.
    """
    axis = axis or mesh.axis_names[0]
    size = mesh.shape[axis]
    for leaf in jax.tree.leaves(tree):
        if np.ndim(leaf) == 0 or np.shape(leaf)[0] % size:
            raise ValueError(
                f"shard_leading: leading axis {np.shape(leaf)} does not split "
                f"over {size} devices of mesh axis {axis!r}"
            )
    return jax.device_put(tree, NamedSharding(mesh, PartitionSpec(axis)))


def replicate(tree: Any, mesh: Mesh) -> Any:
    """Place a full copy of every leaf on every device of the mesh (weights, α, opt state)."""
    return jax.device_put(tree, NamedSharding(mesh, PartitionSpec()))


def over_seeds(fn: Callable[..., Any], mesh: Mesh, axis: str | None = None) -> Callable[..., Any]:
    """`vmap(fn)` over a leading seeds axis with each device running its own seeds
    (population parallel): a `shard_map` of the vmapped function, every argument and
    result split along its leading axis (a multiple of the device count).

    Prefer it to `jit(vmap(fn))` on `shard_leading` inputs: XLA's SPMD partitioner
    cannot split the grouped convolutions that `vmap` makes of per-seed conv weights.
    """
    spec = PartitionSpec(axis or mesh.axis_names[0])
    # no collectives inside: every value varies over the axis, so skip the vma checks
    return jax.jit(
        jax.shard_map(jax.vmap(fn), mesh=mesh, in_specs=spec, out_specs=spec, check_vma=False)
    )


def global_batch(local: Any, mesh: Mesh, axis: str | None = None) -> Any:
    """One global batch sharded over the mesh from every process's share of it.

    Each process passes its own rows (the same count on every process, in process order);
    on one process this is `shard_leading`. The step then sees the whole batch.
    """
    axis = axis or mesh.axis_names[0]
    sharding = NamedSharding(mesh, PartitionSpec(axis))
    return jax.tree.map(lambda x: jax.make_array_from_process_local_data(sharding, x), local)


def process_rows(n: int) -> slice:
    """This process's rows of a global batch of `n` (an equal share per process)."""
    count = jax.process_count()
    if n % count:
        raise ValueError(
            f"process_rows: a global batch of {n} does not split over {count} processes"
        )
    share = n // count
    return slice(jax.process_index() * share, (jax.process_index() + 1) * share)


def initialize_multihost(
    coordinator_address: str,
    num_processes: int,
    process_id: int,
    *,
    cpu_collectives: str | None = "gloo",
    **kwargs: Any,
) -> None:
    """`jax.distributed.initialize` with explicit arguments (one call per process, first).

    After it, `jax.devices()` lists every process's devices and `mesh()` spans them;
    `global_batch` assembles each process's share of a batch (`process_rows`).
    `cpu_collectives` picks the CPU backend's cross-process collectives (gloo, or mpi);
    GPUs and TPUs use their own.

    Example (two processes on one machine; see experiments/multihost_oneshot.py):
        initialize_multihost("localhost:12345", 2, process_id)
        m = mesh()
        state = replicate(method.init(key), m)
        rows = process_rows(64)
        step = jnas.oneshot.jit_step(method)  # jax.jit with the method's CPU options
        state, _ = step(step_key, state, global_batch(train[rows], m),
                        global_batch(valid[rows], m))
    """
    if cpu_collectives is not None:
        jax.config.update("jax_cpu_collectives_implementation", cpu_collectives)
    jax.distributed.initialize(
        coordinator_address=coordinator_address,
        num_processes=num_processes,
        process_id=process_id,
        **kwargs,
    )
