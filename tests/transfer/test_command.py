"""`jnas transfer latency | warm-start`: their files and what they print, tiny settings."""

import json

import numpy as np
import pytest

from jnas import cli, transfer


@pytest.fixture(autouse=True)
def _no_disk_cache(monkeypatch, nasbench_dir):
    monkeypatch.setenv("JNAS_XLA_CACHE", "")  # cli.main would point JAX at a disk cache
    monkeypatch.setenv("JNAS_NASBENCH_DIR", str(nasbench_dir))


def test_warm_start_command(tmp_path, capsys):
    out = tmp_path / "w"
    args = ["transfer", "warm-start", "--space", "nats_size", "--target", "cifar100"]
    args += ["--no-surrogates"]  # compiled in tests/transfer/test_surrogates.py
    assert cli.main([*args, "--seeds", "4", "--portfolio", "3", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["sources"] == ["cifar10", "ImageNet16-120"]
    assert len(summary["portfolio_rows"]) == 3
    assert set(summary["searchers"]) == {
        "random search",
        "regularized evolution",
        "RS + portfolio",
        "REA + portfolio",
        "REA, bounding box",
        "RS, quantile prior",
        "REINFORCE",
        "REINFORCE, Reptile-meta-learned",
    }
    assert (out / "regret.png").stat().st_size > 1000
    printed = capsys.readouterr().out
    assert "REA + portfolio at 25% of the budget" in printed


def test_bad_target_exits_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as err:
        cli.main(["transfer", "warm-start", "--target", "mnist", "--out", str(tmp_path / "x")])
    assert err.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_latency_command_writes_a_predictor_that_loads(tmp_path, capsys):
    out = tmp_path / "l"
    args = ["transfer", "latency", "--seeds", "1", "--steps", "20", "--out", str(out)]
    assert cli.main(args) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["spearman"]) == {"help", "scratch", "flops"}
    assert len(summary["spearman"]["help"]["per_device_mean"]) == 6
    pred = transfer.load_latency_predictor(out / "predictor.npz", 30)
    assert pred.references.shape == (10,)
    assert np.isfinite(summary["spearman"]["help"]["mean"])
    assert "HELP (meta-learned)" in capsys.readouterr().out


def test_warm_start_runs_only_the_searchers_asked_and_meta_trains_nothing_else(monkeypatch):
    from jnas.recipes.transfer import run_warm_start

    def refuse(*args, **kwargs):
        raise AssertionError("the deep kernel was meta-trained for no searcher")

    monkeypatch.setattr(transfer, "meta_train_deep_kernel", refuse)
    summary = run_warm_start("nats_size", "cifar100", seeds=2, portfolio=2, only=["REINFORCE"])
    assert set(summary["searchers"]) == {"regularized evolution", "REINFORCE"}
    with pytest.raises(ValueError, match="unknown searchers"):
        run_warm_start("nats_size", "cifar100", seeds=2, only=["REINFORCE, MAML"])
