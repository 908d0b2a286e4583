"""From process start to the first finished one-shot step, cold and with the persistent XLA
cache warm (issue #21's goal 2: <= 20 s cold, <= 5 s warm, every NB201 method on CPU).

    python benchmarks/oneshot_startup.py --out benchmarks/results
    python benchmarks/oneshot_startup.py --methods gdas --channels 8 --cells 1   # quick

For each method a fresh interpreter runs the whole start (import, the method and its
state, a batch of host arrays as a loader gives, tracing and lowering the step, XLA's
compile, the first call) twice with
one cache folder, set as the `jnas` command sets it (`JNAS_XLA_CACHE`, every program kept):
first empty (cold), then again (warm). The phases are wall-clock seconds from the parent's
spawn of the interpreter. The child's environment is the `jnas` command's: with glibc's
`glibc.malloc.hugetlb=1` where the command re-executes itself with it (`jnas._huge_pages`;
`--no-huge-pages` leaves it out). Each row also has a second, steady step (`second_step_s`),
the start less that step (`start_less_one_step_s`: what the start costs beyond the work of
one step; the second call repeats the first's key, as GDAS', SPOS' or ENAS' cell follows
it) and each call's system CPU time and page faults (the first call's is the kernel handing
the process fresh memory). `--path epoch` starts as a run does instead: `oneshot.epoch_fn`
over splits of one batch, one step, whose program the `jnas` command's trace store
(`jnas._trace_store`) keeps beside the XLA cache, so the warm start loads the step traced;
its tracing, compile and first call are all in `first_step_s` (the second epoch repeats
the first's key, so its step too). Writes `oneshot_startup_<device>[_<label>].json`.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import tempfile
import time

from _child import machine, run_child, save

from jnas import _huge_pages

PHASES = ("import", "state", "lower", "compile", "first_step")

CHILD = r"""
import json, os, resource, sys, time
t = {}
import jax, jax.numpy as jnp
import numpy as np
from jnas import oneshot
from jnas._execution import initial_state
from jnas.commands._common import enable_compilation_cache
from jnas.spaces import NB201
enable_compilation_cache()
t["import"] = time.time()
name, channels, cells, batch, path = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
method = oneshot.REGISTRY[name].make(
    NB201(), channels=channels, cells_per_stage=cells, epochs=50, steps_per_epoch=391
)
state = jax.block_until_ready(initial_state(method.init, jax.random.key(0)))
# the batches as a data loader gives them, host arrays (with jax.random they cost a
# second of compiling the generator's programs, which no training run pays)
rng = np.random.default_rng(1)
train = (rng.standard_normal((batch, 32, 32, 3), np.float32), rng.integers(0, 10, batch, np.int32))
val = (rng.standard_normal((batch, 32, 32, 3), np.float32), rng.integers(0, 10, batch, np.int32))
t["state"] = time.time()
if path == "epoch":  # the run's own path: an epoch of one step, its program maybe stored
    from jnas.data import Split
    epoch = oneshot.epoch_fn(method, batch)
    splits = (Split(*train), Split(*val))
    compiled = lambda key, state, *_: epoch(state, key, *splits)
    t["lower"] = t["compile"] = t["state"]
else:
    lowered = oneshot.jit_step(method).lower(jax.random.key(2), state, train, val)
    t["lower"] = time.time()
    compiled = lowered.compile()
    t["compile"] = time.time()
use = [resource.getrusage(resource.RUSAGE_SELF)]
jax.block_until_ready(compiled(jax.random.key(2), state, train, val))
t["first_step"] = time.time()
use.append(resource.getrusage(resource.RUSAGE_SELF))
# the same step again, steady: a sampling method's cell follows the key, so only the
# first call's key repeats its work (another key's cell may cost 3x less or more)
jax.block_until_ready(compiled(jax.random.key(2), state, train, val))
t["second_step"] = time.time()
use.append(resource.getrusage(resource.RUSAGE_SELF))
for i, call in enumerate(("first", "second")):
    t[call + "_call_system_s"] = use[i + 1].ru_stime - use[i].ru_stime
    t[call + "_call_page_faults"] = use[i + 1].ru_minflt - use[i].ru_minflt
print("TIMES " + json.dumps(t))
"""


def _run(name: str, cache: str, args: argparse.Namespace) -> dict:
    env = {**args.env, "JNAS_XLA_CACHE": cache}
    load = os.getloadavg()[0]
    spawn = time.time()
    argv = [name, str(args.channels), str(args.cells), str(args.batch), args.path]
    times = run_child(CHILD, argv, env, "TIMES", name)
    row, before = {"load_before": round(load, 2)}, spawn
    for phase in PHASES:
        row[f"{phase}_s"] = round(times[phase] - before, 2)
        before = times[phase]
    row["total_s"] = round(times["first_step"] - spawn, 2)
    # the start's cost beyond the step itself: the total less one steady (second) step
    row["second_step_s"] = round(times["second_step"] - times["first_step"], 2)
    row["start_less_one_step_s"] = round(row["total_s"] - row["second_step_s"], 2)
    for call in ("first", "second"):
        row[f"{call}_call_system_s"] = round(times[f"{call}_call_system_s"], 2)
        row[f"{call}_call_page_faults"] = times[f"{call}_call_page_faults"]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--methods", nargs="+", default=["darts-v1", "gdas", "darts-v2"])
    parser.add_argument("--channels", type=int, default=16)
    parser.add_argument("--cells", type=int, default=5)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--out", type=pathlib.Path, default=None)
    parser.add_argument("--no-huge-pages", dest="huge_pages", action="store_false")
    parser.add_argument(
        "--path",
        choices=("step", "epoch"),
        default="step",
        help="step: `oneshot.jit_step` lowered and compiled by hand (the phases apart); "
        "epoch: the run's own path, `oneshot.epoch_fn` over splits of one batch, whose "
        "step program the trace store keeps (all of it in `first_step_s`)",
    )
    parser.add_argument(
        "--no-trace-store",
        dest="trace_store",
        action="store_false",
        help="JNAS_TRACE_STORE=0 in the children: the epoch path traced every start",
    )
    parser.add_argument("--label", default="", help="suffix of the JSON's name")
    args = parser.parse_args()
    args.env = dict(os.environ)
    if not args.trace_store:
        args.env["JNAS_TRACE_STORE"] = "0"
    if args.huge_pages:  # the child's environment as the command re-executes itself with it
        thp, glibc = _huge_pages.thp_mode(), _huge_pages.glibc_version()
        args.env = _huge_pages.environment(args.env, thp, glibc) or args.env
    import jax

    rows = []
    for name in args.methods:
        with tempfile.TemporaryDirectory() as cache:
            for state in ("cold", "warm"):
                row = {"method": name, "cache": state, **_run(name, cache, args)}
                rows.append(row)
                print(json.dumps(row), flush=True)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        cwd=pathlib.Path(__file__).resolve().parent,  # this checkout's, from any directory
        capture_output=True,
        text=True,
    ).stdout.strip()
    result = {
        **machine(),
        "commit": commit,
        "config": {
            "space": "nb201",
            "channels": args.channels,
            "cells_per_stage": args.cells,
            "batch": args.batch,
            "size": 32,
            "path": args.path,
            "trace_store": args.trace_store,
        },
        "glibc_tunables": args.env.get("GLIBC_TUNABLES", ""),
        "goal_s": {"cold": 20.0, "warm": 5.0},
        "rows": rows,
    }
    suffix = f"_{args.label}" if args.label else ""
    save(result, args.out, f"oneshot_startup_{jax.default_backend()}{suffix}.json")


if __name__ == "__main__":
    main()
