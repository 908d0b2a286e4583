"""Huge pages for XLA:CPU's per-call buffers: the `jnas` command re-executes itself with
glibc's `glibc.malloc.hugetlb=1`, which ends the per-step page faults of a fresh mapping."""

import os
import pathlib
import subprocess
import sys
import textwrap

import pytest

from jnas import _huge_pages

MADVISE = _huge_pages.thp_mode() == "madvise"
GLIBC = _huge_pages.glibc_version()
ON_HERE = MADVISE and GLIBC is not None and GLIBC >= _huge_pages.MIN_GLIBC
NEEDS = pytest.mark.skipif(
    not ON_HERE,
    reason=f"needs glibc >= 2.35 and huge pages in madvise mode "
    f"(here: glibc {GLIBC}, mode {_huge_pages.thp_mode()})",
)


def test_the_tunable_is_added_once_and_only_where_it_changes_something():
    env = {"PATH": "/bin", "GLIBC_TUNABLES": "glibc.malloc.arena_max=2"}
    got = _huge_pages.environment(env, "madvise", (2, 36))
    assert got == {
        "PATH": "/bin",
        "GLIBC_TUNABLES": "glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1",
    }
    assert env["GLIBC_TUNABLES"] == "glibc.malloc.arena_max=2"  # the caller's mapping untouched
    assert _huge_pages.environment({}, "madvise", (2, 35)) == {
        "GLIBC_TUNABLES": "glibc.malloc.hugetlb=1"
    }
    # set already: by the user (any value) or by the re-execution itself, which keeps it
    # from looping
    assert _huge_pages.environment(got, "madvise", (2, 36)) is None
    assert (
        _huge_pages.environment({"GLIBC_TUNABLES": "glibc.malloc.hugetlb=0"}, "madvise", (2, 36))
        is None
    )
    # a look-alike name is not the tunable
    assert _huge_pages.environment(
        {"GLIBC_TUNABLES": "glibc.malloc.hugetlbx=1"}, "madvise", (2, 36)
    )
    assert _huge_pages.environment({"JNAS_HUGE_PAGES": "0"}, "madvise", (2, 36)) is None
    for mode in ("always", "never", None):  # `always` has huge pages anyway
        assert _huge_pages.environment({}, mode, (2, 36)) is None
    assert _huge_pages.environment({}, "madvise", (2, 34)) is None  # no such tunable yet
    assert _huge_pages.environment({}, "madvise", None) is None  # not glibc


def test_thp_mode_reads_the_bracketed_choice(tmp_path):
    f = tmp_path / "enabled"
    f.write_text("always [madvise] never\n")
    assert _huge_pages.thp_mode(f) == "madvise"
    f.write_text("[always] madvise never\n")
    assert _huge_pages.thp_mode(f) == "always"
    assert _huge_pages.thp_mode(tmp_path / "absent") is None


def _run(script: pathlib.Path, env: dict[str, str]) -> str:
    out = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, env=env, check=True
    )
    return out.stdout


@NEEDS
def test_the_command_and_only_the_command_reexecutes_with_the_tunable(tmp_path):
    body = "import os, jnas\nprint(os.environ.get('GLIBC_TUNABLES'), os.getpid())\n"
    env = {k: v for k, v in os.environ.items() if k not in ("GLIBC_TUNABLES", "JNAS_HUGE_PAGES")}
    command = tmp_path / "jnas"  # named as the console script is
    command.write_text(body)
    other = tmp_path / "script.py"
    other.write_text(body)
    assert _run(command, env).split()[0] == "glibc.malloc.hugetlb=1"
    assert _run(other, env).split()[0] == "None"  # an importing script is left alone
    assert _run(command, {**env, "JNAS_HUGE_PAGES": "0"}).split()[0] == "None"
    mine = {**env, "GLIBC_TUNABLES": "glibc.malloc.arena_max=4"}
    assert _run(command, mine).split()[0] == "glibc.malloc.arena_max=4:glibc.malloc.hugetlb=1"


@NEEDS
def test_the_tunables_end_the_page_faults_of_xlas_per_call_buffer(tmp_path):
    # A program whose temporary buffer (128 MB) XLA:CPU allocates afresh on every call: with
    # 4 KB pages every call faults it in again (~32,800 faults); with huge pages ~65 (measured).
    script = tmp_path / "faults.py"
    script.write_text(
        textwrap.dedent(
            """
            import resource, time
            import jax, jax.numpy as jnp

            def f(x):
                y = jnp.sin(x)[None] * jnp.arange(1.0, 5.0)[:, None, None]
                return jnp.cumsum(y, axis=1).sum()

            x = jnp.ones((2048, 2048))
            compiled = jax.jit(f).lower(x).compile()
            assert compiled.memory_analysis().temp_size_in_bytes >= 100 * 2**20
            compiled(x).block_until_ready()
            faults = []
            for _ in range(8):  # a pause before each, as between the side by side's steps
                time.sleep(0.1)
                before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
                compiled(x).block_until_ready()
                faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
            print(min(faults))
            """
        )
    )
    # XLA's own defaults (the tests' XLA_FLAGS compile at -O0, another program)
    env = {k: v for k, v in os.environ.items() if k not in ("GLIBC_TUNABLES", "XLA_FLAGS")}
    plain = int(_run(script, env))
    huge = int(_run(script, {**env, "GLIBC_TUNABLES": "glibc.malloc.hugetlb=1"}))
    assert plain > 25_000, plain  # the mechanism's premise: a fresh mapping every call
    assert huge < plain / 10, (huge, plain)
    # RETAIN: the buffer stays in glibc's heap, so once the heap has room for it (a few calls:
    # other allocations land in the freed block, measured) a call touches no fresh page
    retained = int(_run(script, {**env, "GLIBC_TUNABLES": _huge_pages.RETAIN}))
    assert retained < plain / 100, (retained, plain)
