"""Benchmark a meta-step (MAML, 5-way 1-shot Omniglot-sized tasks, conv4) against the task
batch size: ms per outer step and per task, compile time apart, for each way of mapping
the tasks (`vmap`, or a Python loop unrolled in the program).

    python benchmarks/meta_step.py --out benchmarks/results
    python benchmarks/meta_step.py --methods maml fomaml metanas --sizes 1 2 4 8 16 32

Writes `meta_step_<device>.json`. Ratios (vmap vs unrolled, and the per-task cost as the
batch grows) are measured side by side in one run. Random images stand in for Omniglot:
the step's cost does not depend on the pixels.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import time

import jax
import numpy as np
from _child import cpu_name

from jnas import meta
from jnas.recipes.meta import make_learner


def _time(fn, *args, repeats: int) -> float:
    jax.block_until_ready(fn(*args))  # warm
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", default=["maml"])
    parser.add_argument("--sizes", nargs="+", type=int, default=[1, 2, 4, 8, 16, 32])
    parser.add_argument("--maps", nargs="+", default=["vmap", "unroll"])
    parser.add_argument("--shots", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default="benchmarks/results")
    args = parser.parse_args()
    pool = np.random.default_rng(0).random((40, 20, 28, 28, 1), np.float32)
    sampler = meta.few_shot(pool, 5, args.shots, 15)
    device = jax.devices()[0].device_kind
    rows = []
    for method in args.methods:
        for task_map in args.maps:
            learner = make_learner(method, image=True, ways=5, steps=1000, task_map=task_map)
            state = jax.jit(learner.init)(jax.random.key(0))
            for size in args.sizes:
                tasks = meta.task_batch(sampler, jax.random.key(1), size)
                start = time.perf_counter()
                compiled = jax.jit(learner.step).lower(state, tasks).compile()
                compile_s = time.perf_counter() - start
                step_s = _time(compiled, state, tasks, repeats=args.repeats)
                row = {
                    "method": method,
                    "task_map": task_map,
                    "tasks": size,
                    "compile_s": round(compile_s, 2),
                    "step_ms": round(1e3 * step_s, 2),
                    "ms_per_task": round(1e3 * step_s / size, 2),
                }
                rows.append(row)
                print(json.dumps(row), flush=True)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = device.lower().replace(" ", "_")
    path = out / f"meta_step_{name}.json"
    path.write_text(
        json.dumps(
            {
                "device": device,
                "backend": jax.default_backend(),
                "host": cpu_name(),
                "shots": args.shots,
                "rows": rows,
            },
            indent=1,
        )
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
