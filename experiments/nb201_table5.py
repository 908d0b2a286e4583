"""NAS-Bench-201 Table 5 with jnas' black-box searchers on the simulated clock.

    python experiments/nb201_table5.py --seeds 500 --model-seeds 100 --out benchmarks/results
    python experiments/nb201_table5.py --seeds 500 --model-seeds 100 --only nao  # some rows

Search on CIFAR-10 (25k/25k train/valid split) by the 12-epoch validation accuracy, each
query charged its 12-epoch training time, 12,000 simulated seconds; report the final
incumbent's 200-epoch accuracies. Writes `nb201_table5.json` and `nb201_table5.md`, with
Welch's t statistic of each searcher's CIFAR-10 test accuracy against random search.
Hyperband and BOHB evaluate at 12 or 200 epochs, each query charged its training time at
that fidelity; their incumbent is the best 200-epoch validation accuracy.
The model-based searchers (BO, BANANAS) fit a surrogate every round, so they may run fewer
seeds (`--model-seeds`); every row states its seed count. (XLA:CPU's multi-threaded Eigen
kernels deadlock on these vmapped GP programs: the script turns them off.)
`--only` (the registry's short names) reruns those rows and random search, the reference
of every t test, and keeps the other rows of the existing JSON and its `meta` (the whole
table's time among it); the partial run's is `meta.partial_rerun`. `--workers 2` (default)
runs the rows in two processes, the costliest first (rows are independent and each seed's
key is fixed, so the numbers do not depend on it); the total wall time, compile included,
is in the JSON's `meta`.
"""

from __future__ import annotations

import argparse
import os

# XLA:CPU's multi-threaded Eigen kernels deadlock here on vmapped GP searches (every thread
# idle, the result never ready; seen with 2 cores): run them single-threaded per op.
os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false"
).strip()
import concurrent.futures
import json
import multiprocessing
import pathlib
import time
from typing import Any

import jax
import numpy as np

from jnas import bench, search
from jnas.bench._report import NB201_REPORT, summarize
from jnas.spaces import NB201

# rough cost of the rows (seconds in a worker, last full run): the costliest start first
COST = {
    "smac": 36,
    "bananas": 36,
    "bo-wl": 23,
    "pnas": 22,
    "bo": 20,
    "nao": 19,
    "reinforce-lstm": 11,
    "tpe": 10,
    "bohb": 5,
    "neat": 4,
    "qlearning": 4,
}
# XLA's backend optimisation level per row (default 2), from compile and run times of each
# row's program on one core (`experiments/nb201_table5.py` has one core per worker):
# rows whose program runs in well under its compile time take -O0, which compiles them
# 3-4x faster (NEAT 9.6 -> 2.2 s) for a run that stays under a second; most of the others
# take -O1: the surrogates' compile 11-16 -> 7-11 s for the same run (BANANAS 15.9 -> 11.0 s
# compile, 8.9 -> 8.3 s a 25-seed chunk; PNAS 8.1 -> 4.8, 6.3 -> 5.7; TPE 7.4 -> 3.0,
# 2.2 -> 1.6); SMAC keeps -O2 (its forest's chunk runs 5.3 s there, ~10 s at -O1).
# The results are the same at every level (no fast math).
OPT_LEVEL = dict.fromkeys(("rs", "rea", "te", "neat", "ls", "reinforce", "hyperband", "dehb"), 0)
OPT_LEVEL |= dict.fromkeys(
    ("qlearning", "tpe", "bohb", "reinforce-lstm", "bo", "bo-wl", "bananas", "pnas", "nao"), 1
)
# seeds per compiled call: a per-seed state that stays in cache runs faster (the LSTM
# policy: 500 seeds 20 s, 50 at a time 10 s; TPE 9 s and 8 s at 100); the surrogates at 25
CHUNK = {"reinforce-lstm": 50}


def _pin(cores: Any) -> None:
    """Pin this worker process to one core taken from the queue `cores`, before JAX loads.

    XLA:CPU sizes its thread pool by the cores a process may use; unpinned, each worker's
    second thread spins while its programs (a vmapped while loop of small ops) run on one,
    taking that core from the other worker. Pinned, each runs as fast as alone: a
    BANANAS chunk ran 9.6 s on one core against 9.4 s on two (13.3 s of CPU)."""
    os.sched_setaffinity(0, {cores.get()})


def run_row(short: str, seeds: int, budget: float, nasbench: str | None) -> tuple[dict, np.ndarray]:
    """One row of the table: `seeds` searches of the registry's `short` searcher; returns
    the summary row and every seed's final CIFAR-10 test accuracy."""
    entry = search.REGISTRY[short]
    table = bench.load_nb201(nasbench)
    start = time.perf_counter()
    searcher = entry.make(NB201())
    epochs = (12, 200) if searcher.fidelities > 1 else 12
    obj = bench.objective(table, dataset="cifar10-valid", metric="valid_acc", epochs=epochs)
    sim = bench.simulate(
        searcher,
        obj,
        key=jax.random.key(0),
        num_seeds=seeds,
        budget_s=budget,
        chunk=CHUNK.get(short, 25 if entry.model_based else 100),
        compiler_options=(
            {"xla_backend_optimization_level": OPT_LEVEL[short]} if short in OPT_LEVEL else None
        ),
    )
    row = summarize(sim, table, NB201_REPORT)
    row.update(searcher=entry.label, seeds=seeds, wall_s=round(time.perf_counter() - start, 2))
    print(f"{entry.label}: {seeds} seeds in {row['wall_s']} s", flush=True)
    final = sim.report(table, dataset="cifar10", metric="test_acc", epochs=200)[:, -1]
    return row, np.asarray(final)


def main() -> None:
    begin = time.perf_counter()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=500)
    parser.add_argument(
        "--model-seeds",
        type=int,
        default=None,
        help="seeds of the model-based searchers (default: --seeds)",
    )
    parser.add_argument("--budget", type=float, default=12000)
    parser.add_argument("--nasbench", default=None)
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--workers", type=int, default=2, help="processes running rows")
    parser.add_argument(
        "--only",
        nargs="+",
        default=[],
        choices=list(search.single_objective()),
        help="rerun only these rows (with random search), keep the rest",
    )
    parser.add_argument(
        "--no-pin",
        dest="pin",
        action="store_false",
        help="leave the workers unpinned (default: one core each when there are enough)",
    )
    args = parser.parse_args()
    if args.workers < 1:
        parser.error(f"--workers must be >= 1; got {args.workers}")
    shorts = [  # every single-objective searcher NB201 can run (MetaQNN: layer states)
        s
        for s, entry in search.single_objective().items()
        if search.supports(entry, NB201()) and (not args.only or s in args.only or s == "rs")
    ]
    seeds = {
        s: args.model_seeds if search.REGISTRY[s].model_based and args.model_seeds else args.seeds
        for s in shorts
    }

    def jobs(s: str) -> tuple[str, int, float, str | None]:
        return s, seeds[s], args.budget, args.nasbench

    pin: dict[str, Any] = {}  # the pool's initializer when the workers are pinned
    if args.workers == 1:
        done = {s: run_row(*jobs(s)) for s in shorts}
    else:  # spawn: a fresh interpreter per worker, not a fork of a process that ran XLA
        ctx = multiprocessing.get_context("spawn")
        cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
        if args.pin and len(cores) >= args.workers:  # one core each (else: unpinned)
            queue = ctx.Queue()
            for core in cores[: args.workers]:
                queue.put(core)
            pin = {"initializer": _pin, "initargs": (queue,)}
        with concurrent.futures.ProcessPoolExecutor(args.workers, mp_context=ctx, **pin) as pool:
            order = sorted(shorts, key=lambda s: -COST.get(s, 0))
            futures = {s: pool.submit(run_row, *jobs(s)) for s in order}
            done = {s: futures[s].result() for s in shorts}
    rows = [done[s][0] for s in shorts]
    finals = {done[s][0]["searcher"]: done[s][1] for s in shorts}
    for row in rows:
        t, p = bench.welch_test(finals[row["searcher"]], finals["random search"])
        row["vs_random_search"] = {"welch_t": round(t, 2), "p_one_sided": p}
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    previous = None
    if args.only and (out / "nb201_table5.json").exists():  # keep the rows not rerun
        ran = {row["searcher"]: row for row in rows}
        previous = json.loads((out / "nb201_table5.json").read_text())
        rows = [ran.pop(row["searcher"], row) for row in previous["rows"]] + list(ran.values())
    table = bench.load_nb201(args.nasbench)
    obj = bench.objective(table, dataset="cifar10-valid", metric="valid_acc", epochs=12)
    meta = {
        "seeds": args.seeds,
        "budget_s": args.budget,
        "fitness": obj.description,
        "device": jax.devices()[0].platform,
        "cpu_cores": os.cpu_count(),
        "workers": args.workers,
        "pinned": bool(pin),
        "total_wall_s": round(time.perf_counter() - begin, 1),
    }
    if previous is not None:  # the whole table's meta stays the last full run's
        rerun = {k: meta[k] for k in ("workers", "pinned", "total_wall_s")}
        meta = {**previous["meta"], "partial_rerun": {"rows": sorted(args.only), **rerun}}
    for row in rows:  # the per-seed values (500 a column) stay out of the JSON: means, stds
        for cell in row.values():
            if isinstance(cell, dict):
                cell.pop("values", None)
    (out / "nb201_table5.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    cols = [f"{d}/{m}/{e}" for d, m, e in NB201_REPORT]
    lines = [
        f"NB201 protocol: {args.seeds} seeds, {args.budget:.0f} s budget, "
        f"{obj.description}; mean +- std of the final incumbent (200 epochs).",
        "",
        "| searcher | seeds | "
        + " | ".join(c.rsplit("/", 1)[0] for c in cols)
        + " | t vs RS (CIFAR-10 test) | p |",
        "|---" * (len(cols) + 4) + "|",
    ]
    for row in rows:
        cells = " | ".join(f"{row[c]['mean']:.2f} +- {row[c]['std']:.2f}" for c in cols)
        vs = row["vs_random_search"]
        lines.append(
            f"| {row['searcher']} | {row['seeds']} | {cells} | {vs['welch_t']:.2f} | "
            f"{vs['p_one_sided']:.1e} |"
        )
    (out / "nb201_table5.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
