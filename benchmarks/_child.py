"""Run a benchmark's measurement in a fresh interpreter (shared by the start-up, emitter and
huge-page benchmarks: each measures a whole process, so each run needs its own)."""

from __future__ import annotations

import json
import os
import pathlib
import platform
import subprocess
import sys

# A child's common start: the NB201 search supernet (C=16, N=5) of method `name`, its state,
# and one train and one validation batch of `batch` 32x32 images on the device (a timed
# step then copies nothing from the host). Expects `name` and `batch` to be defined.
SUPERNET = r"""
import jax
from jnas import oneshot
from jnas._execution import initial_state
from jnas.spaces import NB201
method = oneshot.REGISTRY[name].make(
    NB201(), channels=16, cells_per_stage=5, epochs=50, steps_per_epoch=391
)
state = jax.block_until_ready(initial_state(method.init, jax.random.key(0)))
ks = jax.random.split(jax.random.key(1), 4)
train = (jax.random.normal(ks[0], (batch, 32, 32, 3)), jax.random.randint(ks[1], (batch,), 0, 10))
val = (jax.random.normal(ks[2], (batch, 32, 32, 3)), jax.random.randint(ks[3], (batch,), 0, 10))
"""


def run_child(code: str, argv: list[str], env: dict[str, str], marker: str, what: str) -> dict:
    """Run `code` with `argv` in a new Python under `env`; the JSON its stdout prints after
    `marker`. A failed child raises with `what` and the end of its stderr."""
    out = subprocess.run(
        [sys.executable, "-c", code, *argv], capture_output=True, text=True, env=env
    )
    if out.returncode != 0:
        raise RuntimeError(f"{what}: the child failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.split(f"{marker} ", 1)[1])


def cpu_name(cpuinfo: pathlib.Path = pathlib.Path("/proc/cpuinfo")) -> str:
    """The processor's model name as Linux reports it (`model name` in /proc/cpuinfo,
    e.g. "Intel(R) Xeon(R) Processor"), else what `platform` knows. This project's VM
    changes host between sessions (an AMD EPYC until 2026-12-05's afternoon, an Intel Xeon
    that evening), and the ratios with it, so every timing names its processor."""
    try:
        for line in cpuinfo.read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and value.strip():
                return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict:
    """The head of a result file: this process' JAX device, the cores, the processor
    (`cpu_name`) and architecture, the jax version and the XLA flags its children inherit."""
    import jax

    return {
        "device": f"{jax.default_backend()}: {jax.devices()[0].device_kind}",
        "cpus": os.cpu_count(),
        "cpu": cpu_name(),
        "host": platform.machine(),
        "jax": jax.__version__,
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
    }


def save(result: dict, out: pathlib.Path | None, name: str) -> None:
    """Write `result` as `out/name` (indented JSON) and say so, or as `out` itself when it
    names a `.json` file (not a folder of that name); nothing when `out` is None."""
    if out is None:
        return
    path = out if out.suffix == ".json" else out / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {path}")
