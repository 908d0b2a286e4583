"""Where a row of the NB201 Table 5 script spends its time, on one core: tracing and
lowering, XLA's compile, and each chunk of seeds run (`experiments/nb201_table5.py`'s
settings: 25 seeds a chunk for the model-based searchers, their XLA optimisation level).

    python benchmarks/table5_rows.py --rows smac bo bo-wl bananas pnas nao --out benchmarks/results

The process pins itself to one core before JAX starts (as each worker of the table script
does), so XLA's thread pool has one thread. Writes `table5_rows_<platform>.json`.
"""

from __future__ import annotations

import os

# as the table script: XLA:CPU's multi-threaded Eigen kernels deadlock on vmapped GP searches
os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false"
).strip()
if hasattr(os, "sched_setaffinity"):  # one core, before JAX sizes its thread pool
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})

import argparse
import pathlib
import platform
import time

import jax
import numpy as np
from _child import save

from jnas import bench, search
from jnas.spaces import NB201

# the table script's XLA optimisation levels of these rows (its OPT_LEVEL)
OPT_LEVEL = {"smac": 2, "bo": 1, "bo-wl": 1, "bananas": 1, "pnas": 1, "nao": 1, "tpe": 1}


def row_times(short: str, seeds: int, chunk: int, budget: float, nasbench: str | None) -> dict:
    """Lower, compile and per-chunk run seconds of one searcher's protocol program."""
    table = bench.load_nb201(nasbench)
    searcher = search.REGISTRY[short].make(NB201())
    epochs = (12, 200) if searcher.fidelities > 1 else 12
    obj = bench.objective(table, dataset="cifar10-valid", metric="valid_acc", epochs=epochs)
    steps = bench.max_steps_for(obj, budget, searcher.batch_size)
    batch = bench.simulate_batch(searcher, obj.space, budget, steps)
    options = {"xla_backend_optimization_level": OPT_LEVEL.get(short, 2)}
    run = jax.jit(
        lambda key, ids, f, c: batch(jax.vmap(lambda i: jax.random.fold_in(key, i))(ids), f, c),
        compiler_options=options,
    )
    key = jax.random.key(0)
    t0 = time.perf_counter()
    lowered = run.lower(key, np.arange(chunk, dtype=np.int32), obj.fitness, obj.cost_s)
    t1 = time.perf_counter()
    compiled = lowered.compile()
    t2 = time.perf_counter()
    runs, evals = [], []
    for start in range(0, seeds, chunk):
        ids = np.arange(start, start + chunk, dtype=np.int32)
        begin = time.perf_counter()
        out = jax.device_get(compiled(key, ids, obj.fitness, obj.cost_s))
        runs.append(round(time.perf_counter() - begin, 2))
        evals.append(out[3])
    evals = np.concatenate(evals)
    return {
        "searcher": short,
        "seeds": seeds,
        "chunk": chunk,
        **options,
        "lower_s": round(t1 - t0, 2),
        "compile_s": round(t2 - t1, 2),
        "chunk_run_s": runs,
        "total_s": round(t2 - t0 + sum(runs), 1),
        "evaluations_mean": float(evals.mean()),
        "evaluations_max": int(evals.max()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", nargs="+", default=["smac", "bo", "bo-wl", "bananas"])
    parser.add_argument("--seeds", type=int, default=100)
    parser.add_argument("--chunk", type=int, default=25)
    parser.add_argument("--budget", type=float, default=12000)
    parser.add_argument("--nasbench", default=None)
    parser.add_argument("--out", type=pathlib.Path, default=None)
    args = parser.parse_args()
    if args.seeds % args.chunk:
        parser.error(f"--seeds must be a multiple of --chunk; got {args.seeds}, {args.chunk}")
    rows = []
    for short in args.rows:
        rows.append(row_times(short, args.seeds, args.chunk, args.budget, args.nasbench))
        print(rows[-1], flush=True)
    result = {
        "device": jax.devices()[0].platform,
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "host": platform.machine(),
        "jax": jax.__version__,
        "rows": rows,
    }
    save(result, args.out, f"table5_rows_{result['device']}.json")


if __name__ == "__main__":
    main()
