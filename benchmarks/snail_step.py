"""Benchmark SNAIL on Omniglot-sized 5-way tasks: the sequence model's forward and backward
over a task batch with the support prefix computed once (`model(prefix, last)`, what
`meta.snail` runs) against one whole causal sequence per query (the plain formulation,
which recomputes the prefix for every query), side by side in one run; and the whole
meta-step of `jnas meta snail` (conv4 embedding + sequence model), compile time apart.

    python benchmarks/snail_step.py --out benchmarks/results

Writes `snail_step_<device>.json`. Random inputs stand in for Omniglot: the cost does not
depend on the pixels.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import time

import jax
import jax.numpy as jnp
import numpy as np

from jnas import meta
from jnas.recipes.meta import make_learner


def _time(fn, *args, repeats: int) -> tuple[float, float]:
    """(compile + first call, median of `repeats` calls) in seconds."""
    start = time.perf_counter()
    jax.block_until_ready(fn(*args))
    first = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - start)
    return first, float(np.median(times))


def sequence_model(shots: int, tasks: int, queries: int, repeats: int) -> dict:
    """Gradient of the sequence model's query logits over `tasks` tasks, both ways."""
    ways, features = 5, 64
    model = meta.snail_model(features, ways, ways * shots + 1)
    params = model.init(jax.random.key(0))
    prefix = jax.random.normal(jax.random.key(1), (tasks, ways * shots, features + ways))
    last = jax.random.normal(jax.random.key(2), (tasks, ways * queries, features + ways))

    def shared(p, s, q):
        return model.apply(p, s, q)

    def per_query(p, s, q):
        return jax.vmap(lambda r: model.apply(p, jnp.concatenate([s, r[None]]))[-1])(q)

    row: dict = {"ways": ways, "shots": shots, "tasks": tasks, "queries_per_class": queries}
    for name, logits in (("shared_prefix", shared), ("per_query_sequence", per_query)):
        loss = lambda p, f=logits: sum(
            jnp.sum(jnp.sin(f(p, prefix[t], last[t]))) for t in range(tasks)
        )
        first, step = _time(jax.jit(jax.grad(loss)), params, repeats=repeats)
        row[name] = {"first_call_s": round(first, 2), "s_per_grad": round(step, 4)}
    row["speedup"] = round(
        row["per_query_sequence"]["s_per_grad"] / row["shared_prefix"]["s_per_grad"], 1
    )
    return row


def meta_step(shots: int, tasks: int, queries: int, repeats: int) -> dict:
    """One meta-step of the `jnas meta snail` learner (conv4 embedding, 28x28 images)."""
    learner = make_learner("snail", image=True, ways=5, steps=1000, shots=shots)
    images = jax.random.normal(jax.random.key(3), (20, shots + queries, 28, 28, 1))
    sample = meta.few_shot(images, ways=5, shots=shots, queries=queries)
    batch = meta.task_batch(sample, jax.random.key(4), tasks)
    state = learner.init(jax.random.key(5))
    # the whole step: the new state is an output (returning the metrics alone would let XLA
    # drop the backward pass and the update), the tasks an argument (not folded constants)
    step = jax.jit(learner.step)
    first, s = _time(step, state, batch, repeats=repeats)
    return {
        "shots": shots,
        "tasks": tasks,
        "first_call_s": round(first, 2),
        "s_per_step": round(s, 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shots", nargs="+", type=int, default=[1, 5])
    parser.add_argument("--tasks", type=int, default=16)
    parser.add_argument("--queries", type=int, default=15)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    load = os.getloadavg()  # other work on the machine skews the timings: recorded with them
    rows = []
    for shots in args.shots:
        row = sequence_model(shots, args.tasks, args.queries, args.repeats)
        row["meta_step"] = meta_step(shots, args.tasks, args.queries, args.repeats)
        print(json.dumps(row), flush=True)
        rows.append(row)
    if args.out:
        device = jax.devices()[0]
        out = pathlib.Path(args.out) / f"snail_step_{device.platform}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        meta_info = {
            "device": f"{device.platform}:{device.device_kind}",
            "host": platform.machine(),
            "cpu_count": len(os.sched_getaffinity(0)),
            "jax": jax.__version__,
            "load_avg_1_5_15_at_start": [round(x, 2) for x in load],
        }
        out.write_text(json.dumps({"meta": meta_info, "rows": rows}, indent=1))
        print(f"wrote {out}")


if __name__ == "__main__":
    main()
