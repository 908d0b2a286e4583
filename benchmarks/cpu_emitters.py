"""XLA:CPU's two code emitters (or two LLVM optimisation levels) on the NB201 one-shot
steps, A against B in fresh processes.

    python benchmarks/cpu_emitters.py --out benchmarks/results
    python benchmarks/cpu_emitters.py --methods gdas --batch 16 --pairs 1 --repeats 3  # quick

Since jax 0.10 XLA:CPU emits fused loops through MLIR ("fusion emitters"); its classic loop
emitters remain behind `xla_cpu_use_fusion_emitters=false`. A one-shot method may ask for
them (`OneShot.cpu_compiler_options`; DARTS does, `jnas._execution.CLASSIC_EMITTERS`).
For each method, thread count and pair, one fresh interpreter per emitter (alternating,
so drifts in the machine's speed hit both) compiles the step (C=16, N=5, 32x32, fp32)
with `compiler_options` naming the emitter and times `--repeats` steps after one
warm-up. `--threads 1` is how the side-by-side harness runs jnas
(`--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1`); `2` is the
default thread pool on this 2-core machine. Reports the median step, the compile and the
process' peak RSS (VmHWM: the compile's peak included). Writes `cpu_emitters_cpu[_<label>].json`.

`--compare opt-level` times LLVM's -O2 (XLA's default) against -O1 instead, each over the
method's own options (`cpu_opt_level_cpu[_<label>].json`): where the fused kernels come
from the MLIR fusion emitters, which vectorise themselves, -O1 compiles faster.
`--compare opt-preset` times XLA:CPU's default preset against `CPU_OPT_PRESET_FAST_COMPILE`
(`xla_cpu_opt_preset`, `cpu_opt_preset_cpu[_<label>].json`).
`--compare ynn-fusion` times XLA:CPU's default YNNPACK fusions (single dots and
convolutions, reductions) against the same plus elementwise fusions
(`xla_cpu_experimental_ynn_fusion_type`, `cpu_ynn_fusion_cpu[_<label>].json`).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import subprocess

import numpy as np
from _child import SUPERNET, cpu_name, run_child, save

CHILD = (
    r"""
import json, resource, sys, time
name, batch, repeats, options = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
"""
    + SUPERNET
    + r"""
from jnas._execution import cpu_compiler_options
options = {**(cpu_compiler_options(method.cpu_compiler_options) or {}), **json.loads(options)}
start = time.perf_counter()
compiled = jax.jit(method.step, compiler_options=options).lower(
    jax.random.key(2), state, train, val
).compile()
compile_s = time.perf_counter() - start
jax.block_until_ready(compiled(jax.random.key(2), state, train, val))
times = []
for i in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(compiled(jax.random.key(3 + i), state, train, val))
    times.append(time.perf_counter() - start)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
print("ROW " + json.dumps({"compile_s": compile_s, "steps_s": times, "peak_rss_gb": peak}))
"""
)
ONE_THREAD = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
YNN_DEFAULT = ("INDIVIDUAL_DOT", "INDIVIDUAL_CONVOLUTION", "REDUCE")
# setting name -> compiler options over the method's own (`OneShot.cpu_compiler_options`)
COMPARE = {
    "emitters": {
        "fusion": {"xla_cpu_use_fusion_emitters": True},
        "classic": {"xla_cpu_use_fusion_emitters": False},
    },
    "opt-level": {  # LLVM's optimisation level for the compiled kernels
        "O2": {"xla_backend_optimization_level": 2},
        "O1": {"xla_backend_optimization_level": 1},
    },
    "opt-preset": {  # XLA:CPU's optimisation preset (DebugOptions.CpuOptPreset)
        "default": {},
        "fast-compile": {"xla_cpu_opt_preset": "CPU_OPT_PRESET_FAST_COMPILE"},
    },
    "ynn-fusion": {  # which HLO XLA:CPU hands to YNNPACK; the default list is the first
        "default": {},  # three (naming them gives the same program: 3,538 YNN fusions, GDAS)
        "eltwise": {
            "xla_cpu_experimental_ynn_fusion_type": ",".join(
                "LIBRARY_FUSION_TYPE_" + kind for kind in (*YNN_DEFAULT, "ELTWISE")
            )
        },
    },
}
STEM = {
    "emitters": "cpu_emitters",
    "opt-level": "cpu_opt_level",
    "opt-preset": "cpu_opt_preset",
    "ynn-fusion": "cpu_ynn_fusion",
}


def _child(name: str, batch: int, repeats: int, setting: str, options: dict, threads: int) -> dict:
    env = dict(os.environ)
    env.pop("XLA_FLAGS", None)
    if threads == 1:
        env["XLA_FLAGS"] = ONE_THREAD
    argv = [name, str(batch), str(repeats), json.dumps(options)]
    return run_child(CHILD, argv, env, "ROW", f"{name} ({setting})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--methods", nargs="+", default=["darts-v1", "darts-v2", "gdas"])
    parser.add_argument("--batch", type=int, nargs="+", default=[64])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], choices=[1, 2])
    parser.add_argument("--pairs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=4)
    parser.add_argument("--out", type=pathlib.Path, default=None)
    parser.add_argument("--label", default="", help="suffix of the JSON's name")
    parser.add_argument(
        "--compare",
        choices=tuple(COMPARE),
        default="emitters",
        help="emitters: fusion against classic; opt-level: LLVM -O2 against -O1; "
        "opt-preset: XLA:CPU's default preset against fast-compile; ynn-fusion: YNNPACK's "
        "default fusions against those plus elementwise ones (each over the method's own "
        "options)",
    )
    args = parser.parse_args()
    settings = COMPARE[args.compare]
    (a, b) = tuple(settings)
    rows = []
    for name in args.methods:
        for batch in args.batch:
            for threads in args.threads:
                runs: dict[str, list[dict]] = {e: [] for e in settings}
                for _ in range(args.pairs):
                    for setting, options in settings.items():
                        runs[setting].append(
                            _child(name, batch, args.repeats, setting, options, threads)
                        )
                row: dict = {"method": name, "batch": batch, "threads": threads}
                for emitter in settings:
                    row[emitter] = {
                        "step_s_median_per_run": [
                            round(float(np.median(r["steps_s"])), 3) for r in runs[emitter]
                        ],
                        "compile_s": [round(r["compile_s"], 1) for r in runs[emitter]],
                        "peak_rss_gb": [round(r["peak_rss_gb"], 2) for r in runs[emitter]],
                    }
                first, second = (
                    np.median([np.median(r["steps_s"]) for r in runs[k]]) for k in (a, b)
                )
                row[f"{b}_over_{a}_step"] = round(float(second / first), 3)
                rows.append(row)
                print(json.dumps(row), flush=True)
    import jax

    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        cwd=pathlib.Path(__file__).resolve().parent,  # this checkout's, from any directory
        capture_output=True,
        text=True,
    ).stdout.strip()
    result = {
        "what": "NB201 supernet one-shot steps (C=16, N=5, 32x32, fp32), XLA:CPU compiler "
        f"options {a} against {b} ({args.compare}), fresh processes alternating",
        "settings": settings,
        "device": f"cpu ({platform.machine()}, {os.cpu_count()} cores)",
        "cpu": cpu_name(),
        "jax": jax.__version__,
        "commit": commit,
        "load_at_end": round(os.getloadavg()[0], 2),
        "rows": rows,
    }
    suffix = f"_{args.label}" if args.label else ""
    save(result, args.out, f"{STEM[args.compare]}_cpu{suffix}.json")


if __name__ == "__main__":
    main()
