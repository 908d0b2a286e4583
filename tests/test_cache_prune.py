"""The compile caches' size bound (`jnas._cache_prune`): over the bound the least recently
used programs go (an XLA entry with JAX's access-time file, a stored trace with its record)
down to `KEEP` of it; other files stay; a loaded trace counts as used; the `jnas` command
prunes at its start and rejects a bad bound before it claims a run folder."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import jax.numpy as jnp
import pytest

from jnas import _cache_prune, _trace_store, cli

KB = 1000


def _file(path, size: int, used: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    os.utime(path, (used, used))


def _key(name: str) -> str:
    """A sha256 in hex, as both caches name their entries."""
    return hashlib.sha256(name.encode()).hexdigest()


def _xla_name(name: str) -> str:
    return f"jit_{name}-{_key(name)}-cache"


def _xla(folder, name: str, size: int, used: float) -> None:
    _file(folder / _xla_name(name), size, used)


def _trace(folder, name: str, suffix: str, size: int, used: float) -> None:
    _file(folder / "traces" / f"{_key(name)}.{suffix}", size, used)


def _names(folder) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}


def test_prune_removes_the_least_recently_used_down_to_keep(tmp_path):
    # ten programs of 100 kB, last used at t = 1..10 (alternately XLA entries and traces)
    for t in range(1, 11):
        if t % 2:
            _xla(tmp_path, f"p{t}", 100 * KB, 1e6 + t)
        else:
            _trace(tmp_path, f"t{t}", "exported", 90 * KB, 1e6 + t)
            _trace(tmp_path, f"t{t}", "json", 10 * KB, 1e6 + t)
    # not the caches' names: never counted or removed (a user's files, a write under way)
    others = {"notes.txt", "my-cache", "traces/notes.json", "traces/run.exported"}
    others.add(f"traces/.{_key('t2')}.exported.123.abc")
    for name in others:
        _file(tmp_path / name, 500 * KB, 1.0)
    assert _cache_prune.prune(tmp_path, 1000 * KB) == []  # at the bound: nothing
    removed = _cache_prune.prune(tmp_path, 900 * KB)  # 1,000 kB over 900: down to 720
    assert [round(e.used - 1e6) for e in removed] == [1, 2, 3]
    assert sum(e.size for e in removed) == 300 * KB
    kept = set(others)  # t1-t3 gone, t4-t10 and the others kept
    kept |= {_xla_name(f"p{t}") for t in (5, 7, 9)}
    kept |= {f"traces/{_key(f't{t}')}.{s}" for t in (4, 6, 8, 10) for s in ("exported", "json")}
    assert _names(tmp_path) == kept
    assert _cache_prune.prune(tmp_path, None) == []  # no bound
    with pytest.raises(ValueError, match="`limit` must be a positive"):
        _cache_prune.prune(tmp_path, 0)


def test_an_entry_is_as_recent_as_its_latest_file(tmp_path):
    """JAX's bound writes `<key>-atime` at each read, and a trace's load touches its
    module: either keeps an old entry."""
    _xla(tmp_path, "old", 100 * KB, 100.0)
    _file(tmp_path / f"jit_old-{_key('old')}-atime", 8, 900.0)  # read at t = 900
    _xla(tmp_path, "mid", 100 * KB, 500.0)
    _trace(tmp_path, "t", "json", 10 * KB, 50.0)
    _trace(tmp_path, "t", "exported", 90 * KB, 950.0)  # loaded at t = 950
    removed = _cache_prune.prune(tmp_path, 260 * KB)  # down to 208 kB
    assert [e.files[0].name for e in removed] == [_xla_name("mid")]
    assert len(_names(tmp_path)) == 4


def _step(carry, x):
    return carry + x, {"sum": jnp.sum(carry)}


def test_a_loaded_trace_is_marked_used(tmp_path):
    args = (jnp.zeros(3), jnp.ones(3))
    _trace_store.enable(tmp_path)
    try:
        _trace_store.StoredStep(_step, "prune-toy")(*args)
        (module,) = tmp_path.glob("*.exported")
        os.utime(module, (1.0, 1.0))
        loaded = _trace_store.counts["loaded"]
        _trace_store.StoredStep(_step, "prune-toy")(*args)
        assert _trace_store.counts["loaded"] == loaded + 1
    finally:
        _trace_store.disable()
    assert module.stat().st_mtime > 1e9  # now, not t = 1


@pytest.mark.parametrize("raw", ["abc", "-1", "nan", "inf", "4G"])
def test_a_bad_bound_is_rejected_naming_the_variable(raw):
    with pytest.raises(ValueError, match=rf"`JNAS_XLA_CACHE_GB` must be .*got '{raw}'"):
        _cache_prune.limit_from_environment({"JNAS_XLA_CACHE_GB": raw})


def test_the_bound_from_the_environment():
    assert _cache_prune.limit_from_environment({}) == 4 * 2**30
    assert _cache_prune.limit_from_environment({"JNAS_XLA_CACHE_GB": " 0.5 "}) == 2**29
    assert _cache_prune.limit_from_environment({"JNAS_XLA_CACHE_GB": "0"}) is None


def test_the_command_rejects_a_bad_bound_before_claiming_its_folder(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("JNAS_XLA_CACHE_GB", "lots")
    code = cli.main(["oneshot", "rsws", "--epochs", "1", "--out", str(tmp_path / "run")])
    assert code == 2
    assert "JNAS_XLA_CACHE_GB" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_the_command_prunes_its_cache_at_the_start(tmp_path):
    """`enable_compilation_cache` (each `jnas` command's start) in a fresh process: three
    2 MB programs against a 4.19 MB bound leave the newest one (<= 0.8 of the bound)."""
    for t, name in enumerate(("a", "b", "c")):
        _xla(tmp_path, name, 2 * 10**6, 1e6 + t)
    code = "from jnas.commands._common import enable_compilation_cache as e; e()"
    env = {**os.environ, "JNAS_XLA_CACHE": str(tmp_path), "JNAS_XLA_CACHE_GB": "0.0039"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert _names(tmp_path) == {_xla_name("c")}
