"""Benchmark HELP's meta-training step against the number of tasks (devices) in it: 1, 3, 9
and all 27 device configurations of `nb201_latency.npz` vmapped in one step, beside the
same tasks stepped one device at a time (a Python loop of single-task steps): ms per
outer step and per task, compile time apart, side by side in one run.

    python benchmarks/help_meta_step.py --out benchmarks/results

Writes `help_meta_step_<device>.json`.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import time

import jax
import numpy as np
from _child import cpu_name

from jnas import bench, transfer


def _time(fn, state, repeats: int) -> float:
    jax.block_until_ready(fn(state, jax.random.key(99)))  # warm: first-run allocations
    times = []
    for i in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn(state, jax.random.key(i)))
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", type=int, default=[1, 3, 9, 27])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--nasbench", default=None)
    parser.add_argument("--out", default="benchmarks/results")
    args = parser.parse_args()
    table = bench.load_latency(args.nasbench)
    devices = tuple(sorted({k[0] for k in table.keys()}))
    rows = []
    single = transfer.latency_meta_training(jax.random.key(0), table, devices[:1])
    single_state = single.learner.init(jax.random.key(1))
    single_step = jax.jit(single.step)
    one_ms = 1e3 * _time(single_step, single_state, args.repeats)
    for n in args.sizes:
        problem = transfer.latency_meta_training(jax.random.key(0), table, devices[:n])
        state = problem.learner.init(jax.random.key(1))
        step = jax.jit(problem.step)
        start = time.perf_counter()
        compiled = step.lower(state, jax.random.key(0)).compile()
        compile_s = time.perf_counter() - start
        ms = 1e3 * _time(compiled, state, args.repeats)
        rows.append(
            {
                "tasks": n,
                "compile_s": round(compile_s, 2),
                "vmapped_ms_per_step": round(ms, 3),
                "vmapped_ms_per_task": round(ms / n, 3),
                "one_at_a_time_ms": round(one_ms * n, 3),
                "speedup_vs_one_at_a_time": round(one_ms * n / ms, 2),
            }
        )
        print(rows[-1], flush=True)
    kind = jax.devices()[0].device_kind
    result = {
        "device": kind,
        "machine": cpu_name(),
        "model": "HELP MLP 40-64-64-1, MAML 10 inner SGD steps on 10 references, 256 queries",
        "rows": rows,
    }
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = "cpu" if jax.default_backend() == "cpu" else kind.replace(" ", "_").lower()
    (out / f"help_meta_step_{name}.json").write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
