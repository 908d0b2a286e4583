"""The README is executable: every Python block runs on its own (a fresh interpreter, an
empty working folder) on tiny settings where the README's own would take minutes."""

import os
import pathlib
import re
import subprocess
import sys

import pytest

README = pathlib.Path(__file__).parents[1] / "README.md"
NASBENCH = pathlib.Path(os.environ.get("JNAS_NASBENCH_DIR", "../shared/nasbench")).absolute()
OMNIGLOT = NASBENCH.parent / "omniglot"

# per block (by a line it holds): the README's settings -> tiny ones, and what it needs
TINY = {
    "space.build(space.from_index(6111))": ([], None),
    "bench.simulate(": ([("num_seeds=10_000", "num_seeds=16")], NASBENCH / "nb201_tss.npz"),
    "oneshot.darts(space, order=2": (
        [  # first order: the exact second-order step is tested in tests/oneshot
            ("order=2", "order=1"),
            ("steps_per_epoch=391)", "steps_per_epoch=391, channels=4, cells_per_stage=1)"),
            ("(64, 32, 32, 3)", "(8, 32, 32, 3)"),
            ("(64,)", "(8,)"),
        ],
        None,
    ),
    "meta.meta_train(": (
        [
            ("meta.conv4(5)", "meta.conv4(5, channels=8)"),
            ("steps=1500", "steps=2"),
            ("meta_batch=16", "meta_batch=2"),
            ("../shared/omniglot", str(OMNIGLOT)),
        ],
        OMNIGLOT / "images_background_small1.zip",
    ),
    'jnas.load("out/sinusoid")': ([], None),
}


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README.read_text(), flags=re.S)


def test_every_python_block_is_covered():
    blocks = _blocks("python")
    assert len(blocks) == len(TINY)
    for marker in TINY:
        assert sum(marker in b for b in blocks) == 1, marker


def _run(code: str, cwd: pathlib.Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "JNAS_NASBENCH_DIR": str(NASBENCH), "JNAS_XLA_CACHE": ""}
    return subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )


@pytest.mark.parametrize("marker", list(TINY))
def test_the_block_runs_on_its_own(marker, tmp_path):
    (block,) = [b for b in _blocks("python") if marker in b]
    replacements, needs = TINY[marker]
    if needs is not None and not needs.exists():
        pytest.skip(f"needs {needs}")
    for old, new in replacements:
        assert old in block, old
        block = block.replace(old, new)
    if marker.startswith("jnas.load"):  # first the shell block that makes the run folder
        (command,) = [b for b in _blocks("bash") if "--out out/sinusoid" in b]
        args = command.split()[1:]
        args[args.index("--steps") + 1] = "4"
        made = _run(f"from jnas import cli; cli.main({args!r})", tmp_path)
        assert made.returncode == 0, made.stderr
    out = _run(block, tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
