"""Hand the compiler's scratch memory back to the operating system after each long compile.

XLA frees the memory it compiled a large program with (the NB201 one-shot steps: 0.7-2.5 GB
at their peak), but glibc's allocator keeps freed heap pages mapped, so they stay in the
process' resident set; the compiled program's buffers, large blocks, then come from fresh
mappings, and the peak resident memory is the compile's heap plus the step's buffers.
`malloc_trim(0)` after a compile returns the free pages: measured on GDAS (NB201 supernet
C=16, N=5, batch 64, 2-core CPU), peak RSS 2,000 -> 1,370 MB against the NB201 authors'
PyTorch 1,512 MB; exact DARTS-V2 7.5 -> 5.7 GB.

`import jnas` installs a listener on JAX's backend-compile event
(`/jax/core/compile/backend_compile_duration`) that trims after every compile of at least
`TRIM_AFTER_S` seconds (a trim takes milliseconds; short compiles and cache hits are left
alone). Off with `JNAS_MALLOC_TRIM=0` in the environment or `install(False)`; a no-op where
the C library has no `malloc_trim` (not glibc: macOS, musl).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
from typing import Any

import jax

COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"
TRIM_AFTER_S = 0.5  # compiles shorter than this are not followed by a trim

_state: dict[str, Any] = {"installed": False, "enabled": False}


@functools.cache
def _malloc_trim() -> Any:
    """The C library's `malloc_trim`, or None where it has none (looked up once)."""
    try:
        fn = getattr(ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6"), "malloc_trim", None)
    except OSError:
        return None
    if fn is not None:
        fn.argtypes, fn.restype = [ctypes.c_size_t], ctypes.c_int
    return fn


def trim() -> bool:
    """Return the allocator's free heap pages to the operating system now; True when
    some memory was released (False also where `malloc_trim` does not exist)."""
    fn = _malloc_trim()
    return bool(fn is not None and fn(0))


def _on_event(event: str, duration_secs: float, **kwargs: str | int) -> None:
    if _state["enabled"] and event == COMPILE_EVENT and duration_secs >= TRIM_AFTER_S:
        trim()


def install(enabled: bool = True) -> None:
    """Trim after every long compile (`enabled`), or stop doing so. Registers the
    listener once per process; `import jnas` calls this unless `JNAS_MALLOC_TRIM=0`."""
    _state["enabled"] = bool(enabled)
    if enabled and not _state["installed"]:
        jax.monitoring.register_event_duration_secs_listener(_on_event)
        _state["installed"] = True


def install_from_environment() -> None:
    """`install()` unless the environment says `JNAS_MALLOC_TRIM=0`."""
    value = os.environ.get("JNAS_MALLOC_TRIM", "1").strip()
    if value not in ("0", "1"):
        raise ValueError(f"JNAS_MALLOC_TRIM: expected '0' or '1'; got {value!r}")
    install(value == "1")
