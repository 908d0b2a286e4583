"""One-shot steps on a multi-core CPU: one XLA device against the batch split over one
device per core (`jnas.parallel`: data parallel, the state replicated).

    python benchmarks/cpu_data_parallel.py --out benchmarks/results
    python benchmarks/cpu_data_parallel.py --methods gdas --batch 16 --rounds 1   # quick

XLA:CPU spreads one device's step over the cores through its intra-op threads and by
running independent kernels at once; the supernet's kernels are small (C=16 at 32x32), so
much of a step keeps one core busy. With `jax_num_cpu_devices` = cores, `jax.jit` compiles
one SPMD program: each device runs the step on its rows of the batch, and batch-norm
statistics and gradients are all-reduced, so the step's math is the one-device step's (same
losses; float32 sums in another order). For each method, fresh interpreters alternate
(round by round) between 1 device and `--devices` (default: the cores), each timing
`--steps` steps from one state with the same keys (GDAS samples the same cells on both
sides). Writes `cpu_data_parallel_<device>.json` (ratios side by side in one run).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics

from _child import SUPERNET, machine, run_child, save

CHILD = (
    r"""
import json, resource, sys, time
name, batch, steps, devices = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
import jax
jax.config.update("jax_num_cpu_devices", devices)  # before the backend starts
"""
    + SUPERNET
    + r"""
from jnas import parallel
assert jax.device_count() == devices, jax.devices()
if devices > 1:
    mesh = parallel.mesh()
    train, val = parallel.shard_leading(train, mesh), parallel.shard_leading(val, mesh)
    state = parallel.replicate(state, mesh)
t0 = time.perf_counter()
step = oneshot.jit_step(method).lower(jax.random.key(2), state, train, val).compile()
compile_s = time.perf_counter() - t0
_, first = jax.block_until_ready(step(jax.random.key(2), state, train, val))
times = []
for i in range(steps):
    t0 = time.perf_counter()
    jax.block_until_ready(step(jax.random.key(3 + i), state, train, val))
    times.append(time.perf_counter() - t0)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
metrics = {k: float(v) for k, v in first.items()}
print("RESULT " + json.dumps(
    {"times": times, "compile_s": compile_s, "peak_rss_mib": peak, "metrics": metrics}
))
"""
)


def run(name: str, batch: int, steps: int, devices: int) -> dict:
    return run_child(
        CHILD, [name, str(batch), str(steps), str(devices)], dict(os.environ), "RESULT", name
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--methods", nargs="+", default=["darts-v1", "gdas", "darts-v2"])
    ap.add_argument("--batch", type=int, nargs="+", default=[64, 16])
    ap.add_argument("--devices", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--out", type=pathlib.Path, default=None)
    args = ap.parse_args()
    if args.devices < 2:
        ap.error(f"--devices must be at least 2 (the cores); got {args.devices}")
    load1 = os.getloadavg()[0]  # before this run's own load
    sides = {"one_device": 1, f"{args.devices}_devices": args.devices}
    rows = []
    for name in args.methods:
        for batch in args.batch:
            if batch % args.devices:
                ap.error(f"--batch {batch} does not split over {args.devices} devices")
            got: dict[str, list] = {side: [] for side in sides}
            info: dict[str, dict] = {side: {} for side in sides}
            for _ in range(args.rounds):
                for side, devices in sides.items():
                    r = run(name, batch, args.steps, devices)
                    got[side] += r["times"]
                    info[side]["peak_rss_mib"] = round(
                        max(info[side].get("peak_rss_mib", 0.0), r["peak_rss_mib"])
                    )
                    info[side].setdefault("compile_s", []).append(round(r["compile_s"], 1))
                    info[side]["first_step_metrics"] = {
                        k: round(v, 5) for k, v in r["metrics"].items()
                    }
            row: dict = {"method": name, "batch": batch}
            for side, times in got.items():
                row[side] = {
                    "step_s_median": round(statistics.median(times), 3),
                    "steps_s": [round(t, 3) for t in times],
                    **info[side],
                }
            one, many = list(sides)
            row[f"{many}_over_one"] = round(
                row[many]["step_s_median"] / row[one]["step_s_median"], 3
            )
            rows.append(row)
            print(json.dumps(row), flush=True)
    import jax

    result = {
        **machine(),
        "load1_at_start": load1,
        "glibc_tunables": os.environ.get("GLIBC_TUNABLES", ""),
        "config": {"space": "nb201", "channels": 16, "cells_per_stage": 5, "size": 32},
        "rounds": args.rounds,
        "steps_per_process": args.steps,
        "rows": rows,
    }
    save(result, args.out, f"cpu_data_parallel_{jax.default_backend()}.json")


if __name__ == "__main__":
    main()
