"""Keep XLA's "Very slow compile?" alarms off the console.

XLA's CPU compiler logs, from C++ and at error level, a four-line block whenever a
compilation runs past its alarm (`slow_operation_alarm.cc`: "Very slow compile? If you
want to file a bug, ...") and again when it ends ("The operation took ..."). jnas' first
steps compile for minutes on a laptop by design, so these blocks read as failures. XLA has
no switch for them short of hiding every error (`TF_CPP_MIN_LOG_LEVEL=3`), so the `jnas`
command routes file descriptor 2 through a pipe and a thread that drops exactly those
blocks and passes everything else through unchanged (Python's own stderr included).
`JNAS_XLA_ALARMS=1` keeps them.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
from collections.abc import Iterable, Iterator

_MARK = b"slow_operation_alarm"
_DRAINS: list = []
_RULE = b"*" * 8


def drop_alarms(lines: Iterable[bytes]) -> Iterator[bytes]:
    """`lines` without XLA's slow-operation blocks: a line naming `slow_operation_alarm`,
    then (blank lines and) a rule of asterisks, the message, and a closing rule."""
    skipping, rules = False, 0
    for line in lines:
        if _MARK in line:
            skipping, rules = True, 0
            continue
        if skipping:
            if line.strip().startswith(_RULE):
                rules += 1
                if rules == 2:
                    skipping = False
                continue
            if rules == 1 or not line.strip():  # the message, or blanks before the rule
                continue
            skipping = False  # not the block we know: keep the line
        yield line


def quiet_xla_alarms() -> None:
    """Filter this process' file descriptor 2 through `drop_alarms` (a no-op when
    `JNAS_XLA_ALARMS=1`). Call once, before XLA compiles; the filter drains at exit."""
    if os.environ.get("JNAS_XLA_ALARMS") == "1":
        return
    try:
        sys.stderr.flush()
        original = os.dup(2)
        read, write = os.pipe()
        os.dup2(write, 2)
        os.close(write)
    except OSError:  # no usable fd 2 (a closed or odd stderr): leave it as it is
        return

    def pump() -> None:
        with os.fdopen(read, "rb", buffering=0) as source:
            lines = iter(source.readline, b"")
            for line in drop_alarms(lines):
                view = memoryview(line)
                while view:  # a pipe or terminal may take part of a long line
                    view = view[os.write(original, view) :]

    thread = threading.Thread(target=pump, name="jnas-stderr", daemon=True)
    thread.start()

    def drain() -> None:
        if not thread.is_alive():
            return
        try:
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        os.dup2(original, 2)  # closes the pipe's last writer: the pump sees the end
        thread.join(timeout=5)

    atexit.register(drain)
    _DRAINS.append(drain)


def drain_stderr() -> None:
    """Flush the filter now (before `os._exit`, which skips `atexit`)."""
    while _DRAINS:
        _DRAINS.pop()()
