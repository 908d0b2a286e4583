"""Transparent huge pages for XLA:CPU's per-call buffers (glibc's `glibc.malloc.hugetlb=1`).

XLA:CPU allocates a compiled program's temporary buffer afresh on every call: one large block
(the NB201 DARTS-V1 search step at batch 64: about 1.2 GB), which glibc maps fresh from the
kernel and unmaps again after the call. Where the kernel's transparent huge pages are in
`madvise` mode (Debian's and Ubuntu's default), every 4 KB page of that block then faults in,
zeroed, on its first touch: 314,000 page faults and 0.6 s of system time per DARTS-V1 step.
glibc's tunable `glibc.malloc.hugetlb=1` (glibc >= 2.35) advises huge pages on its large
blocks (`madvise(MADV_HUGEPAGE)`): about 1,000 faults a step; measured on a 2-core machine,
DARTS-V1 4.25 -> 3.7 s at batch 64 and 0.84 -> 0.67 s at batch 16, GDAS 0.43 -> 0.36 s,
exact DARTS-V2 2.45 -> 2.23 s at batch 16.

glibc reads its tunables only when a process starts, so a library cannot switch them on in
the process that imported it. The `jnas` command re-executes itself with the tunable added
(`reexec_command`, called by `import jnas` in the command's own process, before JAX loads;
off with `JNAS_HUGE_PAGES=0`); a script gets the same with
`GLIBC_TUNABLES=glibc.malloc.hugetlb=1 python script.py`.

`RETAIN` (not set by the command) keeps that buffer in glibc's heap between calls instead of
unmapping it: one arena, no mappings, no trimming. Measured on a 2-core VM whose balloon
device reports free memory to the host (free page reporting): a step that follows a pause of
a few seconds (another process's step, as in the side by side) faults the unmapped buffer
back in at the host's cost, 1.0-2.2 s of system time for the V1 step at batch 64; with
`RETAIN` none (V1 3.5-4.5 -> 2.9-3.1 s, batch 16 1.1-1.3 -> 0.65-0.70 s). Its costs: the heap
keeps its peak, and grows before it settles (smaller allocations land in a freed buffer, and
a call may take its buffer before the last one is freed: V1 at batch 16, 300 steps back to
back: peak 742 -> 1,342 MiB by the 30th step, the heap unchanged after it); the compile is
~30-40 % slower under them (V1 at batch 64 10.2 -> 14.9 s): the one arena that XLA's
compile threads then share (`arena_max=1` alone: V1 at batch 16 11.8 -> 15.4 s; the other
two alone: no change). Steps back to back pay no pause, so the command keeps glibc's
default here; `RETAIN` is for measuring.
"""

from __future__ import annotations

import os
import pathlib
import re
import sys
from collections.abc import Mapping

TUNABLE = "glibc.malloc.hugetlb"
THP_ENABLED = pathlib.Path("/sys/kernel/mm/transparent_hugepage/enabled")
MIN_GLIBC = (2, 35)  # the first glibc with `glibc.malloc.hugetlb`
RETAIN = (  # keep freed memory in the heap (see the docstring); glibc >= 2.26 tunables
    "glibc.malloc.arena_max=1:glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=68719476736"
)
COMMAND = "jnas"  # the console script's name (pyproject's [project.scripts])


def thp_mode(path: pathlib.Path = THP_ENABLED) -> str | None:
    """The kernel's transparent-huge-page mode (`always`, `madvise`, `never`), None if unknown."""
    try:
        found = re.search(r"\[(\w+)\]", path.read_text())
    except OSError:
        return None
    return found.group(1) if found else None


def glibc_version() -> tuple[int, int] | None:
    """The running C library's (major, minor) when it is glibc, else None (musl, macOS)."""
    try:
        name, version = (os.confstr("CS_GNU_LIBC_VERSION") or "").split()
        major, minor = version.split(".")[:2]
        return (int(major), int(minor)) if name == "glibc" else None
    except (ValueError, OSError, AttributeError):
        return None


def environment(
    environ: Mapping[str, str], thp: str | None, glibc: tuple[int, int] | None
) -> dict[str, str] | None:
    """`environ` with the tunable added to `GLIBC_TUNABLES`, or None where that changes
    nothing: opted out (`JNAS_HUGE_PAGES=0`), set already (by the user, or by this
    re-execution: what keeps it from looping), huge pages not in `madvise` mode (`always`
    has them anyway), or no glibc that knows the tunable."""
    if environ.get("JNAS_HUGE_PAGES", "1") == "0" or thp != "madvise":
        return None
    if glibc is None or glibc < MIN_GLIBC:
        return None
    tunables = environ.get("GLIBC_TUNABLES", "")
    if any(t.split("=")[0] == TUNABLE for t in tunables.split(":")):
        return None
    return {**environ, "GLIBC_TUNABLES": ":".join(filter(None, (tunables, f"{TUNABLE}=1")))}


def is_command() -> bool:
    """True in the `jnas` command's own process: its console script is `__main__`."""
    main = sys.modules.get("__main__")
    return os.path.basename(getattr(main, "__file__", None) or "") == COMMAND


def reexec_command() -> None:
    """In the `jnas` command's process, replace it by the same command with huge pages on
    (see the module's docstring); elsewhere, or where it would change nothing, return."""
    if not is_command():
        return
    env = environment(os.environ, thp_mode(), glibc_version())
    if env is None:
        return
    argv = [sys.executable, *sys.orig_argv[1:]]
    try:
        sys.stdout.flush()
        sys.stderr.flush()
        os.execve(sys.executable, argv, env)
    except OSError:  # cannot re-execute (a sandbox): run on without
        return
