"""Speed-up of `search.run` on a Dask cluster: 1, 2 and 4 workers against a serial run, on
an objective that sleeps (so it measures the engine, not the machine's 2 cores).

    python benchmarks/executor_speedup.py --evaluations 32 --sleep 0.5 --out benchmarks/results

Synchronous mode: random search in rounds of 8 (a round waits for its slowest evaluation;
the records equal the serial run's, checked here). Asynchronous mode: regularized evolution,
each finished worker given the next architecture at once, with sleeps that vary by cell
(0.5x to 1.5x), where a synchronous round would wait for its slowest member. Writes
`executor_speedup.json`.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import time

import jax
import numpy as np
from _child import cpu_name

from jnas import search
from jnas.spaces import NB201

SPACE = NB201()


class Sleeper:
    """fitness = a fixed score of the cell; sleeps `sleep` seconds (times 0.5-1.5 by cell
    when `vary`)."""

    def __init__(self, sleep: float, vary: bool = False) -> None:
        self.sleep, self.vary = sleep, vary

    def __call__(self, arch) -> float:
        ops = np.asarray(arch.ops)
        factor = 0.5 + (int(ops.sum()) % 5) / 4 if self.vary else 1.0
        time.sleep(self.sleep * factor)
        return float((ops * np.arange(1, 7)).sum())


def timed(**kwargs) -> tuple[float, list[dict]]:
    start = time.perf_counter()
    _, records = search.run(space=SPACE, **kwargs)
    return time.perf_counter() - start, records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--evaluations", type=int, default=32)
    parser.add_argument("--sleep", type=float, default=0.5)
    parser.add_argument("--out", default="benchmarks/results")
    args = parser.parse_args()

    from distributed import Client, LocalCluster

    rs = search.random_search(SPACE, batch_size=8)
    rea = search.regularized_evolution(SPACE, population_size=8, sample_size=3)
    common = dict(key=jax.random.key(0), num_evaluations=args.evaluations)
    results: dict = {"evaluations": args.evaluations, "sleep_s": args.sleep, "runs": []}
    serial_s, serial = timed(searcher=rs, objective=Sleeper(args.sleep), **common)
    vary_s, _ = timed(searcher=rea, objective=Sleeper(args.sleep, vary=True), **common)
    results["runs"].append({"mode": "serial", "workers": 0, "sync_s": serial_s, "async_s": vary_s})
    print(f"serial: {serial_s:.2f} s (rounds), {vary_s:.2f} s (evolution, varying sleeps)")
    for workers in (1, 2, 4):
        with (
            LocalCluster(
                n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
            ) as cluster,
            Client(cluster) as client,
        ):
            executor = search.dask_executor(client)
            client.run(lambda: None)  # workers up before timing
            sync_s, records = timed(
                searcher=rs, objective=Sleeper(args.sleep), executor=executor, **common
            )
            assert records == serial, "parallel records differ from the serial run's"
            async_s, _ = timed(
                searcher=rea,
                objective=Sleeper(args.sleep, vary=True),
                executor=executor,
                asynchronous=True,
                **common,
            )
        row = {
            "mode": "dask",
            "workers": workers,
            "sync_s": sync_s,
            "async_s": async_s,
            "sync_speedup": serial_s / sync_s,
            "async_speedup": vary_s / async_s,
        }
        results["runs"].append(row)
        print(
            f"dask {workers} worker(s): rounds {sync_s:.2f} s ({row['sync_speedup']:.2f}x), "
            f"asynchronous evolution {async_s:.2f} s ({row['async_speedup']:.2f}x)"
        )
    results["machine"] = f"{cpu_name()}, {jax.device_count()} cpu"
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "executor_speedup.json").write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {out / 'executor_speedup.json'}")


if __name__ == "__main__":
    main()
