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

import contextlib
import json
import os
import pathlib
import signal
import threading
from collections.abc import Callable, Iterator
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
LOCK = ".jnas-lock"
RUN_FILES = ("records.jsonl", "checkpoints", "evaluations.jsonl")


class RunLockedError(OSError):
    """Another process holds the run folder."""


def write_atomic(path: pathlib.Path, text: str | bytes) -> None:
    """Write `path` whole or not at all: a kill or a full disk mid-write leaves the previous
    content readable (write a sibling, then rename over). An error names the file."""
    path = pathlib.Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        if isinstance(text, bytes):
            tmp.write_bytes(text)
        else:
            tmp.write_text(text)
        tmp.replace(path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise _naming(e, path) from None


@contextlib.contextmanager
def _interrupts_after() -> Iterator[None]:
    """Hold Ctrl-C (SIGINT) until the block ends: a unit's record and checkpoint are
    written whole, and the interrupt lands in the next unit's computation (a kill at any
    point is still safe: resume cuts what a unit left half-written)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[tuple] = []
    previous = signal.signal(signal.SIGINT, lambda *frame: held.append(frame))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if held and callable(previous):
        previous(*held[0])


def _naming(e: OSError, path: pathlib.Path) -> OSError:
    """`e` re-raised with the file it was writing in its message (a full disk's ENOSPC
    names none)."""
    return type(e)(e.errno, f"{e.strerror or e} (writing {path})") if e.errno else e


def _lock(folder: pathlib.Path) -> Any:
    """An exclusive, non-blocking lock on `folder` held until the returned file is closed
    (or the process ends); `RunLockedError` if another process holds it."""
    import fcntl

    f = open(folder / LOCK, "a")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.close()
        raise RunLockedError(
            f"RunDir: another process is running in {folder} (it holds {folder / LOCK}); "
            "wait for it to finish or choose another folder"
        ) from None
    return f


def read_marker(folder: str | pathlib.Path) -> dict | None:
    """The mark jnas left in a run folder it started (`created`, `settings`), or None."""
    path = pathlib.Path(folder) / MARKER
    if not path.exists():
        return None
    text = path.read_text().strip()
    return json.loads(text) if text else {}


def check_settings(folder: pathlib.Path, stored: dict | None, settings: dict | None) -> None:
    """Refuse to resume a run with other settings than it started with, naming the first
    that differs (a resumed run with another objective or searcher mixes two runs)."""
    if not settings or not stored:
        return
    settings = _jsonable(settings)
    for name in sorted(set(stored) | set(settings)):
        if stored.get(name) != settings.get(name):
            raise ValueError(
                f"RunDir: {folder} was started with {name}={stored.get(name)!r}; resuming it "
                f"with {name}={settings.get(name)!r} would mix two runs' results: resume with "
                "the run's own settings or choose another folder"
            )


def _jsonable(settings: dict) -> dict:
    return json.loads(json.dumps(settings, default=str))


def _open(
    folder: pathlib.Path, fresh: bool, settings: dict | None, args: dict | None = None
) -> tuple[Any, dict]:
    """Check `folder` for a fresh run or a resume (see `RunDir`), lock it, mark it; returns
    (the held lock, the mark). `args` (all the run's arguments, the compared `settings`
    and those a resume may change) are stored as the latest launch's."""
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(f"RunDir: `out` must be a folder; got the file {folder}")
    present = [name for name in RUN_FILES if (folder / name).exists()]
    marker = read_marker(folder) if folder.exists() else None
    if fresh and present:
        raise FileExistsError(
            f"RunDir: {folder} already holds a run ({', '.join(present)}); resume it "
            "(`resume=True`, `--resume`) or choose another folder: a fresh run never "
            "deletes or overwrites an earlier one"
        )
    if present and marker is None:
        raise FileExistsError(
            f"RunDir: {folder} holds {', '.join(present)} that jnas did not write (no "
            f"{MARKER} mark); jnas will not cut or overwrite them: choose another folder"
        )
    if not fresh and marker is None:
        what = "does not exist" if not folder.exists() else "holds no jnas run"
        raise FileNotFoundError(
            f"RunDir: nothing to resume at {folder}: the folder {what} (mistyped? start a "
            "run there without resume)"
        )
    folder.mkdir(parents=True, exist_ok=True)
    lock = _lock(folder)
    try:
        if fresh:  # the folder holds no run: (re)mark it with this run's settings
            marker = marker or {"created": _now()}
            if settings is not None:
                marker["settings"] = _jsonable(settings)
        else:
            assert marker is not None
            check_settings(folder, marker.get("settings"), settings)
        if args is not None:
            marker["args"] = _jsonable(args)
        if fresh or args is not None:
            write_atomic(folder / MARKER, json.dumps(marker) + "\n")
    except BaseException:
        lock.close()
        raise
    return lock, marker


def claim(
    folder: str | pathlib.Path,
    *,
    resume: bool,
    settings: dict | None = None,
    args: dict | None = None,
) -> None:
    """Check a run folder before a long start-up (building a network, loading data): a
    fresh run's folder is free and gets marked with `settings`, a resumed one holds a run
    started with the same `settings`; raises as `RunDir` would. `args` (every argument of
    this launch, so the run can be rebuilt: `jnas.recipes.load`) are stored in the mark;
    nothing else is written."""
    lock, _ = _open(pathlib.Path(folder).absolute(), not resume, settings, args)
    lock.close()


class RunDir:
    """`DIR/records.jsonl` and `DIR/checkpoints/<unit>` of one resumable run.

    jnas never deletes or truncates what it did not write: a run folder is marked
    (`DIR/.jnas-run`, holding the run's `settings`) when jnas starts a run in it;
    `fresh=True` refuses a folder that already holds a run (resume it, or choose another
    folder); resuming (`fresh=False`) refuses a folder that does not exist or holds no
    jnas run (a mistyped path is an error, not a new run), a run started with other
    `settings` (naming the one that differs), and run files without the mark. Resuming
    cuts the records of a marked run back to its latest checkpoint, which is the resume
    protocol; every rewrite is write-then-rename. One process at a time: the folder is
    locked (`DIR/.jnas-lock`) until `close()` or the process ends.
    """

    def __init__(
        self,
        path: str | pathlib.Path,
        *,
        fresh: bool = False,
        settings: dict | None = None,
        max_to_keep: int = 2,
    ):
        import orbax.checkpoint as ocp

        self.path = pathlib.Path(path).absolute()
        self._lock, marker = _open(self.path, fresh, settings)
        try:
            self.settings = marker.get("settings")
            self.records_path = self.path / "records.jsonl"
            if not self.records_path.exists():
                self.records_path.touch()
            self._manager = ocp.CheckpointManager(
                self.path / "checkpoints",
                options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep),
            )
        except BaseException:
            self._lock.close()
            raise

    def close(self) -> None:
        """Finish pending checkpoint writes and release the folder's lock."""
        if not self._lock.closed:
            self._manager.close()
            self._lock.close()

    def __enter__(self) -> RunDir:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def restore(self, target: Any) -> tuple[int, Any, list[dict]]:
        """(units done, state or None, their records); `target` is the state's abstract shape
        (e.g. `jax.eval_shape(init, key)`). Cuts this run's records to its latest
        checkpoint (none: no records); a folder already in that state is not written."""
        import orbax.checkpoint as ocp

        latest = self._manager.latest_step()
        records = self.read_records()
        if latest is None:
            if records or self.records_path.stat().st_size:
                self._write([])
            return 0, None, []
        state = _uncommitted(self._manager.restore(latest, args=ocp.args.StandardRestore(target)))
        done = int(latest) + 1
        text = self.records_path.read_text()
        torn = bool(text) and not text.endswith("\n")  # a record cut short by a kill
        if len(records) > done or torn or text.count("\n") != len(records):
            self._write(records[:done])
        return done, state, records[:done]

    def save(self, unit: int, state: Any, record: dict) -> None:
        """Append unit `unit`'s record, then checkpoint the state after it; a failed write
        (full disk, permissions) names the file."""

        _crash(unit, "before")
        with _interrupts_after():
            self._save(unit, state, record)
        _crash(unit, "saved")

    def _save(self, unit: int, state: Any, record: dict) -> None:
        import orbax.checkpoint as ocp

        line = json.dumps(record) + "\n"
        try:
            with open(self.records_path, "a") as f:
                if _crashes_at(unit, "record"):
                    f.write(line[: len(line) // 2])
                    f.flush()
                    _crash(unit, "record")
                f.write(line)
        except OSError as e:
            raise _naming(e, self.records_path) from None
        _crash(unit, "checkpoint")
        try:
            self._manager.save(unit, args=ocp.args.StandardSave(state))
            self._manager.wait_until_finished()
        except OSError as e:
            raise _naming(e, self.path / "checkpoints" / str(unit)) from None

    def read_records(self) -> list[dict]:
        """The finished records; a last line cut short by a kill is dropped."""
        return read_jsonl(self.records_path)

    def _write(self, records: list[dict]) -> None:
        write_atomic(self.records_path, "".join(json.dumps(r) + "\n" for r in records))


def _now() -> str:
    import datetime

    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def open_run(
    out: str | pathlib.Path | None,
    resume: bool,
    init: Callable[[Any], Any],
    key: Any,
    settings: dict | None = None,
) -> tuple[RunDir | None, int, Any, list[dict]]:
    """(run dir or None, units done, state, their records) for a run that starts afresh
    (state None: the caller runs `init(key)`) or, with `resume=True`, from `out`'s latest
    checkpoint (a run started with the same `settings`; `init` gives its structure)."""
    import jax

    run, start, state, records = None, 0, None, []
    if out is not None:
        run = RunDir(out, fresh=not resume, settings=settings)
        if resume:
            start, state, records = run.restore(jax.eval_shape(init, key))
    return run, start, state, records
