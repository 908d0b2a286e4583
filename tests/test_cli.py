"""The `jnas` command end to end: in this process (`cli.main`) or, where the console
process itself is what is tested (kills, Ctrl-C, XLA flags), in a subprocess."""

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from jnas import cli
from jnas.checkpoint import read_jsonl


def _run(*args, env=None, optimize=False, process=False):
    """`jnas ARGS`: in this process (`cli.main`, stdout and stderr captured) unless the
    test needs a process of its own (`process=True`, its own `env`, or `optimize`). The
    suite's LLVM -O0 (conftest) halves compile but slows the steps: a test that runs many
    epochs asks for XLA's optimizer in a subprocess (`optimize=True`; an 8-epoch DARTS
    search: 59 s at -O0, 23 s at -O2 with its compiled programs cached)."""
    if not (process or optimize or env is not None):
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = cli.main([str(a) for a in args])
            except SystemExit as exit:  # argparse's errors and --help
                code = exit.code
        return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())
    env = dict(os.environ if env is None else env)
    if optimize:
        flags = env.get("XLA_FLAGS", "").replace("--xla_backend_optimization_level=0", "")
        env["XLA_FLAGS"] = " ".join(flags.split())
    return subprocess.run(
        [sys.executable, "-m", "jnas.cli", *args],
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
    )


def _records(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def _files(folder):
    """Every file under `folder` with its bytes: equal before and after means nothing written."""
    return {p: p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _main(capsys, *args):
    """`jnas ARGS` in this process: (exit code, stdout, stderr)."""
    try:
        code = cli.main([str(a) for a in args])
    except SystemExit as exit:  # argparse's errors
        code = exit.code
    out = capsys.readouterr()
    return code, out.out, out.err


def test_help_lists_subcommands():
    out = _run("--help", process=True)
    assert out.returncode == 0
    for command in ("demo", "oneshot", "train", "spaces", "bench", "meta"):
        assert command in out.stdout
    out = _run("oneshot", "--help")
    assert out.returncode == 0
    assert "darts-v1" in out.stdout
    assert "--resume" in out.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("spaces", "nb999"), "invalid choice: 'nb999'"),
        (("oneshot", "darts-v3"), "invalid choice: 'darts-v3'"),
        (("oneshot", "gdas", "--epochs", "0"), "must be an integer >= 1"),
        (("train", "|bogus~0|"), "error"),
        (("meta", "protonet", "--dataset", "sinusoid"), "protonet needs image tasks"),
        (("meta", "maml", "--omniglot", "/nonexistent"), "/nonexistent/images_background_small1"),
        (
            ("oneshot", "gdas", "--dataset", "cifar10", "--data-dir", "/nonexistent/tfds"),
            "not prepared in '/nonexistent/tfds'",
        ),
        (("oneshot", "gdas", "--resume"), "--resume needs --out"),
        (("oneshot", "enas", "--alpha-lr", "0.01"), "'enas' has no architecture parameters"),
        (("oneshot", "gdas", "--devices", "3"), "--batch-size 64 and --devices 3"),
        (("demo", "--alpha-lr", "0"), "must be a finite number > 0"),
        (("search", "rea", "--async"), "--async needs parallel workers"),
        (("search", "rs", "--workers", "2", "--objective", "table"), "parallelise training"),
        (("estimate", "--proxy", "flops"), "invalid choice: 'flops'"),
        (("estimate", "--cells", "-1", "--out", "/tmp/jnas-estimate-bad"), "--cells must be >= 0"),
    ],
)
def test_bad_flags_exit_2_with_one_clear_line(args, message, capsys, monkeypatch, tmp_path):
    """In this process (`cli.main`, the console script's own function: an exception it
    let through would fail the test); the console's process boundary is checked below."""
    monkeypatch.chdir(tmp_path)  # a run without --out gets out/<command>/... here
    try:
        code = cli.main(list(args))
    except SystemExit as exit:  # argparse's errors
        code = exit.code
    err = capsys.readouterr().err
    assert code == 2, err
    assert message in err
    assert sum("error" in line for line in err.splitlines()) == 1  # usage, then one line
    assert not list(tmp_path.rglob("*"))  # bad input leaves nothing behind


def test_bad_input_in_a_console_process_is_one_line_and_exit_2():
    out = _run("oneshot", "gdas", "--epochs", "0", process=True)
    assert out.returncode == 2, out.stderr
    assert "must be an integer >= 1" in out.stderr
    assert "Traceback" not in out.stderr
    out = _run("train", "|bogus~0|", "--out", "/nonexistent-jnas/run", process=True)
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr


def test_spaces_list(capsys):
    code, out, _ = _main(capsys, "spaces", "--list")
    assert code == 0
    assert "nb201" in out
    assert "1.562e+04" in out


def test_describe_reports_the_networks_size():
    row = cli.describe("nats_size", seed=0)
    assert row["output_shape"] == [1, 10]
    assert row["params"] > 0
    assert row["arch"].count(":") == 4


@pytest.mark.parametrize(
    "reference",
    [
        pytest.param(False, id="no-reference"),
        # the reference cell's training: another cell's compile, ~40 s
        pytest.param(True, id="reference", marks=pytest.mark.slow),
    ],
)
def test_demo_searches_trains_and_uses_the_table(tmp_path, nasbench_dir, reference):
    out = _run(
        "demo",
        "--out",
        str(tmp_path),
        "--epochs",
        "2",
        "--train-epochs",
        "3",
        "--seeds",
        "10",
        "--nasbench",
        str(nasbench_dir),
        "--reference" if reference else "--no-reference",
        optimize=True,  # 3 training epochs at -O0 outlast the compile they save
    )
    assert out.returncode == 0, out.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["train"]["test_acc"] > 0.5  # 3 epochs on the digits
    assert set(summary["search"]["nb201"]) >= {"cifar10/test_acc/200", "cifar100/test_acc/200"}
    assert set(summary["table_search"]) == {"random search", "regularized evolution"}
    for name in ("search/alpha.png", "search/cell.png", "regret.png"):
        assert (tmp_path / name).stat().st_size > 5000, name
    assert len(_records(tmp_path / "train" / "records.jsonl")) == 3
    assert len(_records(tmp_path / "search" / "records.jsonl")) == 2
    assert "found cell" in out.stdout
    assert "epochs" in out.stderr  # progress bars
    assert "compiling first" in out.stdout  # the silence is announced
    assert "α after the search: op weights" in out.stdout
    from jnas import bench

    col = np.asarray(bench.load_nb201(nasbench_dir).column("cifar10", "test_acc", 200))
    found = summary["search"]["nb201"]["cifar10/test_acc/200"]
    want = 100 * np.mean(col[~np.isnan(col)] < found)
    assert summary["percentile_cifar10"] == pytest.approx(want, abs=0.01)
    assert f"beats {want:.1f}% of the 15,625 NB201 cells" in out.stdout
    # α moves: ~20 α steps at the demo's 1e-2 spread the op weights by > 0.03; at NB201's
    # 3e-4 they would stay within 0.002 of uniform (0.2)
    alpha = np.asarray(_records(tmp_path / "search" / "records.jsonl")[-1]["alpha"])
    weights = np.exp(alpha) / np.exp(alpha).sum(-1, keepdims=True)
    assert weights.max() - weights.min() > 0.03
    assert summary["search"]["alpha_lr"] == pytest.approx(1e-2)
    assert "the supernet learned: training accuracy" in out.stdout
    if not reference:
        assert "reference" not in summary
        assert not (tmp_path / "reference").exists()
        return
    # the reference: the table's best CIFAR-10 cell (by a NumPy argmax), trained alike
    best = bench.load_nb201(nasbench_dir).space
    assert summary["reference"]["arch"] == (
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|"
        "nor_conv_1x1~2|"
    )
    assert int(np.nanargmax(col)) == int(best.index(best.from_string(summary["reference"]["arch"])))
    assert summary["reference"]["test_acc"] > 0.5
    assert len(_records(tmp_path / "reference" / "records.jsonl")) == 3
    assert "trained alike on the digits" in out.stdout


# Each part runs by default elsewhere: `jnas oneshot gdas` searching, loaded, used and left
# unwritten (test_oneshot_command_searches_recurrent_cells_...), `jnas train` then
# `jnas.load` giving the summary's accuracy and writing nothing (test_train_and_search_
# commands_on_other_spaces), the search and training recipes on the digits in the demo; 73 s
@pytest.mark.slow
def test_oneshot_and_train_commands(tmp_path):
    out = _run(
        "oneshot",
        "gdas",
        "--epochs",
        "2",
        "--channels",
        "4",
        "--cells",
        "1",
        "--batch-size",
        "128",
        "--out",
        str(tmp_path / "s"),
    )
    assert out.returncode == 0, out.stderr
    records = _records(tmp_path / "s" / "records.jsonl")
    assert [r["epoch"] for r in records] == [0, 1]
    assert records[0]["tau"] == pytest.approx(10.0)
    arch = records[-1]["arch"]
    out = _run(
        "train",
        arch,
        "--epochs",
        "2",
        "--channels",
        "4",
        "--cells",
        "1",
        "--out",
        str(tmp_path / "t"),
    )
    assert out.returncode == 0, out.stderr
    assert "test accuracy" in out.stdout
    assert json.loads((tmp_path / "t" / "summary.json").read_text())["arch"] == arch
    # both runs load to be used (jnas.load), reading only
    import jax

    import jnas
    from jnas import data
    from jnas.spaces import NB201

    before = _files(tmp_path)
    search = jnas.load(tmp_path / "s")
    assert (search.command, search.units) == ("oneshot", 2)
    assert NB201().to_string(search.arch) == arch
    test = data.load_dataset("digits", jax.random.split(jax.random.key(0), 3)[0])["test"]
    assert search.logits(test.x[:5]).shape == (5, 10)
    net = jnas.load(tmp_path / "t")
    acc = float(np.mean(np.argmax(net.logits(test.x), -1) == np.asarray(test.y)))
    assert acc == pytest.approx(net.summary["test_acc"], abs=1e-6)  # the trained weights
    assert _files(tmp_path) == before


def test_a_repeated_oneshot_run_loads_its_stored_step(tmp_path):
    """The `jnas` command stores a one-shot run's step program traced beside the XLA cache
    (`jnas._trace_store`); a second process finds it (the entry is not written again) and
    ends with the same records (a key that moved between processes would trace again)."""
    env = {**os.environ, "JNAS_XLA_CACHE": str(tmp_path / "xla")}
    args = ("oneshot", "rsws", "--epochs", "1", "--channels", "4", "--cells", "1")
    first = _run(*args, "--out", tmp_path / "a", env=env)
    assert first.returncode == 0, first.stderr
    traces = tmp_path / "xla" / "traces"
    (module,) = traces.glob("*.exported")
    record = module.with_suffix(".json")
    written = module.stat().st_ino, record.stat().st_mtime_ns, record.stat().st_ino
    second = _run(*args, "--out", tmp_path / "b", env=env)
    assert second.returncode == 0, second.stderr
    # a write renames a new file into place; a load only touches the module (its last use)
    assert (module.stat().st_ino, record.stat().st_mtime_ns, record.stat().st_ino) == written
    assert len(list(traces.iterdir())) == 2  # the module and its record, nothing else
    assert _records(tmp_path / "b" / "records.jsonl") == _records(tmp_path / "a" / "records.jsonl")


def test_oneshot_command_splits_its_batches_over_devices(tmp_path, capsys):
    """`--devices 2`: the search runs data parallel (`jnas.oneshot.search`'s mesh, tested
    there against one device); in this process JAX has started with the suite's 8 CPU
    devices, so the command takes 2 of them (a fresh process asks JAX for 2)."""
    import jax

    assert jax.device_count() == 8  # started: the command cannot change the count
    code, out, err = _main(
        capsys, "oneshot", "darts-v1", "--devices", "2", "--epochs", "1", "--channels", "4",
        "--batch-size", "64", "--out", tmp_path / "run",
    )  # fmt: skip
    assert code == 0, err
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["devices"] == 2
    assert "derived architecture" in out
    code, _, err = _main(capsys, "oneshot", "darts-v1", "--devices", "16", "--out", tmp_path / "x")
    assert code == 2
    assert "expected at most the 8 cpu device(s)" in err


def test_a_run_into_a_folder_holding_a_run_exits_2_and_touches_nothing(tmp_path, capsys):
    (tmp_path / "records.jsonl").write_text('{"mine": 1}\n')
    for resume in ([], ["--resume"]):
        code, _, err = _main(
            capsys, "train", "|nor_conv_3x3~0|+|skip_connect~0|none~1|+|none~0|none~1|none~2|",
            "--epochs", "1", "--channels", "4", "--cells", "1", "--out", tmp_path, *resume,
        )  # fmt: skip
        assert code == 2, err
        assert ("already holds a run" if not resume else "did not write") in err
    assert (tmp_path / "records.jsonl").read_text() == '{"mine": 1}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["records.jsonl"]


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(
            ["oneshot", "darts-v1", "--epochs", "8", "--channels", "4", "--batch-size", "128"],
            id="oneshot-search",
            # the same run driver as train-streamed (kill points, cut, resume); 2 min
            marks=pytest.mark.slow,
        ),
        pytest.param(
            [
                "train",
                "|nor_conv_1x1~0|+|skip_connect~0|none~1|+|none~0|none~1|skip_connect~2|",
                *("--epochs", "7", "--channels", "4", "--cells", "1", "--batch-size", "256"),
                "--stream",
            ],
            id="train-streamed",
        ),
    ],
)
def test_killed_run_resumes_to_the_records_of_an_uninterrupted_run(tmp_path, args):
    """SIGKILL a run at chosen points (`JNAS_CRASH_AT`: inside a step, mid-record, between
    the record and the checkpoint, after both), resume each time; the final records equal
    an uninterrupted run's: nothing lost, nothing repeated."""
    env = {**os.environ, "JNAS_XLA_CACHE": str(tmp_path / "xla")}
    env.pop("JNAS_CRASH_AT", None)
    done = _run(*args, "--out", str(tmp_path / "full"), env=env, optimize=True)
    assert done.returncode == 0, done.stderr
    full = _records(tmp_path / "full" / "records.jsonl")
    if args[0] == "oneshot":  # its step program stored traced; the resumed runs load it
        assert len(list((tmp_path / "xla" / "traces").glob("*.exported"))) == 1
    cut = tmp_path / "cut"
    # (kill points, finished records left): a torn record line; a record without its
    # checkpoint (resume must cut it and redo the unit: a duplicate record would break
    # the final equality); a kill after both; then a unit checkpointed before must be
    # skipped: `3:before` would hit a run that restarts from scratch, a resumed one dies
    # at 6 (the kill inside a step is `before`: nothing of the unit written yet)
    kills = [("2:record", 2), ("2:checkpoint", 3), ("3:saved", 4), ("3:before,6:record", 6)]
    for i, (points, left) in enumerate(kills):
        out = _run(
            *args,
            "--out",
            str(cut),
            *(["--resume"] if i else []),
            env={**env, "JNAS_CRASH_AT": points},
            optimize=True,
        )
        assert out.returncode == -signal.SIGKILL, (points, out.stderr)
        assert len(read_jsonl(cut / "records.jsonl")) == left, points
    final = _run(*args, "--out", str(cut), "--resume", env=env, optimize=True)
    assert final.returncode == 0, final.stderr
    assert _records(cut / "records.jsonl") == full


def test_bench_run_writes_results_and_plot(tmp_path, nasbench_dir):
    out = _run(
        "bench",
        "run",
        "--nasbench",
        str(nasbench_dir),
        "--seeds",
        "20",
        "--budget",
        "3000",
        "--out",
        str(tmp_path),
    )
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert [r["searcher"] for r in rows] == ["rs", "rea", "te", "ls", "reinforce"]
    assert rows[0]["num_seeds"] == 20
    assert 80 < rows[0]["cifar10/test_acc/200"]["mean"] < 95
    assert (tmp_path / "regret.png").stat().st_size > 1000
    assert "seeds" in out.stderr  # the progress bar
    values = rows[1]["cifar10/test_acc/200"]["values"]  # per seed, for tests across searchers
    assert len(values) == 20
    assert np.mean(values) == pytest.approx(rows[1]["cifar10/test_acc/200"]["mean"], abs=1e-3)
    assert "Welch's t test vs rs on cifar10/test_acc/200" in out.stdout
    assert "  rea: t = " in out.stdout
    short = ["bench", "run", "--nasbench", str(nasbench_dir), "--seeds", "4", "--budget", "10"]
    again = _run(*short, "--searcher", "rs", "--out", str(tmp_path))
    assert again.returncode == 2  # an earlier bench run is never overwritten
    assert "holds an earlier bench run" in again.stderr
    # a budget too short for any result: a summary and a plot, not a log-scale crash
    empty = _run(*short, "--searcher", "rs", "rea", "--out", str(tmp_path / "short"))
    assert empty.returncode == 0, empty.stderr
    assert (tmp_path / "short" / "regret.png").stat().st_size > 1000


def test_bench_pareto_judges_nsga2_by_hypervolume_against_the_published_front(
    tmp_path, nasbench_dir
):
    args = ["bench", "pareto", "--nasbench", str(nasbench_dir), "--dataset", "cifar100"]
    args += ["--seeds", "3", "--generations", "2", "--population", "8"]
    out = _run(*args, "--out", str(tmp_path))
    assert out.returncode == 0, out.stderr
    result = json.loads((tmp_path / "pareto.json").read_text())
    assert result["evaluations"] == 16
    # the denominator, the table's own front, is the published one (pareto_fronts.json,
    # LOMONAS' data) at the same reference point
    from jnas import bench

    published = json.loads((nasbench_dir / "pareto_fronts.json").read_text())
    front = np.asarray(published["NAS201_CIFAR-100|TestAcc|FLOPs"]["points"])
    ref = tuple(result["reference_point"])
    want = bench.hypervolume(front[:, 0], front[:, 1], ref)
    assert result["table_front_hv"] == pytest.approx(want, rel=1e-3)
    for name in ("nsga2", "random search"):
        ratios = result["hv_ratio"][name]["values"]
        assert len(ratios) == 3
        assert all(0 < r <= 1 for r in ratios)
    assert "nsga2: " in out.stdout
    assert "random search: " in out.stdout
    again = _run(*args, "--out", str(tmp_path))
    assert again.returncode == 2
    assert "holds an earlier run" in again.stderr
    # the single-objective commands do not offer it: it tells fitness vectors
    refused = _run("bench", "run", "--searcher", "nsga2", "--out", str(tmp_path / "x"))
    assert refused.returncode == 2
    assert "invalid choice: 'nsga2'" in refused.stderr


def test_bench_run_on_nas_bench_nlp_with_resumed_multi_fidelity(tmp_path, nasbench_dir):
    out = _run(
        "bench",
        "run",
        "--table",
        "nbnlp",
        "--nasbench",
        str(nasbench_dir),
        "--searcher",
        "rs",
        "hyperband",
        "--seeds",
        "10",
        "--out",
        str(tmp_path),
    )
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert [r["searcher"] for r in rows] == ["rs", "hyperband"]
    assert "resumed runs" in rows[1]["fitness"]  # promotions continue their runs
    assert 96.4 < rows[0]["wikitext2/valid_ppl/50"]["mean"] < 300  # the best cell: 96.49
    assert rows[1]["evals_mean"] > 5 * rows[0]["evals_mean"]  # cheap low-fidelity queries
    assert (tmp_path / "regret.png").stat().st_size > 1000


def test_bench_run_bad_arguments_exit_2(tmp_path, capsys):
    code, _, err = _main(capsys, "bench", "run", "--seeds", "0", "--out", tmp_path)
    assert code == 2
    assert "--seeds must be >= 1" in err
    code, _, err = _main(
        capsys, "bench", "run", "--nasbench", tmp_path / "nowhere", "--out", tmp_path
    )
    assert code == 2
    assert "nb201_tss.npz" in err
    code, _, err = _main(
        capsys, "bench", "run", "--table", "nbnlp", "--epochs", "12", "--out", tmp_path
    )
    assert code == 2
    assert "drop --dataset and --epochs" in err
    code, _, err = _main(
        capsys, "bench", "run", "--table", "nb301", "--epochs", "12", "--out", tmp_path
    )
    assert code == 2
    assert "100-epoch accuracies only" in err


def test_search_command_on_the_table_and_by_training(tmp_path, nasbench_dir, capsys):
    code, _, err = _main(
        capsys, "search", "rea", "--objective", "table", "--evaluations", "12",
        "--nasbench", nasbench_dir, "--out", tmp_path / "t",
    )  # fmt: skip
    assert code == 0, err
    summary = json.loads((tmp_path / "t" / "summary.json").read_text())
    assert summary["evaluations"] == 12
    assert "cifar10/test_acc/200" in summary["nb201"]
    assert (tmp_path / "t" / "cell.png").read_bytes().startswith(b"\x89PNG")
    # a resume must repeat the run's settings (a longer search is allowed)
    records = (tmp_path / "t" / "records.jsonl").read_text()
    table = ("--nasbench", nasbench_dir, "--out", tmp_path / "t", "--resume")
    code, _, err = _main(
        capsys, "search", "rea", "--objective", "train", "--evaluations", "12", *table
    )
    assert code == 2
    assert "started with objective='table'; resuming it with objective='train'" in err
    assert (tmp_path / "t" / "records.jsonl").read_text() == records
    code, _, err = _main(
        capsys, "search", "rea", "--objective", "table", "--evaluations", "20", *table
    )
    assert code == 0, err
    assert "\r" not in err  # a log gets lines, not a redrawn bar
    assert "13/20" in err
    assert " 1/20" not in err
    assert json.loads((tmp_path / "t" / "summary.json").read_text())["evaluations"] == 20
    code, _, err = _main(capsys, "search", "rea", "--out", tmp_path / "typo", "--resume")
    assert code == 2
    assert "nothing to resume" in err
    assert "does not exist" in err
    assert not (tmp_path / "typo").exists()
    code, _, err = _main(
        capsys, "search", "rs", "--evaluations", "2", "--epochs", "1", "--channels", "4",
        "--out", tmp_path / "r",
    )  # fmt: skip
    assert code == 0, err
    evaluations = _records(tmp_path / "r" / "evaluations.jsonl")
    assert len(evaluations) == 2
    assert all(0 <= e["fitness"] <= 100 for e in evaluations)


@pytest.mark.slow  # two worker processes each compile the training; the executor is tested fast
def test_search_command_trains_candidates_in_parallel_asynchronously(tmp_path):
    args = ["search", "rs", "--evaluations", "2", "--epochs", "1", "--channels", "4"]
    out = _run(*args, "--workers", "2", "--async", "--out", str(tmp_path / "r"))
    assert out.returncode == 0, out.stderr
    evaluations = _records(tmp_path / "r" / "evaluations.jsonl")
    assert sorted(e["ask"] for e in evaluations) == [0, 1]
    assert all(0 <= e["fitness"] <= 100 for e in evaluations)
    # jnas.load rebuilds the asynchronous carry: the searcher state and the two asks
    # still in flight (numbers 2 and 3: each finished unit asked the next)
    import jnas

    run = jnas.load(tmp_path / "r")
    assert run.units == 2
    assert sorted(int(i) for i in run.state["ids"]) == [2, 3]
    assert np.asarray(run.state["archs"].ops).shape == (2, 6)
    assert run.arch is not None


def test_ctrl_c_prints_what_was_saved_and_how_to_resume(tmp_path, nasbench_dir, python_sigint):
    args = ["search", "rs", "--objective", "table", "--evaluations", "1000000"]
    args += ["--nasbench", str(nasbench_dir), "--out", str(tmp_path / "r")]
    proc = subprocess.Popen(  # python_sigint: exec resets the handler to the default
        [sys.executable, "-m", "jnas.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    records = tmp_path / "r" / "records.jsonl"
    for _ in range(600):
        if proc.poll() is not None or len(read_jsonl(records)) >= 2:
            break
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    done = len(read_jsonl(records))
    assert f"interrupted; {done} finished unit(s) saved in {tmp_path / 'r'}" in err
    assert f"jnas {' '.join(args)} --resume" in err


def test_meta_command_on_the_sinusoid(tmp_path):
    out = _run(
        "meta",
        "maml",
        "--dataset",
        "sinusoid",
        "--shots",
        "5",
        "--steps",
        "40",
        "--meta-batch",
        "4",
        "--test-tasks",
        "20",
        "--out",
        str(tmp_path / "m"),
    )
    assert out.returncode == 0, out.stderr
    assert "MSE  after adaptation" in out.stdout
    summary = json.loads((tmp_path / "m" / "summary.json").read_text())
    assert summary["test_tasks"] == 20
    assert summary["test"]["loss_after"]["mean"] > 0
    assert len(_records(tmp_path / "m" / "records.jsonl")) == 4  # every 10 steps
    # test tasks of their own size, learning rates, records every 2 steps
    flags = ["--test-shots", "7", "--inner-lr", "0.02", "--outer-lr", "0.002", "--log-every", "2"]
    out = _run("meta", "maml", "--dataset", "sinusoid", "--steps", "4", "--meta-batch", "2",
               "--test-tasks", "4", *flags, "--out", str(tmp_path / "f"))  # fmt: skip
    assert out.returncode == 0, out.stderr
    summary = json.loads((tmp_path / "f" / "summary.json").read_text())
    assert (summary["test_shots"], summary["shots"]) == (7, 1)
    assert (summary["inner_lr"], summary["outer_lr"]) == (0.02, 0.002)
    assert len(_records(tmp_path / "f" / "records.jsonl")) == 2
    assert "held-out 7-shot tasks" in out.stdout


def test_meta_command_protonet_other_test_ways_and_one_figure(tmp_path):
    out = _run("meta", "protonet", "--dataset", "digits", "--ways", "2", "--test-ways", "4",
               "--steps", "2", "--meta-batch", "2", "--test-tasks", "4", "--queries", "3",
               "--out", str(tmp_path / "p"))  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "held-out 4-way 1-shot tasks" in out.stdout
    assert "before" not in out.stdout  # nothing adapts: no before/after pair
    assert "accuracy: " in out.stdout
    out = _run("meta", "maml", "--dataset", "digits", "--test-ways", "4", "--out",
               str(tmp_path / "q"))  # fmt: skip
    assert out.returncode == 2
    assert "only protonet" in out.stderr


@pytest.mark.slow  # a learning run (70 s); the meta CLI's wiring is tested above
def test_meta_command_reptile_on_digits_learns_with_the_paper_setting(tmp_path):
    """Reptile's Omniglot setting (Adam inner loop on support + query minibatches, 50 test
    steps) runs end to end and its meta-learned initialisation adapts to new classes."""
    out = _run(
        "meta",
        "reptile",
        "--dataset",
        "digits",
        "--ways",
        "3",
        "--steps",
        "30",
        "--meta-batch",
        "5",
        "--test-tasks",
        "40",
        "--out",
        str(tmp_path / "r"),
    )
    assert out.returncode == 0, out.stderr
    test = json.loads((tmp_path / "r" / "summary.json").read_text())["test"]
    assert test["metric_after"]["mean"] > test["metric_before"]["mean"] + 0.1


@pytest.mark.slow  # compiles a supernet's unrolled inner loop for training and evaluation
def test_meta_command_metanas_on_digits_prints_the_task_cell(tmp_path):
    out = _run(
        "meta",
        "metanas",
        "--dataset",
        "digits",
        "--ways",
        "3",
        "--steps",
        "2",
        "--meta-batch",
        "2",
        "--test-tasks",
        "4",
        "--out",
        str(tmp_path / "n"),
    )
    assert out.returncode == 0, out.stderr
    summary = json.loads((tmp_path / "n" / "summary.json").read_text())
    assert summary["classes"] == {"meta_train": 5, "meta_test": 5}
    assert summary["cell_first_test_task"].count("~") == 6  # an NB201 cell
    assert 0 <= summary["test"]["metric_after"]["mean"] <= 1


def test_spaces_draw_writes_the_named_architecture(tmp_path):
    from jnas.spaces._darts import DARTS_V2

    out = _run("spaces", "darts", "--arch", DARTS_V2, "--draw", str(tmp_path / "v2.svg"))
    assert out.returncode == 0, out.stderr
    assert "sep_conv_3x3" in (tmp_path / "v2.svg").read_text()
    bad = _run("spaces", "--draw", str(tmp_path / "x.png"))
    assert bad.returncode == 2
    assert "--draw needs one SPACE" in bad.stderr
    bad = _run("spaces", "nb201", "--draw", str(tmp_path / "x.txt"))
    assert bad.returncode == 2
    assert ".png, .svg or .pdf" in bad.stderr


def test_estimate_writes_scores_correlations_and_a_plot(tmp_path, nb201_table):
    import numpy as np
    from scipy import stats

    out = tmp_path / "est"
    args = ("estimate", "--proxy", "nwot", "--cells", "6", "--channels", "4")
    args += ("--cells-per-stage", "1", "--batch", "8", "--chunk", "4", "--out", str(out))
    res = _run(*args)
    assert res.returncode == 0, res.stderr
    summary = json.loads((out / "summary.json").read_text())
    saved = np.load(out / "scores.npz")
    assert summary["cells"] == 6
    assert len(set(saved["index"].tolist())) == 6
    acc = np.asarray(nb201_table.column("cifar10", "test_acc", 200))[saved["index"]]
    want = stats.spearmanr(saved["score"], acc)[0]
    assert summary["spearman"]["cifar10/test_acc/200"] == pytest.approx(want)
    assert (out / "correlation.png").stat().st_size > 1000


ALARM = (
    b"2025-03-19 07:30:02.045318: E external/xla/xla/service/slow_operation_alarm.cc:73] \n"
    b"********************************\n"
    b"[Compiling module jit_step] Very slow compile? If you want to file a bug, run with "
    b"envvar XLA_FLAGS=--xla_dump_to=/tmp/foo and attach the results.\n"
    b"********************************\n"
    b"2025-03-19 07:30:14.895694: E external/xla/xla/service/slow_operation_alarm.cc:140] "
    b"The operation took 2m12.850942799s\n"
    b"\n"
    b"********************************\n"
    b"[Compiling module jit_step] Very slow compile? If you want to file a bug, run with "
    b"envvar XLA_FLAGS=--xla_dump_to=/tmp/foo and attach the results.\n"
    b"********************************\n"
)


def test_xla_slow_compile_alarms_are_dropped_and_everything_else_kept():
    """XLA's alarm blocks (its log format, both kinds) written to fd 2 from outside Python
    vanish; Python's own stderr lines, before, between and after, come through in order;
    `JNAS_XLA_ALARMS=1` keeps the alarms."""
    code = (
        "import os, sys\n"
        "from jnas.commands._quiet import quiet_xla_alarms\n"
        "quiet_xla_alarms()\n"
        "print('before', file=sys.stderr, flush=True)\n"
        f"os.write(2, {ALARM!r})\n"
        "print('***** not an alarm', file=sys.stderr, flush=True)\n"
        f"os.write(2, {ALARM!r})\n"
        "print('after', file=sys.stderr)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "JNAS_XLA_ALARMS"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, env=env, timeout=60)
    assert out.returncode == 0
    assert out.stderr.decode().splitlines() == ["before", "***** not an alarm", "after"]
    kept = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        env={**env, "JNAS_XLA_ALARMS": "1"},
        timeout=60,
    )
    assert kept.stderr.count(b"Very slow compile?") == 4


def test_bench_run_on_the_nats_size_table_counts_evaluations(tmp_path, nasbench_dir, capsys):
    """`--table nats_sss`: the size space's 90-epoch accuracies, a budget of evaluations
    (the compact table has no training times); each seed's final incumbent is the best
    table value among exactly `--budget` cells; multi-fidelity searchers are refused."""
    from jnas import bench

    out = tmp_path / "b"
    args = ["bench", "run", "--table", "nats_sss", "--searcher", "rs", "--seeds", "4"]
    assert (
        cli.main([*args, "--budget", "30", "--nasbench", str(nasbench_dir), "--out", str(out)]) == 0
    )
    rows = _records(out / "results.jsonl")
    assert rows[0]["searcher"] == "rs"
    values = np.asarray(rows[0]["cifar10-valid/valid_acc/90"]["values"])
    table = bench.load_nats_sss(nasbench_dir)
    column = np.asarray(table.column("cifar10-valid", "valid_acc", 90))
    assert np.all(values <= column.max() + 1e-4)
    assert np.abs(values[:, None] - column[None].astype(np.float64)).min(1).max() < 1e-3
    assert (out / "regret.png").exists()
    capsys.readouterr()
    bad = ["bench", "run", "--table", "nats_sss", "--searcher", "hyperband", "--seeds", "2"]
    assert cli.main([*bad, "--nasbench", str(nasbench_dir), "--out", str(tmp_path / "c")]) == 2
    assert "one fidelity" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["nb101", "nb301"])
def test_bench_run_on_the_subsets_searches_their_cells_only(tmp_path, nasbench_dir, name, capsys):
    """`--table nb101|nb301`: the subset's cells only (restricted), a budget of
    evaluations: every seed's incumbent is one of the file's values (NB301: one row per
    cell) and, as the best of 20 cells, above the file's median."""
    import csv
    import gzip

    out = tmp_path / "b"
    args = ["bench", "run", "--table", name, "--searcher", "rs", "rea", "--seeds", "3"]
    code = cli.main([*args, "--budget", "20", "--nasbench", str(nasbench_dir), "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    file, column, epochs = {
        "nb101": ("nb101_subset_naslib.csv.gz", "val_acc_108ep", 108),
        "nb301": ("nb301_subset_naslib.csv.gz", "val_acc_surrogate", 100),
    }[name]
    with gzip.open(nasbench_dir / file, "rt") as f:
        accs = np.asarray([float(r[column]) for r in csv.DictReader(f) if r[column]])
    rows = _records(out / "results.jsonl")
    assert [r["searcher"] for r in rows] == ["rs", "rea"]
    for r in rows:
        values = np.asarray(r[f"cifar10/valid_acc/{epochs}"]["values"], np.float64)
        assert values.shape == (3,)
        if name == "nb301":  # one row per cell: each value is one of the file's
            assert np.abs(values[:, None] - accs[None]).min(1).max() < 1e-3
        assert np.all(values <= accs.max() + 1e-3)
        assert np.all(values > np.median(accs))
    assert "Welch's t test" in capsys.readouterr().out


def test_oneshot_command_searches_recurrent_cells_on_the_python_corpus(tmp_path):
    """`--space darts_rnn`: DARTS' recurrent search cell in a character language model
    on the standard library's sources (the default data of that space); the shared
    weights learn (perplexity well below the uniform model's, the vocabulary size), the
    derived genotype parses, is drawn, and loads to give next-character logits."""
    import jax

    import jnas
    from jnas.recipes.oneshot import text_splits
    from jnas.spaces import DARTSRecurrent

    args = ("oneshot", "gdas", "--space", "darts_rnn", "--epochs", "2", "--channels", "8")
    out = _run(*args, "--out", tmp_path / "r")
    assert out.returncode == 0, out.stderr
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    splits, vocab = text_splits()
    assert summary["dataset"] == "python"
    assert summary["w_perplexity"] == pytest.approx(np.exp(summary["w_loss"]), rel=1e-3)
    assert summary["w_perplexity"] < vocab / 2  # uniform: the vocabulary size (96)
    records = _records(tmp_path / "r" / "records.jsonl")
    assert [r["epoch"] for r in records] == [0, 1]
    assert records[0]["tau"] == pytest.approx(10.0)  # GDAS' temperature, recorded
    losses = [r["w_loss"] for r in records]
    assert losses[1] < losses[0] - 0.1
    arch = DARTSRecurrent().from_string(summary["arch"])
    assert bool(DARTSRecurrent().is_valid(arch))
    assert "perplexity (per character): train" in out.stdout
    assert (tmp_path / "r" / "cell.png").stat().st_size > 5000
    before = _files(tmp_path / "r")
    run = jnas.load(tmp_path / "r")
    assert (run.command, run.units) == ("oneshot", 2)
    assert DARTSRecurrent().to_string(run.arch) == summary["arch"]
    tokens = jax.numpy.asarray(splits["valid"].x[:3])
    assert run.logits(tokens).shape == (3, 35, vocab)
    assert _files(tmp_path / "r") == before
    # the space reads text, the image spaces do not: one line, exit 2, nothing written
    for bad in (
        ("oneshot", "gdas", "--space", "darts_rnn", "--dataset", "digits"),
        ("oneshot", "gdas", "--dataset", "python"),
    ):
        code = _run(*bad, "--out", tmp_path / "bad")
        assert code.returncode == 2, code.stderr
        assert "--dataset" in code.stderr
        assert not (tmp_path / "bad").exists()


def test_train_and_search_commands_on_other_spaces(tmp_path, nasbench_dir, capsys):
    """`jnas train --space`: a NATS size network trained, then loaded (`jnas.load`) to give
    the accuracy its summary reports; a string of another space is one clear line.
    `jnas search --space S --objective table`: the NB301 subset (its cells only, each
    evaluation the file's value of the cell) and NAS-Bench-NLP (fitness: the negative
    validation perplexity), the incumbent reported from its table."""
    import csv
    import gzip

    import jax

    import jnas
    from jnas import data

    out = tmp_path / "t"
    flags = ["--space", "nats_size", "--epochs", "1", "--batch-size", "128"]
    assert cli.main(["train", "8:8:8:8:8", *flags, "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["space"], summary["arch"]) == ("nats_size", "8:8:8:8:8")
    before = _files(out)
    net = jnas.load(out)
    test = data.load_dataset("digits", jax.random.split(jax.random.key(0), 3)[0])["test"]
    acc = float(np.mean(np.argmax(net.logits(test.x), -1) == np.asarray(test.y)))
    assert acc == pytest.approx(summary["test_acc"], abs=1e-6)  # the trained weights
    assert _files(out) == before
    capsys.readouterr()
    nb201_cell = "|nor_conv_3x3~0|+|nor_conv_3x3~0|skip_connect~1|+|none~0|none~1|none~2|"
    assert cli.main(["train", nb201_cell, *flags, "--out", str(tmp_path / "bad")]) == 2
    assert "NATSSize" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()

    with gzip.open(nasbench_dir / "nb301_subset_naslib.csv.gz", "rt") as f:
        nb301 = np.asarray([float(r["val_acc_surrogate"]) for r in csv.DictReader(f)])
    for space in ("darts", "nbnlp"):
        run = tmp_path / space
        args = ["search", "rea", "--space", space, "--objective", "table", "--evaluations", "12"]
        assert cli.main([*args, "--nasbench", str(nasbench_dir), "--out", str(run)]) == 0
        fitness = np.asarray([e["fitness"] for e in _records(run / "evaluations.jsonl")])
        summary = json.loads((run / "summary.json").read_text())
        assert summary["best_fitness"] == pytest.approx(np.nanmax(fitness))  # NaN: diverged
        assert (run / "cell.png").read_bytes().startswith(b"\x89PNG")
        if space == "darts":
            assert np.abs(fitness[:, None] - nb301[None]).min(1).max() < 1e-3
            assert summary["nb301"]["cifar10/valid_acc/100"] == pytest.approx(
                fitness.max(), abs=1e-3
            )
        else:
            ppl = summary["nbnlp"]["wikitext2/valid_ppl/50"]
            assert ppl == pytest.approx(-np.nanmax(fitness), rel=1e-5)
            assert 50 < ppl < 2000
        loaded = jnas.load(run)  # the incumbent in the space's own form, to build
        assert jnas.recipes.spaces.make_space(space).to_string(loaded.arch) == summary["best_arch"]


def test_meta_command_relation_net_trains_and_loads(tmp_path, capsys):
    """`jnas meta relation_net`: the conv4 embedding and the paper's relation module; a
    metric learner (no before/after adaptation); the run loads to score new tasks."""
    import jax

    import jnas

    out = tmp_path / "r"
    args = ["meta", "relation_net", "--dataset", "digits", "--ways", "2", "--steps", "2"]
    args += ["--meta-batch", "2", "--test-tasks", "4", "--queries", "3", "--out", str(out)]
    assert cli.main(args) == 0
    printed = capsys.readouterr().out
    assert "relation_net on digits, 4 held-out 2-way 1-shot tasks" in printed
    assert "before" not in printed
    run = jnas.load(out)
    assert run.command == "meta"
    from jnas import data

    test = data.load_dataset("digits", jax.random.key(0))["test"]
    x, y = np.asarray(test.x), np.asarray(test.y)
    support = np.stack([np.flatnonzero(y == c)[0] for c in (3, 7)])  # new 2-way 1-shot task
    query = np.concatenate([np.flatnonzero(y == c)[1:4] for c in (3, 7)])
    scores = run.predict(x[support, ..., :1], np.arange(2), x[query, ..., :1])
    assert scores.shape == (6, 2)
    assert np.all(np.isfinite(np.asarray(scores)))


def test_demo_gives_the_alpha_rate_only_to_methods_with_alpha():
    """`jnas demo --method rsws` must not pass its α rate to a method without α (which
    `run_oneshot` refuses): the registry's flag decides."""
    from jnas.commands.demo import _has_alpha
    from jnas.oneshot import REGISTRY

    assert {m for m in REGISTRY if _has_alpha(m)} == {
        "darts-v1", "darts-v2", "gdas", "snas", "proxyless", "drnas", "setn",
    }  # fmt: skip
    from jnas.recipes.oneshot import oneshot_setup

    with pytest.raises(ValueError, match="no architecture parameters"):
        oneshot_setup("rsws", "digits", 0, 1, 64, 4, 1, None, alpha_lr=1e-2)


def test_demo_reference_is_the_tables_best_cifar10_cell(nb201_table):
    from jnas.commands.demo import _best_cell

    col = np.asarray(nb201_table.column("cifar10", "test_acc", 200))
    space = nb201_table.space
    assert int(space.index(space.from_string(_best_cell(nb201_table)))) == int(np.nanargmax(col))
