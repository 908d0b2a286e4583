"""The `jnas` command, end to end in a subprocess."""

import json
import subprocess
import sys

import pytest

from jnas import cli


def _run(*args):
    return subprocess.run([sys.executable, "-m", "jnas.cli", *args], capture_output=True,
                          text=True, timeout=600)


def test_help_lists_subcommands():
    out = _run("--help")
    assert out.returncode == 0
    assert "demo" in out.stdout
    assert "spaces" in out.stdout


def test_bad_flag_exits_2_with_one_clear_line():
    out = _run("spaces", "nb999")
    assert out.returncode == 2
    assert "invalid choice: 'nb999'" in out.stderr
    assert "Traceback" not in out.stderr


def test_spaces_list():
    out = _run("spaces", "--list")
    assert out.returncode == 0
    assert "nb201" in out.stdout
    assert "1.562e+04" in out.stdout


def test_describe_reports_the_networks_size():
    row = cli.describe("nats_size", seed=0)
    assert row["output_shape"] == [1, 10]
    assert row["params"] > 0
    assert row["arch"].count(":") == 4


@pytest.mark.slow
def test_demo_writes_every_space(tmp_path):
    out = _run("demo", "--out", str(tmp_path))
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in (tmp_path / "architectures.jsonl").read_text().splitlines()]
    assert [r["space"] for r in rows] == list(cli.SPACE_NAMES)


def test_bench_run_writes_results_and_plot(tmp_path, nasbench_dir):
    out = _run("bench", "run", "--nasbench", str(nasbench_dir), "--seeds", "20",
               "--budget", "3000", "--out", str(tmp_path))
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert [r["searcher"] for r in rows] == ["rs", "rea", "te", "ls", "reinforce"]
    assert rows[0]["num_seeds"] == 20
    assert 80 < rows[0]["cifar10/test_acc/200"]["mean"] < 95
    assert (tmp_path / "regret.png").stat().st_size > 1000
    assert "seeds" in out.stderr  # the progress bar


def test_bench_run_bad_arguments_exit_2(tmp_path):
    out = _run("bench", "run", "--seeds", "0", "--out", str(tmp_path))
    assert out.returncode == 2
    assert "--seeds must be >= 1" in out.stderr
    out = _run("bench", "run", "--nasbench", str(tmp_path / "nowhere"), "--out", str(tmp_path))
    assert out.returncode == 2
    assert "nb201_tss.npz" in out.stderr
    assert "Traceback" not in out.stderr
