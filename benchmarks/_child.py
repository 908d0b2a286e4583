"""Run a benchmark's measurement in a fresh interpreter (shared by the start-up, emitter and
huge-page benchmarks: each measures a whole process, so each run needs its own)."""

from __future__ import annotations

import json
import subprocess
import sys


def run_child(code: str, argv: list[str], env: dict[str, str], marker: str, what: str) -> dict:
    """Run `code` with `argv` in a new Python under `env`; the JSON its stdout prints after
    `marker`. A failed child raises with `what` and the end of its stderr."""
    out = subprocess.run(
        [sys.executable, "-c", code, *argv], capture_output=True, text=True, env=env
    )
    if out.returncode != 0:
        raise RuntimeError(f"{what}: the child failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.split(f"{marker} ", 1)[1])
