"""Benchmark one-shot search steps on the NB201 supernet: ms per step (weight step + α
step), compile time apart, peak memory, and the throughput of K vmapped seeds.

    python benchmarks/oneshot_step.py --out benchmarks/results            # C=16, N=5
    python benchmarks/oneshot_step.py --channels 8 --cells 1 --seeds 1 2 4 8
    python benchmarks/oneshot_step.py --space darts --cells 8 --dtypes float32

Every step runs in float32 and in bfloat16 mixed precision (`compute_dtype`: float32
master weights and BN statistics) unless `--dtypes` says otherwise. `--space darts`
times the DARTS search network (C channels, `--cells` cells) instead of NB201's.
Writes `oneshot_step_<device>[_<space>][_C<c>N<n>].json`. The reference figures (the NB201 authors'
PyTorch code on one H100, fp32, batch 64): DARTS-V1 286 ms (81 ms as a CUDA graph),
DARTS-V2 898 ms, GDAS 163 ms, peak memory 1.9 GB (V1).
"""

from __future__ import annotations

import argparse
import json
import pathlib
import time

import jax
import jax.numpy as jnp
import numpy as np
from _child import cpu_name

from jnas import oneshot
from jnas._execution import cpu_compiler_options
from jnas.spaces import DARTS, NB201

REFERENCE_H100_MS = {"darts-v1": 286.0, "darts-v2": 898.0, "gdas": 163.0}


def _batches(k: int | None, batch: int, size: int):
    shape = (batch, size, size, 3) if k is None else (k, batch, size, size, 3)
    ks = jax.random.split(jax.random.key(0), 4)
    x1, x2 = jax.random.normal(ks[0], shape), jax.random.normal(ks[1], shape)
    y1 = jax.random.randint(ks[2], shape[:-3], 0, 10)
    y2 = jax.random.randint(ks[3], shape[:-3], 0, 10)
    return (x1, y1), (x2, y2)


def _memory(compiled) -> float | None:
    try:
        m = compiled.memory_analysis()
        return round(
            (m.temp_size_in_bytes + m.argument_size_in_bytes + m.output_size_in_bytes) / 2**20, 1
        )
    except Exception:  # not every backend reports it
        return None


def measure(
    name: str,
    k: int | None,
    *,
    space: str,
    channels: int,
    cells: int,
    batch: int,
    size: int,
    repeats: int,
    dtype: str,
    profile: pathlib.Path | None = None,
    supernet: dict | None = None,
) -> dict:
    """Compile time, ms per step and memory of one method, one seed or K vmapped seeds
    (`profile`: also trace 3 steps with JAX's profiler into that folder, after the timing;
    `supernet`: more arguments of the space's `supernet`, e.g. `conv_impl`, `scan`)."""
    net = (
        {"space": NB201(), "cells_per_stage": cells}
        if space == "nb201"
        else {"space": DARTS(), "num_cells": cells}
    )
    compute = None if dtype == "float32" else jnp.dtype(dtype)
    method = oneshot.REGISTRY[name].make(
        net.pop("space"),
        channels=channels,
        **net,
        epochs=50,
        steps_per_epoch=391,
        compute_dtype=compute,
        **(supernet or {}),
    )
    train, val = _batches(k, batch, size)
    if k is None:
        init, step = method.init, method.step
        key, step_key = jax.random.key(1), jax.random.key(2)
    else:
        init, step = jax.vmap(method.init), jax.vmap(method.step)
        key, step_key = (
            jax.random.split(jax.random.key(1), k),
            jax.random.split(jax.random.key(2), k),
        )
    state = jax.jit(init)(key)
    start = time.perf_counter()
    options = cpu_compiler_options(method.cpu_compiler_options)  # as the search loop's
    jitted = jax.jit(step, donate_argnums=1, compiler_options=options)
    compiled = jitted.lower(step_key, state, train, val).compile()
    compile_s = time.perf_counter() - start
    state, _ = compiled(step_key, state, train, val)  # warm-up
    jax.block_until_ready(state)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        state, metrics = compiled(step_key, state, train, val)
        jax.block_until_ready(metrics)
        times.append(time.perf_counter() - start)
    ms = 1000 * float(np.median(times))
    if profile is not None:
        with jax.profiler.trace(str(profile)):
            for _ in range(3):
                state, metrics = compiled(step_key, state, train, val)
            jax.block_until_ready(metrics)
    row = {
        "method": name,
        "dtype": dtype,
        "seeds": k or 1,
        "vmapped": k is not None,
        "compile_s": round(compile_s, 2),
        "ms_per_step": round(ms, 2),
        "steps_per_s_all_seeds": round((k or 1) * 1000 / ms, 3),
        "memory_mb": _memory(compiled),
    }
    if jax.devices()[0].platform == "gpu":
        stats = jax.devices()[0].memory_stats() or {}
        row["peak_gpu_mb"] = round(stats.get("peak_bytes_in_use", 0) / 2**20, 1)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--methods",
        nargs="+",
        default=["darts-v1", "darts-v2", "gdas"],
        choices=sorted(oneshot.REGISTRY),
    )
    parser.add_argument("--space", choices=["nb201", "darts"], default="nb201")
    parser.add_argument(
        "--dtypes", nargs="+", default=["float32", "bfloat16"], choices=["float32", "bfloat16"]
    )
    parser.add_argument("--channels", type=int, default=16)
    parser.add_argument("--cells", type=int, default=5)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument(
        "--seeds", type=int, nargs="*", default=[], help="K values for vmapped seeds (e.g. 1 2 4 8)"
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default="benchmarks/results")
    args = parser.parse_args()
    device = jax.devices()[0]
    config = {
        "space": args.space,
        "channels": args.channels,
        "cells": args.cells,
        "batch": args.batch,
        "size": args.size,
        "repeats": args.repeats,
    }
    rows = []
    for dtype in args.dtypes:
        for name in args.methods:
            row = measure(name, None, **config, dtype=dtype)
            if name in REFERENCE_H100_MS and args.space == "nb201":
                row["reference_h100_ms"] = REFERENCE_H100_MS[name]
            rows.append(row)
            print(json.dumps(row), flush=True)
            for k in args.seeds:
                rows.append(measure(name, k, **config, dtype=dtype))
                print(json.dumps(rows[-1]), flush=True)
    by = {(r["method"], r["dtype"], r["seeds"], r["vmapped"]): r for r in rows}
    for (name, dtype, _, vmapped), r in by.items():
        one = by[(name, dtype, 1, False)]
        if not vmapped and name == "darts-v2" and ("darts-v1", dtype, 1, False) in by:
            r["ratio_to_first_order"] = round(
                r["ms_per_step"] / by[("darts-v1", dtype, 1, False)]["ms_per_step"], 2
            )
        if not vmapped and dtype != "float32" and (name, "float32", 1, False) in by:
            r["speedup_vs_float32"] = round(
                by[(name, "float32", 1, False)]["ms_per_step"] / r["ms_per_step"], 2
            )
        if vmapped:
            r["throughput_vs_one_seed"] = round(
                r["steps_per_s_all_seeds"] / one["steps_per_s_all_seeds"], 2
            )
    result = {
        "device": f"{device.platform}: {device.device_kind}",
        "host": cpu_name(),
        "jax": jax.__version__,
        "config": config,
        "rows": rows,
    }
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    default_cells = 5 if args.space == "nb201" else 8
    suffix = "" if args.space == "nb201" else "_darts"
    if (args.channels, args.cells) != (16, default_cells):
        suffix += f"_C{args.channels}N{args.cells}"
    path = out / f"oneshot_step_{device.platform}{suffix}.json"
    path.write_text(json.dumps(result, indent=1))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
