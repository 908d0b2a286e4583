"""The one run driver: units of work (epochs, chunks of steps, search rounds) over a
state, each ending with a NaN check, a JSON-lines record and an orbax checkpoint, so that
a killed run resumed with `resume=True` ends with the same state and records as an
uninterrupted one. One-shot search, meta-training, black-box search and training all run
through `run_units`.
"""

from __future__ import annotations

import pathlib
from collections.abc import Callable
from typing import Any

from jnas._execution import check_finite, initial_state
from jnas.checkpoint import RunDir, open_run

Unit = Callable[[Any, int], tuple[Any, dict, dict]]  # (state, u) -> (state, metrics, record)


def run_units(
    unit: Unit,
    *,
    units: int,
    init: Callable[[Any], Any],
    key: Any,
    out: str | pathlib.Path | None = None,
    resume: bool = False,
    on_record: Callable[[dict], None] | None = None,
    describe: Callable[[int], str] | None = None,
    on_open: Callable[[RunDir | None, int, list[dict]], None] | None = None,
    settings: dict | None = None,
    until: Callable[[dict], bool] | None = None,
) -> tuple[Any, list[dict]]:
    """Run units `start..units-1` of `unit` from `init(key)` (`jnas._execution.initial_state`:
    compiled, or op by op for a network of many draws) or from `out`'s latest
    checkpoint (`resume=True`); returns (final state, every unit's record).

    `unit(state, u) -> (state, metrics, record)`: `metrics` (arrays per step) must be
    finite, else `FloatingPointError` names the unit and step (`describe(u)` says what a
    unit is); `on_record(record)` may add fields before the record is written;
    `on_open(run_dir, start, records)` sees the run folder and the records restored before
    the first unit (side logs, running bests). `settings` (JSON-able) are stored in a fresh
    run's folder; resuming with others raises, naming the first that differs.
    `until(record)` ends the run early after the first unit whose record it accepts (a
    search that reached its target); a resumed run whose last record it accepts runs no
    more units (`units` is then an upper bound).
    """
    run, start, state, records = open_run(out, resume, init, key, settings)
    try:
        if state is None:
            state = initial_state(init, key)
        if on_open is not None:
            on_open(run, start, records)
        if until is not None and records and until(records[-1]):
            return state, records
        return _units(unit, run, start, state, records, units, on_record, describe, until)
    finally:
        if run is not None:
            run.close()


def _units(unit, run, start, state, records, units, on_record, describe, until):
    for u in range(start, units):
        state, metrics, record = unit(state, u)
        try:
            check_finite(metrics, u)
        except FloatingPointError as e:
            if describe is None:
                raise
            raise FloatingPointError(f"{describe(u)}: {e}") from None
        if on_record is not None:
            on_record(record)
        records.append(record)
        if run is not None:
            run.save(u, state, record)
        if until is not None and until(record):
            break
    return state, records
