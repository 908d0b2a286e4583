"""Benchmark the NAS-Bench protocol: table load time and memory, query throughput, and the
wall time of whole searches for many seeds against a plain Python loop over a dict.

    python benchmarks/protocol.py --seeds 1000 10000 100000 --out benchmarks/results

Writes `protocol_<device>.json`. The Python baseline is the cheapest thing a user could
write: random search / regularized evolution over an in-memory dict from architecture
string to (12-epoch validation accuracy, 12-epoch training time), timed on a subset of
seeds and reported per seed.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import random
import resource
import time

import jax
import jax.numpy as jnp
import numpy as np
from _child import cpu_name

from jnas import bench, search
from jnas.spaces import NB201

BUDGET = 12000.0


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure_loading(nasbench: str | None) -> dict:
    out = {}
    for name, loader in (
        ("nb201", bench.load_nb201),
        ("nats_sss", bench.load_nats_sss),
        ("latency", bench.load_latency),
    ):
        before = _peak_rss_mb()
        start = time.perf_counter()
        table = loader(nasbench)
        jax.block_until_ready(table.columns)
        out[name] = {
            "load_s": round(time.perf_counter() - start, 3),
            "peak_rss_growth_mb": round(_peak_rss_mb() - before, 1),
            "columns": len(table.columns),
            "rows": table.num_rows,
        }
    return out


def measure_queries(table: bench.Table, batch: int = 1_000_000) -> dict:
    space = NB201()
    archs = jax.vmap(space.sample)(jax.random.split(jax.random.key(0), batch))
    query = jax.jit(lambda t, a: t.query(a, dataset="cifar10-valid", metric="valid_acc", epochs=12))
    query(table, archs).block_until_ready()
    start = time.perf_counter()
    reps = 5
    for _ in range(reps):
        query(table, archs).block_until_ready()
    sec = (time.perf_counter() - start) / reps
    return {"batch": batch, "queries_per_s": round(batch / sec)}


def python_baseline(table: bench.Table, searcher: str, seeds: int) -> float:
    """Seconds per seed of a plain Python search over a dict of the table."""
    space = NB201()
    names = [space.to_string(space.from_index(i)) for i in range(space.size)]
    val = np.asarray(table.column("cifar10-valid", "valid_acc", 12)).tolist()
    cost = np.asarray(table.column("cifar10-valid", "train_time_s", 12)).tolist()
    lookup = {n: (v, c) for n, v, c in zip(names, val, cost, strict=True)}
    ops = list(space.ops)

    def sample(rng):
        return tuple(rng.randrange(5) for _ in range(6))

    def to_str(a):
        return (
            f"|{ops[a[0]]}~0|+|{ops[a[1]]}~0|{ops[a[2]]}~1|+|{ops[a[3]]}~0|"
            f"{ops[a[4]]}~1|{ops[a[5]]}~2|"
        )

    def mutate(rng, a):
        a = list(a)
        i = rng.randrange(6)
        a[i] = (a[i] + rng.randrange(1, 5)) % 5
        return tuple(a)

    start = time.perf_counter()
    for seed in range(seeds):
        rng = random.Random(seed)
        t, best, pop = 0.0, -1.0, []
        while t < BUDGET:
            if searcher == "rs" or len(pop) < 10:
                a = sample(rng)
            else:
                parent = max(rng.choices(pop, k=3), key=lambda p: p[1])
                a = mutate(rng, parent[0])
            v, c = lookup[to_str(a)]
            t += c
            best = max(best, v)
            if searcher == "rea":
                pop.append((a, v))
                pop = pop[-10:]
    return (time.perf_counter() - start) / seeds


def measure_protocol(table: bench.Table, seeds: list[int], chunk: int) -> list[dict]:
    obj = bench.objective(table, dataset="cifar10-valid", metric="valid_acc", epochs=12)
    rows = []
    for name, make in (("rs", search.random_search), ("rea", search.regularized_evolution)):
        baseline = python_baseline(table, name, 200)
        for n in seeds:
            searcher = make(NB201())
            steps = bench.max_steps_for(obj, BUDGET, 1)
            run = jax.jit(bench.simulate_batch(searcher, NB201(), BUDGET, steps))
            c = min(chunk, n)
            # the seeds' keys up front, so the timing holds only the compiled protocol
            chunks = [
                jax.vmap(lambda i: jax.random.fold_in(jax.random.key(0), i))(jnp.arange(lo, lo + c))
                for lo in range(0, n, c)
            ]
            start = time.perf_counter()
            compiled = run.lower(chunks[0], obj.fitness, obj.cost_s).compile()
            compile_s = time.perf_counter() - start
            start = time.perf_counter()
            for keys in chunks:
                jax.block_until_ready(compiled(keys, obj.fitness, obj.cost_s))
            run_s = time.perf_counter() - start
            loop_s = baseline * n
            rows.append(
                {
                    "searcher": name,
                    "seeds": n,
                    "chunk": c,
                    "steps": steps,
                    "compile_s": round(compile_s, 2),
                    "run_s": round(run_s, 3),
                    "ms_per_seed": round(1000 * run_s / n, 4),
                    "python_loop_ms_per_seed": round(1000 * baseline, 4),
                    "speedup_vs_loop": round(loop_s / run_s, 2),
                    "speedup_vs_loop_incl_compile": round(loop_s / (run_s + compile_s), 2),
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--chunk", type=int, default=10000)
    parser.add_argument("--nasbench", default=None)
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument(
        "--xla-cache",
        default=None,
        help="persistent compilation cache folder (run twice: cold, warm)",
    )
    parser.add_argument("--tag", default="", help="suffix of the output file name")
    args = parser.parse_args()
    if args.xla_cache:
        jax.config.update("jax_compilation_cache_dir", args.xla_cache)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    table = bench.load_nb201(args.nasbench)
    device = jax.devices()[0]
    result = {
        "device": f"{device.platform}:{device.device_kind}",
        "host": cpu_name(),
        "jax": jax.__version__,
        "xla_cache": args.xla_cache,
        "loading": measure_loading(args.nasbench),
        "queries": measure_queries(table),
        "protocol": measure_protocol(table, args.seeds, args.chunk),
    }
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"protocol_{device.platform}{args.tag}.json"
    path.write_text(json.dumps(result, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
