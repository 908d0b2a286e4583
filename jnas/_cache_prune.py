"""A size bound for jnas' compile caches: the persistent XLA cache and the stored traces
beside it (`jnas._trace_store`), least recently used entries removed first.

JAX keeps every compiled program by default (`jax_compilation_cache_max_size` -1), and each
change of jnas' source or of a dependency's version gives the same runs new entries, so a
cache left alone only grows (a one-shot step is 0.1-9 MB compiled, ~0.2 MB traced). JAX's
own bound (that setting) rescans the whole folder at every write and needs an access-time
file beside each entry, which caches written without it lack; so the `jnas` command bounds
the folder once per start instead (`prune`, from `jnas.commands._common`):
`$JNAS_XLA_CACHE_GB` GiB (default 4; 0 turns the bound off). Over the bound, entries go,
least recently used first, until the folder holds at most `KEEP` of it, so that the next
starts do not prune again.

An entry is a compiled program (`<key>-cache`, and `<key>-atime` where JAX's bound wrote
one) or a stored trace (`traces/<sha256>.exported` and its record `.json`); a file named
otherwise (a user's, a write under way) is never counted or touched. Its last use is the latest access or change time of its
files: a trace's load refreshes its module's time (`touch`); a compiled program's read
updates its access time where the file system records it (Linux' default `relatime`: at
least daily), else it ages from its write. Another process reading an entry while it is
removed keeps its open file; one that misses it compiles or traces it again.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import pathlib
import re
from collections.abc import Mapping

_log = logging.getLogger("jnas")
ENV = "JNAS_XLA_CACHE_GB"
DEFAULT_GB = 4.0
KEEP = 0.8  # pruning leaves the folder at this fraction of the bound
# only names these caches write count (JAX's `<module>-<sha256>-cache`, the trace store's
# `<sha256>.exported|json`): a folder that also holds a user's files keeps them
_XLA_NAME = re.compile(r".+-[0-9a-f]{64}-cache")
_TRACE_NAME = re.compile(r"[0-9a-f]{64}\.(exported|json)")


@dataclasses.dataclass(frozen=True)
class Entry:
    """One cached program: its files (the one a reader needs first comes first), their
    bytes and its last use (seconds since the epoch)."""

    files: tuple[pathlib.Path, ...]
    size: int
    used: float


def limit_from_environment(environ: Mapping[str, str] | None = None) -> int | None:
    """The bound in bytes from `$JNAS_XLA_CACHE_GB` (GiB, default `DEFAULT_GB`); None for
    0 (no bound). A value that is not a number >= 0 raises ValueError."""
    raw = (os.environ if environ is None else environ).get(ENV, "").strip()
    if not raw:
        return int(DEFAULT_GB * 2**30)
    try:
        gib = float(raw)
    except ValueError:
        gib = math.nan
    if not math.isfinite(gib) or gib < 0:
        raise ValueError(f"`{ENV}` must be a number of GiB >= 0 (0: no bound); got {raw!r}")
    return None if gib == 0 else int(gib * 2**30)


def _stat(path: pathlib.Path) -> os.stat_result | None:
    try:
        return path.stat()
    except FileNotFoundError:  # another process removed it
        return None


def _entry(files: list[pathlib.Path]) -> Entry | None:
    stats = [(f, _stat(f)) for f in files]
    stats = [(f, s) for f, s in stats if s is not None]
    if not stats:
        return None
    used = max(max(s.st_atime, s.st_mtime) for _, s in stats)
    return Entry(tuple(f for f, _ in stats), sum(s.st_size for _, s in stats), used)


def entries(folder: str | os.PathLike) -> list[Entry]:
    """The cached programs in `folder` (an XLA cache) and its `traces/`."""
    folder = pathlib.Path(folder)
    found: list[Entry | None] = []
    if folder.is_dir():
        for path in folder.iterdir():
            if _XLA_NAME.fullmatch(path.name) and path.is_file():
                atime = path.with_name(path.name.removesuffix("-cache") + "-atime")
                found.append(_entry([path, atime]))
    traces = folder / "traces"
    if traces.is_dir():
        stems = {
            p.name.rsplit(".", 1)[0]
            for p in traces.iterdir()
            if _TRACE_NAME.fullmatch(p.name) and p.is_file()
        }
        # the record first: without it the module is never used (`jnas._trace_store`)
        found += [_entry([traces / f"{s}.json", traces / f"{s}.exported"]) for s in stems]
    return [e for e in found if e is not None]


def prune(folder: str | os.PathLike, limit: int | None) -> list[Entry]:
    """Remove the least recently used entries of `folder` while they take more than
    `limit` bytes, down to `KEEP` of it; returns the removed. `limit` None: nothing."""
    if limit is None:
        return []
    if limit <= 0:
        raise ValueError(f"prune: `limit` must be a positive number of bytes; got {limit}")
    found = entries(folder)
    total = sum(e.size for e in found)
    if total <= limit:
        return []
    removed = []
    for entry in sorted(found, key=lambda e: e.used):
        if total <= KEEP * limit:
            break
        for path in entry.files:
            path.unlink(missing_ok=True)
        total -= entry.size
        removed.append(entry)
    _log.info(
        "compile cache %s: removed %d least recently used programs (%.1f MB); %.1f MB left",
        folder,
        len(removed),
        sum(e.size for e in removed) / 1e6,
        total / 1e6,
    )
    return removed


def touch(path: pathlib.Path) -> None:
    """Mark `path` as used now (its access and change times), where the folder allows."""
    try:
        os.utime(path)
    except OSError:  # a read-only cache: it still serves, it only ages
        pass
