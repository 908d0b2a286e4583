"""One-shot steps with and without glibc's `glibc.malloc.hugetlb=1` (`jnas._huge_pages`).

    python benchmarks/huge_pages.py --out benchmarks/results
    python benchmarks/huge_pages.py --methods gdas --batch 16 --rounds 1 --steps 3   # quick

XLA:CPU maps each call's temporary buffer afresh; with 4 KB pages every page of it faults in
on its first touch. For each method, fresh interpreters alternate (round by round) between
the plain environment and the one the `jnas` command re-executes itself with, and report per
step: the median wall time, minor page faults and system CPU seconds, with the process' peak
RSS. Writes `huge_pages_<device>.json` (ratios side by side in one run).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics

from _child import SUPERNET, machine, run_child, save

from jnas import _huge_pages

CHILD = (
    r"""
import json, resource, sys, time
name, batch, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
"""
    + SUPERNET
    + r"""
step = oneshot.jit_step(method).lower(jax.random.key(2), state, train, val).compile()
jax.block_until_ready(step(jax.random.key(2), state, train, val))
rows = []
for i in range(steps):
    r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    jax.block_until_ready(step(jax.random.key(3 + i), state, train, val))
    t1, r1 = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
    rows.append((t1 - t0, r1.ru_minflt - r0.ru_minflt, r1.ru_stime - r0.ru_stime))
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print("RESULT " + json.dumps({"rows": rows, "peak_rss_mib": peak}))
"""
)


def run(name: str, batch: int, steps: int, env: dict[str, str]) -> dict:
    return run_child(CHILD, [name, str(batch), str(steps)], env, "RESULT", name)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--methods", nargs="+", default=["darts-v1", "gdas", "darts-v2"])
    ap.add_argument("--batch", type=int, nargs="+", default=[16, 64])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--out", type=pathlib.Path, default=None)
    args = ap.parse_args()
    plain = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}
    huge = _huge_pages.environment(plain, _huge_pages.thp_mode(), _huge_pages.glibc_version())
    if huge is None:
        ap.error(
            "needs glibc >= 2.35 and transparent huge pages in madvise mode; "
            f"got glibc {_huge_pages.glibc_version()}, mode {_huge_pages.thp_mode()}"
        )
    rows = []
    for name in args.methods:
        for batch in args.batch:
            got: dict[str, list] = {"plain": [], "huge_pages": []}
            peak: dict[str, float] = {"plain": 0.0, "huge_pages": 0.0}
            for _ in range(args.rounds):
                for side, env in (("plain", plain), ("huge_pages", huge)):
                    r = run(name, batch, args.steps, env)
                    got[side] += r["rows"]
                    peak[side] = max(peak[side], r["peak_rss_mib"])
            row: dict = {"method": name, "batch": batch}
            for side, steps in got.items():
                row[side] = {
                    "step_s_median": round(statistics.median(s[0] for s in steps), 3),
                    "faults_per_step_median": int(statistics.median(s[1] for s in steps)),
                    "sys_s_per_step_median": round(statistics.median(s[2] for s in steps), 3),
                    "peak_rss_mib": round(peak[side]),
                }
            row["huge_over_plain"] = round(
                row["huge_pages"]["step_s_median"] / row["plain"]["step_s_median"], 3
            )
            rows.append(row)
            print(json.dumps(row), flush=True)
    import jax

    result = {
        **machine(),
        "glibc": _huge_pages.glibc_version(),
        "thp_mode": _huge_pages.thp_mode(),
        "config": {"space": "nb201", "channels": 16, "cells_per_stage": 5, "size": 32},
        "rounds": args.rounds,
        "steps_per_process": args.steps,
        "rows": rows,
    }
    save(result, args.out, f"huge_pages_{jax.default_backend()}.json")


if __name__ == "__main__":
    main()
