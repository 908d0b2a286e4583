"""What a stored trace saves of a warm start (issue #21's goal 2: <= 5 s warm), the step
alone: the probe that measured it before the library stored its runs' steps
(`jnas._trace_store`; a run's own start: `oneshot_startup.py --path epoch`).

    python benchmarks/trace_cache_probe.py --methods rsws gdas --pairs 2 --out benchmarks/results

A warm start (`benchmarks/oneshot_startup.py`) still traces and lowers the step before the
persistent XLA cache can answer: 1-3 s of JAX's tracing, partial evaluation and
linearisation, every process. This probe stores the step once as a `jax.export` module
over its flattened arguments (the first child; a second compiles the plain step, so both
programs are in the XLA cache), then alternates fresh children with the cache warm:
"plain" traces and lowers the step as `oneshot_startup.py` does (`oneshot.jit_step`);
"stored" deserialises the module and lowers only a call of it, whose
compile the XLA cache then answers too. Phases are wall-clock seconds, each from the end of
the one before: `import`, `state` (the method, its state, host batches), `program` (trace
and lower, or deserialise and lower), `compile` (the XLA cache's load), `first_step`.
The children get the `jnas` command's environment (glibc's huge pages, as
`oneshot_startup.py`'s). Last, in this process, each method's stored call against its plain
step at C=8, N=1 (`bitwise_equal_c8_n1`). Writes `trace_cache_probe_<device>[_<label>].json`.

A stored trace is right only while everything that went into it is unchanged (jnas'
source, JAX's and its dependencies' versions, the method's whole configuration, the
arguments' shapes, JAX's settings), and a stale one runs the wrong program without a
sign: this probe's files live in a temporary folder for one run; the library's store keys
them by all of that (`jnas._trace_store`).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import tempfile
import time
from typing import Any

from _child import machine, run_child, save

from jnas import _huge_pages

PHASES = ("import", "state", "program", "compile", "first_step")

CHILD = r"""
import json, sys, time
t = {}
import jax
import numpy as np
from jax import export
from jnas import oneshot
from jnas._execution import cpu_compiler_options, initial_state
from jnas.commands._common import enable_compilation_cache
from jnas.spaces import NB201
mode, name, batch, path, here = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
sys.path.insert(0, here)
from trace_cache_probe import export_step
enable_compilation_cache()
t["import"] = time.time()
method = oneshot.REGISTRY[name].make(
    NB201(), channels=16, cells_per_stage=5, epochs=50, steps_per_epoch=391
)
state = jax.block_until_ready(initial_state(method.init, jax.random.key(0)))
rng = np.random.default_rng(1)
train = (rng.standard_normal((batch, 32, 32, 3), np.float32), rng.integers(0, 10, batch, np.int32))
val = (rng.standard_normal((batch, 32, 32, 3), np.float32), rng.integers(0, 10, batch, np.int32))
args = (jax.random.key(2), state, train, val)
leaves = jax.tree.leaves(args)
t["state"] = time.time()
if mode == "plain":
    lowered = oneshot.jit_step(method).lower(*args)
    run = lambda compiled: compiled(*args)
else:
    if mode == "export":
        with open(path, "wb") as f:
            f.write(export_step(method, args).serialize())
    with open(path, "rb") as f:
        exported = export.deserialize(bytearray(f.read()))
    options = cpu_compiler_options(method.cpu_compiler_options)
    lowered = jax.jit(exported.call, compiler_options=options).lower(*leaves)
    run = lambda compiled: compiled(*leaves)
t["program"] = time.time()
compiled = lowered.compile()
t["compile"] = time.time()
jax.block_until_ready(run(compiled))
t["first_step"] = time.time()
print("TIMES " + json.dumps(t))
"""
HERE = str(pathlib.Path(__file__).resolve().parent)


def export_step(method: Any, args: tuple) -> Any:
    """`method.step` at `args`' shapes as a `jax.export` module over the flattened
    arguments, returning the flattened outputs: the library's export
    (`jnas._trace_store.export_flat`)."""
    from jnas._trace_store import export_flat

    return export_flat(method.step, args)[0]


def _run(mode: str, name: str, batch: int, cache: str, module: str) -> dict:
    env = dict(os.environ)  # as `oneshot_startup.py`'s children: the `jnas` command's
    env = _huge_pages.environment(env, _huge_pages.thp_mode(), _huge_pages.glibc_version()) or env
    env["JNAS_XLA_CACHE"] = cache
    spawn = time.time()
    times = run_child(CHILD, [mode, name, str(batch), module, HERE], env, "TIMES", f"{name} {mode}")
    row, before = {"method": name, "mode": mode}, spawn
    for phase in PHASES:
        row[f"{phase}_s"] = round(times[phase] - before, 2)
        before = times[phase]
    row["total_s"] = round(times["first_step"] - spawn, 2)
    return row


def same_outputs(name: str) -> bool:
    """Whether the stored module's call gives the plain step's outputs bit for bit (the
    method at C=8, N=1, batch 16, in this process: a small program, the same code paths)."""
    import jax
    import numpy as np
    from jax import export

    from jnas import oneshot
    from jnas._execution import cpu_compiler_options, initial_state
    from jnas.spaces import NB201

    method = oneshot.REGISTRY[name].make(
        NB201(), channels=8, cells_per_stage=1, epochs=50, steps_per_epoch=391
    )
    rng = np.random.default_rng(1)
    batches = [
        (rng.standard_normal((16, 32, 32, 3), np.float32), rng.integers(0, 10, 16, np.int32))
        for _ in range(2)
    ]
    args = (jax.random.key(2), initial_state(method.init, jax.random.key(0)), *batches)
    leaves = jax.tree.leaves(args)
    stored = export.deserialize(export_step(method, args).serialize())
    options = cpu_compiler_options(method.cpu_compiler_options)
    outs = jax.jit(stored.call, compiler_options=options)(*leaves)
    plain = jax.tree.leaves(oneshot.jit_step(method)(*args))
    return all(
        np.array_equal(np.asarray(jax.random.key_data(a)), np.asarray(jax.random.key_data(b)))
        if jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key)
        else np.array_equal(np.asarray(a), np.asarray(b))
        for a, b in zip(plain, outs, strict=True)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--methods", nargs="+", default=["rsws", "gdas"])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--pairs", type=int, default=2)
    parser.add_argument("--out", type=pathlib.Path, default=None)
    parser.add_argument("--label", default="", help="suffix of the JSON's name")
    args = parser.parse_args()
    try:
        import flatbuffers  # noqa: F401  (jax.export's serialisation imports it)
    except ImportError:
        raise SystemExit(
            "trace_cache_probe: jax.export's serialisation needs `flatbuffers` "
            "(a jnas dependency: pip install -e . installs it)"
        ) from None
    import jax

    rows = []
    for name in args.methods:
        with tempfile.TemporaryDirectory() as cache:
            module = str(pathlib.Path(cache) / f"{name}.exported")
            for mode in ("export", "plain"):  # each program's first compile, cold
                rows.append({**_run(mode, name, args.batch, cache, module), "cache": "cold"})
                print(json.dumps(rows[-1]), flush=True)
            for _ in range(args.pairs):
                for mode in ("plain", "stored"):
                    rows.append({**_run(mode, name, args.batch, cache, module), "cache": "warm"})
                    print(json.dumps(rows[-1]), flush=True)
    summary: dict = {"bitwise_equal_c8_n1": {name: same_outputs(name) for name in args.methods}}
    print(json.dumps(summary), flush=True)
    for name in args.methods:
        for mode in ("plain", "stored"):
            mine = [
                r
                for r in rows
                if r["method"] == name and r["mode"] == mode and r["cache"] == "warm"
            ]
            summary[f"{name}_{mode}_mean_s"] = {
                key: round(sum(r[key] for r in mine) / len(mine), 2)
                for key in ("program_s", "compile_s", "total_s")
            }
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        cwd=pathlib.Path(__file__).resolve().parent,
        capture_output=True,
        text=True,
    ).stdout.strip()
    result = {
        **machine(),
        "commit": commit,
        "config": {"space": "nb201", "channels": 16, "cells_per_stage": 5, "batch": args.batch},
        "goal_s": {"warm": 5.0},
        "summary": summary,
        "rows": rows,
    }
    suffix = f"_{args.label}" if args.label else ""
    save(result, args.out, f"trace_cache_probe_{jax.default_backend()}{suffix}.json")


if __name__ == "__main__":
    main()
