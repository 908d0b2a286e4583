"""The compile-memory trim: jnas hands glibc's free heap pages back after a long compile."""

import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import pytest

import jnas  # noqa: F401  (installs the listener)
from jnas import _memory


def test_a_compile_reaches_the_trim_through_jaxs_own_event(monkeypatch):
    x, y = jax.block_until_ready((jnp.ones(17), jnp.ones(19)))
    calls = []
    monkeypatch.setattr(_memory, "trim", lambda: calls.append(1) or True)
    monkeypatch.setattr(_memory, "TRIM_AFTER_S", 0.0)
    assert _memory._state["installed"]
    assert _memory._state["enabled"]
    jax.jit(lambda x: jnp.sin(x) * 3.0 + 0.25).lower(x).compile()
    assert len(calls) == 1  # one backend compile, one trim
    _memory.install(False)  # switched off: the listener stays, the trim does not run
    try:
        jax.jit(lambda x: jnp.cos(x) * 5.0 + 0.75).lower(y).compile()
        assert len(calls) == 1
    finally:
        _memory.install(True)


def test_short_compiles_and_other_events_do_not_trim(monkeypatch):
    calls = []
    monkeypatch.setattr(_memory, "trim", lambda: calls.append(1) or True)
    _memory._on_event(_memory.COMPILE_EVENT, _memory.TRIM_AFTER_S / 2)
    _memory._on_event("/jax/core/compile/jaxpr_trace_duration", 100.0)
    assert calls == []
    _memory._on_event(_memory.COMPILE_EVENT, _memory.TRIM_AFTER_S)
    assert calls == [1]


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or _memory._malloc_trim() is None,
    reason="malloc_trim is glibc's (Linux)",
)
def test_trim_returns_freed_heap_pages_to_the_system():
    # 300 MB in 64 KB blocks (below glibc's mmap threshold: heap memory), every tenth kept,
    # so the freed runs sit between live blocks where free() alone never gives them back.
    script = textwrap.dedent(
        """
        from jnas import _memory

        def rss_mb():
            for line in open("/proc/self/status"):
                if line.startswith("VmRSS"):
                    return int(line.split()[1]) / 1024

        blocks = [bytearray(64 * 1024) for _ in range(4800)]
        kept = blocks[::10]
        del blocks
        before = rss_mb()
        released = _memory.trim()
        print(before, rss_mb(), released)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    )
    before, after, released = out.stdout.split()
    assert released == "True"
    assert float(before) - float(after) > 200  # of the ~270 MB freed


def test_a_bad_environment_setting_is_refused(monkeypatch):
    monkeypatch.setenv("JNAS_MALLOC_TRIM", "yes")
    with pytest.raises(ValueError, match="JNAS_MALLOC_TRIM"):
        _memory.install_from_environment()
    monkeypatch.setenv("JNAS_MALLOC_TRIM", "0")
    try:
        _memory.install_from_environment()
        assert not _memory._state["enabled"]
    finally:
        _memory.install(True)
