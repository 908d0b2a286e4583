"""Issue #21's GPU goals in one run of a few minutes, so that a lent device is used well.

    PYTHONPATH=. python3 benchmarks/gpu_goals.py --out "$OUT"        # on the GPU
    PYTHONPATH=. python3 benchmarks/gpu_goals.py --reference .perf --out "$OUT"   # and the reference
    python benchmarks/gpu_goals.py --tiny --out /tmp/gpu_goals        # any machine: a dry run

On the NB201 supernet (C=16, N=5, batch 64, 32x32x3, float32), against the NB201 authors'
PyTorch search code on one H100 (`oneshot_step.py`'s reference figures):
- DARTS-V1 step >= 10x faster than the reference's eager step (286 ms) and >= 3x faster
  than its CUDA-graph replay (81 ms);
- the exact second-order DARTS-V2 step <= 2x our first-order step;
- GDAS >= 10x the reference's (163 ms);
- 8 vmapped DARTS-V1 seeds >= 5x the throughput of one;
- a 50-epoch DARTS-V1 search (NB201's 25k / 25k split, 390 steps an epoch) <= 10 minutes:
  compile and two epochs are timed on device-resident random data of CIFAR-10's shape,
  the 50 epochs extrapolated from the second (`--full-search` runs all 50).
The step timings are `oneshot_step.py`'s (`measure`: compile apart, median of `--repeats`
steps after a warm-up). `--reference DIR` first times the reference itself on the same
device: DIR is a copy of `../shared/perf` with the reference's model files in `DIR/.peer`
(that folder's README), run in a subprocess before JAX takes the GPU; its medians then
stand beside the H100 figures in the table. Writes `gpu_goals_<platform>.json` after every
measurement (a run cut short keeps what it measured) and prints the goals table last. On
the device image use its own jax (no network there to install jnas' pins).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import pathlib
import platform
import subprocess
import sys
import time

import jax
import numpy as np

from jnas import oneshot
from jnas.data import Split
from jnas.spaces import NB201

HERE = pathlib.Path(__file__).resolve().parent
CUDA_GRAPH_MS = 81.0  # the reference's DARTS-V1 step replayed as one CUDA graph (H100)
# the reference harness' variants (`peer_darts_nb201.py --mode eager`): the steps as its
# scripts run them (DataParallel, a metric sync a step), the lean V1 step and its CUDA graph
REFERENCE_VARIANTS = {
    "darts-v1": "v1_faithful_fp32",
    "darts-v2": "v2_faithful_fp32",
    "gdas": "gdas_faithful_fp32",
    "darts-v1-lean": "v1_lean_fp32",
    "darts-v1-cuda-graph": "v1_lean_cudagraph_fp32",
}


def reference_times(
    folder: pathlib.Path, out: pathlib.Path, timeout_s: float, python: str, tiny: bool
) -> dict:
    """The reference's median step times (ms) on this device, by method, from a run of the
    harness in `folder` under `python` (a subprocess, so that it has the GPU to itself;
    `tiny`: the harness' CPU smoke run)."""
    log_dir = out / "reference"
    log_dir.mkdir(parents=True, exist_ok=True)
    cmd = [
        python, "-u", str(folder / "peer_darts_nb201.py"), "--mode", "eager",
        "--peer", str(folder / ".peer"), "--out", str(log_dir),
        "--only", ",".join(REFERENCE_VARIANTS.values()),
        "--steps", "30", "--steps-v2", "20", "--warmup", "5",
    ] + (["--device", "cpu", "--smoke"] if tiny else [])  # fmt: skip
    start = time.perf_counter()
    with open(log_dir / "eager.log", "w") as log:
        try:
            rc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, timeout=timeout_s)
            status = rc.returncode
        except subprocess.TimeoutExpired:
            status = "timeout"
    found = {"status": status, "wall_s": round(time.perf_counter() - start, 1)}
    results = log_dir / "results.jsonl"
    records = (
        [json.loads(line) for line in results.read_text().splitlines()] if results.exists() else []
    )
    by_variant = {r["variant"]: r for r in records if r.get("kind") == "timing"}
    for name, variant in REFERENCE_VARIANTS.items():
        if variant in by_variant:
            r = by_variant[variant]
            found[name] = {
                "median_ms": round(r["median_ms"], 2),
                "peak_alloc_mb": r.get("peak_alloc_MiB"),
                "kernels_per_step": r.get("kernels_per_step"),
            }
    env = [r for r in records if r.get("kind") == "env"]
    if env:
        found["env"] = {k: v for k, v in env[0].items() if k not in ("kind", "t_wall")}
    return found


def _oneshot_step():
    """`benchmarks/oneshot_step.py` as a module: one implementation of the step timing."""
    spec = importlib.util.spec_from_file_location("oneshot_step", HERE / "oneshot_step.py")
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {HERE / 'oneshot_step.py'}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def search_time(config: dict, epochs: int, train_size: int, full: bool) -> dict:
    """Compile + first epoch, a second epoch, and the `epochs`-epoch search time (all
    of them run with `full`, else extrapolated from the second epoch)."""
    method = oneshot.REGISTRY["darts-v1"].make(
        NB201(),
        channels=config["channels"],
        cells_per_stage=config["cells"],
        epochs=epochs,
        steps_per_epoch=train_size // config["batch"],
    )
    ks = jax.random.split(jax.random.key(0), 5)
    shape = (train_size, config["size"], config["size"], 3)
    train = Split(jax.random.normal(ks[0], shape), jax.random.randint(ks[1], shape[:1], 0, 10))
    valid = Split(jax.random.normal(ks[2], shape), jax.random.randint(ks[3], shape[:1], 0, 10))
    epoch = oneshot.epoch_fn(method, config["batch"], None, "scan")
    state = jax.block_until_ready(jax.jit(method.init)(ks[4]))
    times = []
    for e in range(epochs if full else 2):
        start = time.perf_counter()
        state, metrics = epoch(state, jax.random.fold_in(ks[4], e), train, valid)
        jax.block_until_ready(metrics)
        times.append(time.perf_counter() - start)
    total = sum(times) if full else times[0] + (epochs - 1) * times[1]
    return {
        "epochs": epochs,
        "steps_per_epoch": train_size // config["batch"],
        "first_epoch_with_compile_s": round(times[0], 2),
        "epoch_s": round(float(np.median(times[1:])), 3),
        "search_s": round(total, 1),
        "extrapolated": not full,
    }


def goals(rows: dict, search: dict | None, reference_ms: dict, here: dict) -> list[dict]:
    """Each goal measured so far: what it asks, the measured value, the bound and whether
    it holds (`reference_ms`: the reference's eager H100 steps by method; `here`: the
    reference timed on this device, where it was)."""
    ms = {m: rows[m]["ms_per_step"] for m in rows}
    checks = []
    if "darts-v1" in ms:
        v1 = ms["darts-v1"]
        checks += [
            ("DARTS-V1 step (ms) <= eager reference / 10", v1, reference_ms["darts-v1"] / 10),
            ("DARTS-V1 step (ms) <= CUDA-graph reference / 3", v1, CUDA_GRAPH_MS / 3),
        ]
        if "darts-v1" in here:
            bound = here["darts-v1"]["median_ms"] / 10
            checks.append(("DARTS-V1 step (ms) <= reference here / 10", v1, bound))
        if "darts-v1-cuda-graph" in here:
            bound = here["darts-v1-cuda-graph"]["median_ms"] / 3
            checks.append(("DARTS-V1 step (ms) <= CUDA-graph reference here / 3", v1, bound))
        if "darts-v2" in ms:
            checks.append(("exact DARTS-V2 step / DARTS-V1 step <= 2", ms["darts-v2"] / v1, 2.0))
    if "gdas" in ms:
        checks.append(("GDAS step (ms) <= reference / 10", ms["gdas"], reference_ms["gdas"] / 10))
        if "gdas" in here:
            bound = here["gdas"]["median_ms"] / 10
            checks.append(("GDAS step (ms) <= reference here / 10", ms["gdas"], bound))
    if "darts-v1x8" in rows:
        seeds = rows["darts-v1x8"]["throughput_vs_one_seed"]
        checks.append(("8 vmapped seeds: throughput / one seed >= 5", seeds, 5.0))
    for method in ("darts-v1", "darts-v2", "gdas"):  # goal 5 on this device
        mine = rows.get(method, {}).get("memory_mb")
        theirs = here.get(method, {}).get("peak_alloc_mb")
        if mine is not None and theirs is not None:
            text = f"{method} step memory (MB, compiled) <= reference's peak allocation here"
            checks.append((text, mine, theirs))
    if search is not None:
        text = f"{search['epochs']}-epoch DARTS-V1 search (s) <= 600"
        checks.append((text, search["search_s"], 600.0))
    return [
        {
            "goal": text,
            "value": round(float(value), 3),
            "bound": round(bound, 3),
            "met": bool(value >= bound if ">=" in text else value <= bound),
        }
        for text, value, bound in checks
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--full-search", action="store_true", help="run all epochs")
    parser.add_argument("--tiny", action="store_true", help="a dry run at toy sizes")
    parser.add_argument("--reference", type=pathlib.Path, help="the reference harness' folder")
    parser.add_argument("--reference-timeout", type=float, default=150.0)
    parser.add_argument("--reference-python", default=sys.executable, help="one with torch")
    parser.add_argument("--out", default="benchmarks/results")
    args = parser.parse_args()
    config = {"space": "nb201", "channels": 16, "cells": 5, "batch": 64, "size": 32}
    train_size = 25_000
    if args.tiny:
        config.update(channels=4, cells=1, batch=8, size=8)
        train_size, args.repeats, args.epochs = 32, 2, 3
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    here = {}
    if args.reference is not None:  # before JAX takes the GPU
        here = reference_times(
            args.reference, out, args.reference_timeout, args.reference_python, args.tiny
        )
        print(json.dumps(here), flush=True)
    bench = _oneshot_step()
    measure, reference_ms = bench.measure, bench.REFERENCE_H100_MS
    step = {**config, "repeats": args.repeats, "dtype": "float32"}
    device = jax.devices()[0]
    name = f"gpu_goals_{device.platform}{'_tiny' if args.tiny else ''}.json"
    result = {
        "device": f"{device.platform}: {device.device_kind}",
        "host": platform.machine(),
        "jax": jax.__version__,
        "config": {**config, "tiny": args.tiny},
        "reference_h100_ms": {**reference_ms, "darts-v1-cuda-graph": CUDA_GRAPH_MS},
        "reference_here": here,
        "steps": {},
        "search": None,
    }

    def save() -> list[dict]:
        """Write what is measured so far (a run cut short keeps it)."""
        result["goals"] = goals(result["steps"], result["search"], reference_ms, here)
        result["wall_s"] = round(time.perf_counter() - began, 1)
        if device.platform == "gpu":
            stats = device.memory_stats() or {}
            result["peak_gpu_mb"] = round(stats.get("peak_bytes_in_use", 0) / 2**20, 1)
        (out / name).write_text(json.dumps(result, indent=1) + "\n")
        return result["goals"]

    rows = result["steps"]
    # the cheapest goals first: a lease that runs out leaves the most answered
    for method in ("darts-v1", "gdas"):
        rows[method] = measure(method, None, **step)
        print(json.dumps(rows[method]), flush=True)
        save()
    rows["darts-v1x8"] = measure("darts-v1", 8, **step)
    rows["darts-v1x8"]["throughput_vs_one_seed"] = round(
        rows["darts-v1x8"]["steps_per_s_all_seeds"] / rows["darts-v1"]["steps_per_s_all_seeds"], 2
    )
    print(json.dumps(rows["darts-v1x8"]), flush=True)
    save()
    result["search"] = search_time(config, args.epochs, train_size, args.full_search)
    print(json.dumps(result["search"]), flush=True)
    save()
    rows["darts-v2"] = measure("darts-v2", None, **step)
    print(json.dumps(rows["darts-v2"]), flush=True)
    table = save()
    print(f"wrote {out / name}\n{result['device']}")
    if args.tiny:
        print("DRY RUN at toy sizes: the bounds below are the full-size goals'")
    for g in table:
        print(f"{'met ' if g['met'] else 'MISS'}  {g['value']:>10} vs {g['bound']:>8}  {g['goal']}")


if __name__ == "__main__":
    main()
