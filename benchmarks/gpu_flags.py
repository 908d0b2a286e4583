"""XLA:GPU flag variants of the NB201 one-shot steps, each in a fresh process: what the
launch and host-synchronisation overheads cost a step, and which flags remove them.

    PYTHONPATH=. python3 benchmarks/gpu_flags.py --out "$OUT"            # on the GPU
    python benchmarks/gpu_flags.py --tiny --out /tmp/gpu_flags          # any machine: a dry run

Why: on one H200 (`gpu_goals_gpu.json`) a GDAS step took 24 ms though its kernels are a
fraction of DARTS-V1's (the reference: 25 ms of GPU work against 74 ms). GDAS runs one
`lax.switch` per edge and the cells of a stage in one `lax.scan`; XLA:GPU decides a
conditional's branch and a loop's exit on the host unless they are recorded into a command
buffer (CUDA graph) as conditional nodes, so each one is a device-to-host copy and a wait.
Variants: XLA's defaults; conditionals and while loops added to the command-buffer types;
and also loops of known trip count unrolled in the command buffer; the supernet's 3x3
convolutions as im2col products or XLA's own; its cells scanned or unrolled. Measured on
one H200 (2026-12-04, `benchmarks/results/gpu_flags_gpu*.json`): the flags changed nothing,
unrolling in the command buffer failed, XLA's own convolution slowed GDAS (35 against 23
ms); "unrolled" and "native_unrolled" not yet run. The first variant
traces 3 steps of each method with JAX's profiler (`<method>.xplane.pb.gz` in --out; read
them with `jax.profiler.ProfileData`) and alone times `--profiled-methods` too. Writes
`gpu_flags_<platform>.json` after every variant.
"""

from __future__ import annotations

import argparse
import gzip
import importlib.util
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent
# name: (XLA_FLAGS, more arguments of the supernet)
VARIANTS: dict[str, tuple[str, dict]] = {
    "default": ("", {}),
    "cmd_buffer_conditional_while": ("--xla_gpu_enable_command_buffer=+CONDITIONAL,+WHILE", {}),
    "cmd_buffer_unrolled_loops": (
        "--xla_gpu_enable_command_buffer=+CONDITIONAL,+WHILE "
        "--xla_gpu_command_buffer_unroll_loops=true",
        {},
    ),
    # the 3x3 convolutions as im2col products (the CPU layout) or as XLA's own (cuDNN)
    "patches": ("", {"conv_impl": "patches"}),
    "native": ("", {"conv_impl": "native"}),
    "native_unrolled": ("", {"conv_impl": "native", "scan": False}),
    # the cells of a stage unrolled: no while loops (each iteration's exit decided on the
    # host: ~470 small device-to-host copies a V1 step on the H200), a larger program
    "unrolled": ("", {"scan": False}),
}


def child(
    methods: list[str], config: dict, profile_to: pathlib.Path | None, supernet: dict
) -> None:
    """Time each method in this process (its XLA_FLAGS set by the parent), one JSON line each."""
    spec = importlib.util.spec_from_file_location("oneshot_step", HERE / "oneshot_step.py")
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {HERE / 'oneshot_step.py'}")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    for method in methods:
        seeds = 8 if method.endswith("x8") else None
        name = method.removesuffix("x8")
        trace = pathlib.Path(tempfile.mkdtemp()) if profile_to is not None else None
        row = bench.measure(
            name, seeds, **config, dtype="float32", profile=trace, supernet=supernet
        )
        if trace is not None and profile_to is not None:
            for i, found in enumerate(sorted(trace.rglob("*.xplane.pb"))):
                target = profile_to / f"{method}{'' if i == 0 else i}.xplane.pb.gz"
                with open(found, "rb") as raw, gzip.open(target, "wb") as packed:
                    shutil.copyfileobj(raw, packed)
            shutil.rmtree(trace)  # the raw trace, kept packed above
        print("ROW " + json.dumps({"variant_method": method, **row}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", default=["gdas", "darts-v1"])
    parser.add_argument("--profiled-methods", nargs="*", default=["darts-v1x8"])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=150.0, help="seconds per variant")
    parser.add_argument("--tiny", action="store_true", help="a dry run at toy sizes")
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--profile-to", type=pathlib.Path, help=argparse.SUPPRESS)
    parser.add_argument("--supernet", default="{}", help=argparse.SUPPRESS)
    parser.add_argument("--no-profile", action="store_true", help="trace nothing")
    args = parser.parse_args()
    config = {"space": "nb201", "channels": 16, "cells": 5, "batch": 64, "size": 32}
    if args.tiny:
        config.update(channels=4, cells=1, batch=8, size=8)
        args.repeats = 2
    config["repeats"] = args.repeats
    if args.child:
        child(args.methods, config, args.profile_to, json.loads(args.supernet))
        return
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    result: dict = {"config": {**config, "tiny": args.tiny}, "variants": {}}
    for i, variant in enumerate(args.variants):
        flags, supernet = VARIANTS[variant]
        env = {**os.environ, "XLA_FLAGS": flags}
        methods = args.methods + (args.profiled_methods if i == 0 else [])
        cmd = [sys.executable, "-u", __file__, "--child", "--methods", *methods]
        cmd += ["--supernet", json.dumps(supernet)]
        cmd += ["--tiny"] if args.tiny else ["--repeats", str(args.repeats)]
        cmd += ["--profile-to", str(out)] if i == 0 and not args.no_profile else []
        start = time.perf_counter()
        try:
            done = subprocess.run(
                cmd, env=env, capture_output=True, text=True, timeout=args.timeout
            )
            status, text = done.returncode, done.stdout + done.stderr
        except subprocess.TimeoutExpired as stop:
            status = "timeout"
            text = (stop.stdout or b"").decode() + (stop.stderr or b"").decode()
        rows = [json.loads(line[4:]) for line in text.splitlines() if line.startswith("ROW ")]
        result["variants"][variant] = {
            "xla_flags": flags,
            "supernet": supernet,
            "status": status,
            "wall_s": round(time.perf_counter() - start, 1),
            "rows": rows,
            "tail": [line for line in text.splitlines() if not line.startswith("ROW ")][-6:],
        }
        print(json.dumps(result["variants"][variant]), flush=True)
        platform = "tiny" if args.tiny else "gpu"
        (out / f"gpu_flags_{platform}.json").write_text(json.dumps(result, indent=1) + "\n")
    every = args.methods + args.profiled_methods
    print(f"{'variant':32s} " + " ".join(f"{m:>12s}" for m in every) + "   (ms/step)")
    for variant, found in result["variants"].items():
        ms = {r["variant_method"]: r["ms_per_step"] for r in found["rows"]}
        print(f"{variant:32s} " + " ".join(f"{ms.get(m, float('nan')):12.2f}" for m in every))


if __name__ == "__main__":
    main()
