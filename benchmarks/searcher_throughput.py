"""Throughput of every black-box searcher against the NB201 table: evaluations per second
for many seeds at once (one compiled `vmap`-of-`while_loop` program), compile time apart.

    python benchmarks/searcher_throughput.py --seeds 1000 --steps 100 --out benchmarks/results

Each searcher runs `--steps` ask/tell rounds for every seed with its default
hyper-parameters (the model-based searchers with `--model-seeds` seeds, since each of their
rounds fits a surrogate; their rate is per evaluation all the same). Writes
`searcher_throughput_<platform>.json`.
"""

from __future__ import annotations

import argparse
import os

# XLA:CPU's multi-threaded Eigen kernels deadlock here on vmapped GP searches (every thread
# idle, the result never ready; seen with 2 cores): run them single-threaded per op.
os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false"
).strip()
import json
import math
import pathlib
import time

import jax
import jax.numpy as jnp
from _child import cpu_name

from jnas import bench, search
from jnas.spaces import NB201

SEARCHERS = {name: (e.make, e.model_based) for name, e in search.REGISTRY.items()}


def measure(name: str, make, table: bench.Table, seeds: int, steps: int) -> dict:
    searcher = make(NB201())
    epochs = (12, 200) if searcher.fidelities > 1 else 12
    obj = bench.objective(table, dataset="cifar10-valid", metric="valid_acc", epochs=epochs)
    run = jax.jit(bench.simulate_batch(searcher, NB201(), math.inf, steps))
    keys = jax.vmap(lambda i: jax.random.fold_in(jax.random.key(0), i))(jnp.arange(seeds))
    start = time.perf_counter()
    compiled = run.lower(keys, obj.fitness, obj.cost_s).compile()
    compile_s = time.perf_counter() - start
    start = time.perf_counter()
    _, best, _, evaluations, _ = jax.block_until_ready(compiled(keys, obj.fitness, obj.cost_s))
    run_s = time.perf_counter() - start
    n = int(evaluations.sum())
    row = {
        "searcher": name,
        "seeds": seeds,
        "rounds": steps,
        "batch_size": searcher.batch_size,
        "evaluations": n,
        "compile_s": round(compile_s, 2),
        "run_s": round(run_s, 3),
        "evaluations_per_s": round(n / run_s),
        "us_per_evaluation": round(1e6 * run_s / n, 3),
        "mean_best_valid_acc": round(float(best[:, -1].mean()), 3),
    }
    print(json.dumps(row), flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=1000)
    parser.add_argument(
        "--model-seeds", type=int, default=100, help="seeds for BO and BANANAS (default: 100)"
    )
    parser.add_argument("--steps", type=int, default=100, help="ask/tell rounds per seed")
    parser.add_argument("--searchers", nargs="+", default=list(SEARCHERS), choices=list(SEARCHERS))
    parser.add_argument("--nasbench", default=None)
    parser.add_argument("--out", default="benchmarks/results")
    args = parser.parse_args()
    table = bench.load_nb201(args.nasbench)
    rows = [
        measure(
            name,
            SEARCHERS[name][0],
            table,
            args.model_seeds if SEARCHERS[name][1] else args.seeds,
            args.steps,
        )
        for name in args.searchers
    ]
    device = jax.devices()[0]
    result = {
        "device": f"{device.platform}:{device.device_kind}",
        "host": cpu_name(),
        "cpu_count": os.cpu_count(),
        "jax": jax.__version__,
        "rows": rows,
    }
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"searcher_throughput_{device.platform}.json"
    if set(args.searchers) != set(SEARCHERS) and path.exists():
        # a partial run replaces its searchers' rows and keeps the others
        ran = {row["searcher"]: row for row in rows}
        old = {row["searcher"]: row for row in json.loads(path.read_text())["rows"]}
        result["rows"] = [ran.get(n, old.get(n)) for n in SEARCHERS if n in ran or n in old]
    path.write_text(json.dumps(result, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
