"""Side by side on the CPU: jnas' one-shot steps against the NB201 authors' PyTorch code.

Drives the harness in `../shared/perf` (our own code: it runs the reference's search step as
its scripts do, importing the reference's model files from a `.peer/` folder that you fill as
that README says; none of the reference's code is in this repository). Both programs run in
one process pair, alternating step by step, so machine noise hits both alike.

    python benchmarks/oneshot_vs_reference.py --peer /tmp/perf/.peer \\
        --torch-python /tmp/perf/torchvenv/bin/python --algos DARTS-V1,GDAS,DARTS-V2

Two settings, both with PyTorch on one thread (`torch.set_num_threads(1)`) and XLA told to
use one (`--xla_cpu_multi_thread_eigen=false`, the harness' `--threads 1`):
- `cores=all`: the processes may use every core. XLA:CPU still runs independent kernels of
  one step concurrently, so jnas uses up to about two cores here; this is the setting the
  first measurements (issue 21's table) were taken in.
- `cores=1`: both processes pinned to one core (`sched_setaffinity`): one core each, the
  like-for-like comparison.

Writes `benchmarks/results/oneshot_vs_reference_cpu_b{batch}.json`: per setting and method the
median step of each side, the per-pair ratios, start-up (build, lower, compile, first call) and
peak RSS, with the machine's load. `--jnas-xla-flags` adds XLA flags to the jnas side only
(e.g. `--xla_cpu_use_fusion_emitters=false`, the classic emitters: a lower compile-time
memory peak, see the README) and `--label` names the JSON apart (`..._b16_{label}.json`).

`--huge-pages` sets glibc's `glibc.malloc.hugetlb=1` (`jnas._huge_pages`: no page faults on
the fresh per-step buffers) for `jnas` (default: the jnas side only, as the `jnas` command
sets it for itself), `both` sides (the reference's allocator gets the same), or `none`.
`--retain` adds `jnas._huge_pages.RETAIN` on the jnas side: its per-call buffer stays in the
heap between calls, so the pause while the reference runs its step costs no page faults
(this VM's balloon device hands freed memory back to the host; see the module).
`--xla-cache DIR` keeps the jnas worker's compiled programs in DIR as a `jnas` run does: run
twice with the same DIR (and a `--label` each) for a cold and a warm start.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import shutil
import subprocess
import sys
import tempfile

from _child import cpu_name

from jnas import _huge_pages

ROOT = pathlib.Path(__file__).resolve().parents[1]


# The harness' jnas worker was written for the API of late 2026-11 (its README says to adapt
# it): `oneshot.METHODS[name]` and `step(state, train, val, key)`. The writable copy gets
# today's: the registry's `make`, the key first (`step(key, state, train, val)`) and the
# method's own CPU compiler options (`oneshot.jit_step`: DARTS-V1's classic emitters).
# It also starts as a jnas run does (since 2026-12-05): the state from
# `jnas._execution.initial_state` (the init compiled at -O0, as every run driver builds it;
# the worker's own `jax.jit(init)` took 3.0-3.2 s against 1.0 s), the batch pool drawn on the
# host with NumPy as a loader hands batches over (the same N(0,1) images and uniform labels;
# drawn with `jax.random` they cost 2.8 s of compiles and dispatches, where the reference's
# `torch.randn` costs milliseconds) and the 4,096 step keys, the same keys, unpacked from one
# split (a list of the split array: 1.8 s of one-element dispatches; 0.4 s). None of it is
# inside a timed step.
WORKER_API = (
    ("oneshot.METHODS[name]", "oneshot.REGISTRY[name].make"),
    (
        "    from jnas.spaces import NB201\n",
        "    from jnas.spaces import NB201\n"
        "    import numpy as np\n"
        "    from jnas._execution import initial_state\n",
    ),
    (
        "state = jax.jit(method.init)(jax.random.key(1))",
        "state = initial_state(method.init, jax.random.key(1))",
    ),
    (
        "    keys = jax.random.split(jax.random.key(1234), 4 * args.pool)\n",
        "    rng = np.random.default_rng(1234)\n",
    ),
    ("        k = keys[4 * i: 4 * i + 4]\n", ""),
    (
        "        pool.append(((jax.random.normal(k[0], shape), "
        "jax.random.randint(k[1], (args.batch,), 0, 10)),\n"
        "                     (jax.random.normal(k[2], shape), "
        "jax.random.randint(k[3], (args.batch,), 0, 10))))\n",
        "        pool.append(jax.device_put(\n"
        "            tuple((rng.standard_normal(shape, np.float32),\n"
        "                   rng.integers(0, 10, args.batch, dtype=np.int32)) for _ in range(2))))\n",
    ),
    (
        "step_keys = list(jax.random.split(jax.random.key(2), 4096))",
        "step_keys = [jax.random.wrap_key_data(d) for d in "
        "np.asarray(jax.random.key_data(jax.random.split(jax.random.key(2), 4096)))]",
    ),
    (
        "jax.jit(method.step, donate_argnums=0).lower(state, train, val, step_keys[0])",
        "oneshot.jit_step(method, donate_argnums=1).lower(step_keys[0], state, train, val)",
    ),
    (
        "compiled(state, train, val, step_keys[i % len(step_keys)])",
        "compiled(step_keys[i % len(step_keys)], state, train, val)",
    ),
)


def rewrite(path: pathlib.Path, replacements: tuple[tuple[str, str], ...]) -> None:
    """Apply `(old, new)` replacements to a copied harness file; each old form must be there."""
    text = path.read_text()
    for old, new in replacements:
        if old not in text:
            raise RuntimeError(f"{path}: expected the harness' text {old!r}; not found")
        text = text.replace(old, new)
    path.write_text(text)


# The harness' driver gives the jnas worker its own XLA_FLAGS (one thread). Extra flags go
# first in that string in the writable copy: XLA's parser ignores the flags after the bare
# `intra_op_parallelism_threads=1` there (measured: a flag appended after it had no effect).
DRIVER_FLAGS = '--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"'


def driver_flags(extra_flags: str) -> tuple[tuple[str, str], ...]:
    """The replacement putting `extra_flags` first in the jnas worker's XLA_FLAGS."""
    line = 'jenv["XLA_FLAGS"] = "'
    return ((line + DRIVER_FLAGS, f"{line}{extra_flags} {DRIVER_FLAGS}"),)


# The driver's environment for the jnas worker, in the writable copy, with the tunable added.
JNAS_ENV = "    jenv = dict(base)\n"
HUGE_PAGES = f"{_huge_pages.TUNABLE}=1"  # as the `jnas` command sets it


# `--xla-cache`: the jnas worker keeps its compiled programs where a `jnas` run does
# (`enable_compilation_cache`, from `$JNAS_XLA_CACHE`), so a second run starts warm.
XLA_CACHE = (
    (
        "    from jnas.spaces import NB201\n",
        "    from jnas.spaces import NB201\n"
        "    from jnas.commands._common import enable_compilation_cache\n"
        "    enable_compilation_cache()\n",
    ),
)


def driver_env(huge_pages: str, xla_cache: str = "") -> dict[str, str]:
    """The driver's environment: GLIBC_TUNABLES without the tunable, or with it for `both`
    (inherited by both workers; `jnas` adds it to the jnas worker's in the copied driver);
    `$JNAS_XLA_CACHE` set to `xla_cache` when given (read by the jnas worker only)."""
    env = dict(os.environ)
    if xla_cache:
        env["JNAS_XLA_CACHE"] = xla_cache
    kept = [t for t in env.pop("GLIBC_TUNABLES", "").split(":") if t and "hugetlb" not in t]
    if huge_pages == "both":
        kept.append(HUGE_PAGES)
    if kept:
        env["GLIBC_TUNABLES"] = ":".join(kept)
    return env


def run_harness(
    perf: pathlib.Path, args: argparse.Namespace, cores: str, work: pathlib.Path
) -> list[dict]:
    """One run of `side_by_side.py` in a writable copy; its JSON-lines records."""
    out = work / f"results_{cores}.jsonl"
    cmd = [
        sys.executable,
        "side_by_side.py",
        "--threads",
        "1",
        "--batch",
        str(args.batch),
        "--algos",
        args.algos,
        "--pairs",
        str(args.pairs),
        "--warmup",
        str(args.warmup),
        "--torch-python",
        args.torch_python,
        "--jax-python",
        sys.executable,
        "--tag",
        f"cores{cores}_b{args.batch}",
        "--out",
        str(out),
    ]
    pin = (
        (lambda: os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})) if cores == "1" else None
    )
    env = driver_env(args.huge_pages, args.xla_cache)
    subprocess.run(cmd, cwd=perf, check=True, preexec_fn=pin, env=env)
    return [json.loads(line) for line in out.read_text().splitlines()]


def summary(records: list[dict]) -> dict:
    """Per method: both sides' medians, the ratio, start-up and memory."""
    rows: dict[str, dict] = {}
    for r in records:
        if r.get("kind") == "startup":
            keep = (
                "import_s",
                "build_s",
                "lower_s",
                "compile_s",
                "first_call_s",
                "first_step_s",
                "time_to_first_step_s",
                "params",
            )
            rows.setdefault(r["algo"], {})[f"{r['side']}_startup"] = {
                k: r[k] for k in keep if k in r
            }
            if "torch" in r:  # the reference's step time depends on the torch version
                rows[r["algo"]]["torch"] = r["torch"]
        if r.get("kind") == "timing":
            rows.setdefault(r["algo"], {}).update(
                {
                    "peer_step_ms_median": r["peer"]["wall_ms"]["median"],
                    "jnas_step_ms_median": r["jnas"]["wall_ms"]["median"],
                    "jnas_over_reference": r["ratio_jnas_over_peer_of_medians"],
                    "jnas_over_reference_per_pair": r["ratio_per_pair"],
                    "peer_cpu_ms_median": r["peer"]["cpu_ms"]["median"],
                    "jnas_cpu_ms_median": r["jnas"]["cpu_ms"]["median"],
                    "peak_rss_mib": {side: r["mem"][side].get("VmHWM_MiB") for side in r["mem"]},
                    "alpha_finite": {
                        side: r["check"][side].get("alpha_finite") for side in r["check"]
                    },
                    "load1_start_end": [r["load1_start"][0], r["load1_end"][0]],
                    "pairs": r["pairs"],
                }
            )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument(
        "--perf",
        default=str(ROOT.parent / "shared" / "perf"),
        help="the shared harness folder (copied, never written)",
    )
    ap.add_argument(
        "--peer", required=True, help="the `.peer` folder holding the reference's model files"
    )
    ap.add_argument("--torch-python", required=True, help="a Python with torch installed")
    ap.add_argument("--algos", default="DARTS-V1,GDAS,DARTS-V2")
    ap.add_argument("--cores", default="all,1", help="settings to run: all, 1 or both")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--pairs", default="3", help="N, or per method: DARTS-V1=3,GDAS=20")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--jnas-xla-flags", default="", help="XLA flags added to the jnas side only")
    ap.add_argument(
        "--huge-pages",
        choices=("jnas", "both", "none"),
        default="jnas",
        help="glibc.malloc.hugetlb=1 for the jnas side (as the jnas command), both, or none",
    )
    ap.add_argument(
        "--retain",
        action="store_true",
        help="the jnas side keeps its per-call buffer in the heap (jnas._huge_pages.RETAIN)",
    )
    ap.add_argument(
        "--xla-cache",
        default="",
        help="a folder: the jnas worker keeps its compiled programs there, as a `jnas` run "
        "does (a second run with the same folder starts warm)",
    )
    ap.add_argument("--label", default="", help="suffix of the JSON's name")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = ap.parse_args()
    if args.jnas_xla_flags and not args.label:
        ap.error("--jnas-xla-flags: also give --label, so the default run's JSON is kept")
    for name, path in (("--perf", args.perf), ("--peer", args.peer)):
        if not pathlib.Path(path).is_dir():
            ap.error(f"{name}: expected a folder; got {path!r}")
    result = {
        "machine": {
            "cpu": cpu_name(),
            "cores": os.cpu_count(),
            "python": platform.python_version(),
        },
        "batch": args.batch,
        "jnas_extra_xla_flags": args.jnas_xla_flags,
        "huge_pages": args.huge_pages,
        "retain": args.retain,
        "xla_cache": args.xla_cache,
        "xla_cache_entries_at_start": (
            sum(1 for _ in pathlib.Path(args.xla_cache).glob("*"))
            if args.xla_cache and pathlib.Path(args.xla_cache).is_dir()
            else 0
        ),
        "settings": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        work = pathlib.Path(tmp) / "perf"
        shutil.copytree(args.perf, work)
        for path in (work, *work.iterdir()):  # the shared folder is read-only
            path.chmod(0o755 if path.is_dir() else 0o644)
        rewrite(work / "jnas_worker.py", WORKER_API)
        if args.xla_cache:
            rewrite(work / "jnas_worker.py", XLA_CACHE)
        if args.jnas_xla_flags:
            rewrite(work / "side_by_side.py", driver_flags(args.jnas_xla_flags))
        extra = ":".join(
            [HUGE_PAGES] * (args.huge_pages == "jnas") + [_huge_pages.RETAIN] * args.retain
        )
        if extra:
            tunables = f'":".join(filter(None, (base.get("GLIBC_TUNABLES"), "{extra}")))'
            jenv = JNAS_ENV.replace("dict(base)", f"dict(base, GLIBC_TUNABLES={tunables})")
            rewrite(work / "side_by_side.py", ((JNAS_ENV, jenv),))
        (work / ".peer").symlink_to(pathlib.Path(args.peer).resolve())
        for cores in args.cores.split(","):
            records = run_harness(work, args, cores, pathlib.Path(tmp))
            result["settings"][f"cores={cores}"] = summary(records)
    import jax

    result["jax"] = jax.__version__
    result["jnas_commit"] = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    label = f"_{args.label}" if args.label else ""
    path = pathlib.Path(args.out) / f"oneshot_vs_reference_cpu_b{args.batch}{label}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
