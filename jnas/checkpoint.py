"""Resumable runs: orbax checkpoints of a state pytree plus append-only JSON-lines records.

A run writes one record and one checkpoint per unit of work (an epoch, a `tell`). On
resume the latest checkpoint is restored and the records are cut to the units it
contains, so a run killed at any point ends with the records of an uninterrupted one:
no finished unit is lost, none is repeated.

Fault injection (for the resume tests): `JNAS_CRASH_AT=UNIT:POINT[,UNIT:POINT...]`
SIGKILLs the process at the first listed point it reaches in a unit's save, so a test kills a run exactly where it means to,
whatever the machine's speed. Points: `before` (the unit computed, nothing written: a
kill inside the step), `record` (half the record line written), `checkpoint` (the record
written, no checkpoint yet), `saved` (both written).
"""

from __future__ import annotations

import json
import os
import pathlib
import signal
from collections.abc import Callable
from typing import Any


def read_jsonl(path: pathlib.Path) -> list[dict]:
    """The complete lines of a JSON-lines file (none if it is absent); a last line cut
    short by a kill (no trailing newline) is dropped."""
    if not path.exists():
        return []
    lines = path.read_text().split("\n")[:-1]  # the part after the last newline is torn
    return [json.loads(line) for line in lines if line.strip()]


CRASH_POINTS = ("before", "record", "checkpoint", "saved")


def _crashes_at(unit: int, point: str) -> bool:
    return f"{unit}:{point}" in os.environ.get("JNAS_CRASH_AT", "").split(",")


def _crash(unit: int, point: str) -> None:
    """SIGKILL this process when `JNAS_CRASH_AT` names this unit and point."""
    if _crashes_at(unit, point):
        os.kill(os.getpid(), signal.SIGKILL)


def _uncommitted(tree: Any) -> Any:
    """`tree` with its single-device arrays as a fresh run holds them: orbax restores arrays
    committed to a device, and a jitted step given committed arguments is another program
    than the one a fresh run compiled (and cached on disk), so every resume compiled the
    step again (an 8-epoch DARTS resume: 61 s instead of 21 s)."""
    import jax
    import numpy as np

    def leaf(x: Any) -> Any:
        if not isinstance(x, jax.Array) or len(x.sharding.device_set) != 1:
            return x
        if jax.numpy.issubdtype(x.dtype, jax.dtypes.prng_key):
            return jax.random.wrap_key_data(
                leaf(jax.random.key_data(x)), impl=jax.random.key_impl(x)
            )
        return jax.numpy.asarray(np.asarray(x))

    return jax.tree.map(leaf, tree)


MARKER = ".jnas-run"
RUN_FILES = ("records.jsonl", "checkpoints", "evaluations.jsonl")


class RunDir:
    """`DIR/records.jsonl` and `DIR/checkpoints/<unit>` of one resumable run.

    jnas never deletes or truncates what it did not write: a run folder is marked
    (`DIR/.jnas-run`) when jnas starts a run in it; `fresh=True` refuses a folder that
    already holds a run (resume it, or choose another folder), and resuming refuses a
    folder holding run files without the mark. Resuming cuts the records of a marked run
    back to its latest checkpoint, which is the resume protocol.
    """

    def __init__(self, path: str | pathlib.Path, *, fresh: bool = False, max_to_keep: int = 2):
        import orbax.checkpoint as ocp

        self.path = pathlib.Path(path).absolute()
        if self.path.exists() and not self.path.is_dir():
            raise NotADirectoryError(f"RunDir: `out` must be a folder; got the file {self.path}")
        present = [name for name in RUN_FILES if (self.path / name).exists()]
        marked = (self.path / MARKER).exists()
        if fresh and present:
            raise FileExistsError(
                f"RunDir: {self.path} already holds a run ({', '.join(present)}); resume it "
                "(`resume=True`, `--resume`) or choose another folder: a fresh run never "
                "deletes or overwrites an earlier one"
            )
        if present and not marked:
            raise FileExistsError(
                f"RunDir: {self.path} holds {', '.join(present)} that jnas did not write (no "
                f"{MARKER} mark); jnas will not cut or overwrite them: choose another folder"
            )
        self.path.mkdir(parents=True, exist_ok=True)
        if not marked:
            (self.path / MARKER).write_text(json.dumps({"created": _now()}) + "\n")
        self.records_path = self.path / "records.jsonl"
        if not self.records_path.exists():
            self.records_path.touch()
        self._manager = ocp.CheckpointManager(
            self.path / "checkpoints", options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep)
        )

    def restore(self, target: Any) -> tuple[int, Any, list[dict]]:
        """(units done, state or None, their records); `target` is the state's abstract shape
        (e.g. `jax.eval_shape(init, key)`). Cuts this run's records to its latest
        checkpoint (none: no records)."""
        import orbax.checkpoint as ocp

        latest = self._manager.latest_step()
        if latest is None:
            self._write([])
            return 0, None, []
        state = _uncommitted(self._manager.restore(latest, args=ocp.args.StandardRestore(target)))
        done = int(latest) + 1
        records = self.read_records()[:done]
        self._write(records)
        return done, state, records

    def save(self, unit: int, state: Any, record: dict) -> None:
        """Append unit `unit`'s record, then checkpoint the state after it."""
        import orbax.checkpoint as ocp

        _crash(unit, "before")
        line = json.dumps(record) + "\n"
        with open(self.records_path, "a") as f:
            if _crashes_at(unit, "record"):
                f.write(line[: len(line) // 2])
                f.flush()
                _crash(unit, "record")
            f.write(line)
        _crash(unit, "checkpoint")
        self._manager.save(unit, args=ocp.args.StandardSave(state))
        self._manager.wait_until_finished()
        _crash(unit, "saved")

    def read_records(self) -> list[dict]:
        """The finished records; a last line cut short by a kill is dropped."""
        return read_jsonl(self.records_path)

    def _write(self, records: list[dict]) -> None:
        self.records_path.write_text("".join(json.dumps(r) + "\n" for r in records))


def _now() -> str:
    import datetime

    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def open_run(
    out: str | pathlib.Path | None, resume: bool, init: Callable[[Any], Any], key: Any
) -> tuple[RunDir | None, int, Any, list[dict]]:
    """(run dir or None, units done, state, their records) for a run that starts afresh
    with `jit(init)(key)` or, with `resume=True`, from `out`'s latest checkpoint."""
    import jax

    run, start, state, records = None, 0, None, []
    if out is not None:
        run = RunDir(out, fresh=not resume)
        if resume:
            start, state, records = run.restore(jax.eval_shape(init, key))
    if state is None:
        state = jax.jit(init)(key)
    return run, start, state, records
