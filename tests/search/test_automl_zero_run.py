"""AutoML-Zero as a run (`jnas automl-zero`, `recipes.automl_zero.run_automl_zero`): the
authors' loop through the run driver, resumed and recorded in other units to the same
search, stopped at the target, loaded to be used."""

import json

import jax
import numpy as np
import pytest

import jnas
from jnas import cli
from jnas.checkpoint import read_jsonl
from jnas.recipes.automl_zero import automl_zero_tasks, run_automl_zero
from jnas.search import automl_zero as amz

SMALL = dict(
    population=30,
    children=10,
    check_every=2,
    op_set="linear-by-component",
    vectors=3,
    seed=1,
    held_out_tasks=10,
)


def _authors_loop(max_evaluations: int) -> list[list[float]]:
    """The demo's loop written out (as `experiments/automl_zero.py` ran it for the
    published results): the population and one generation from the seed's key, then
    blocks of `check_every` generations keyed by the evaluations done; per block
    [evaluations, search fitness of the best so far]."""
    search, _ = automl_zero_tasks("linear", SMALL["seed"])
    config = dict(
        population=30,
        children=10,
        tournament=10,
        length=8,
        metric="rms",
        op_set=amz.LINEAR_OPS_BY_COMPONENT,
        vectors=3,
    )
    key = jax.random.key(SMALL["seed"])
    state = amz.evolve(key, search, generations=1, **config)
    out = []
    while int(state.evaluations) < max_evaluations:
        done = int(state.evaluations)
        state = amz.evolve(
            jax.random.fold_in(key, done), search, generations=2, state=state, **config
        )
        out.append([int(state.evaluations), float(state.best_fitness)])
    return out


def _search_history(summary: dict) -> list[list[float]]:
    return [[e, s] for e, _, s in summary["history"]]


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    """An uninterrupted run of 8 checks in units of 2 checks."""
    out = tmp_path_factory.mktemp("full")
    summary = run_automl_zero("linear", max_evaluations=200, record_every=4, out=out, **SMALL)
    return out, summary


def test_the_run_is_the_authors_loop_in_any_units_and_resumes_to_the_same_search(full, tmp_path):
    """The driver's units and resume change nothing: the search equals the authors' loop
    written out, and a run in units of 3 checks (not 2), killed after a unit and resumed,
    ends with the same history, each check recorded once (fails if a unit draws its keys
    from the unit number, or if resume repeats or skips a unit)."""
    out, summary = full
    assert summary["evaluations"] == 200
    assert _search_history(summary) == _authors_loop(200)
    assert len(summary["history"]) == 8
    assert summary["evaluations_to_target"] is None  # rms target 0.9999: far away
    assert [r["unit"] for r in read_jsonl(out / "records.jsonl")] == [0, 1, 2, 3]

    seen = []

    def interrupt(done: int, total: int) -> None:
        seen.append(done)
        if len(seen) == 2:  # after the second unit ran, before it is saved
            raise KeyboardInterrupt

    cut = tmp_path / "cut"
    with pytest.raises(KeyboardInterrupt):
        run_automl_zero(
            "linear", max_evaluations=200, record_every=6, out=cut, progress=interrupt, **SMALL
        )
    assert len(read_jsonl(cut / "records.jsonl")) == 1
    resumed = run_automl_zero(
        "linear", max_evaluations=200, record_every=6, out=cut, resume=True, **SMALL
    )
    assert resumed["history"] == summary["history"]
    records = read_jsonl(cut / "records.jsonl")
    assert [(r["unit"], len(r["history"])) for r in records] == [(0, 3), (1, 3), (2, 2)]
    assert resumed["best_program"] == summary["best_program"]


def test_the_search_stops_at_the_first_check_that_reaches_the_target(full, tmp_path):
    """With the first check's held-out fitness as the target, the run ends at that check
    (not at the end of its unit of 4 checks, nor at --max-evaluations), says when, and a
    resume with more evaluations runs nothing more (fails without the driver's `until`
    or the unit's own stop)."""
    _, summary = full
    i = 0
    target = summary["history"][i][1]
    out = tmp_path / "stop"
    stopped = run_automl_zero(
        "linear", max_evaluations=200, record_every=8, target=target, out=out, **SMALL
    )
    assert stopped["history"] == summary["history"][: i + 1]  # in units of 4 checks, not 2
    assert stopped["evaluations_to_target"] == summary["history"][i][0] == stopped["evaluations"]
    records = read_jsonl(out / "records.jsonl")
    assert records[-1]["target_reached"]
    again = run_automl_zero(
        "linear", max_evaluations=400, record_every=8, target=target, out=out, resume=True,
        **SMALL,
    )  # fmt: skip
    assert again["evaluations"] == stopped["evaluations"]
    assert len(read_jsonl(out / "records.jsonl")) == len(records)


def test_cli_runs_extends_and_loads_the_best_program(tmp_path, capsys):
    """`jnas automl-zero` runs, a resume with a larger --max-evaluations continues where
    it ended, and `jnas.load` gives the best program, whose held-out fitness on the run's
    tasks is the summary's; bad flags exit 2 and leave no folder."""
    out = tmp_path / "run"
    flags = [
        "automl-zero", "--population", "30", "--children", "10", "--check-every", "2",
        "--record-every", "4", "--seed", "1", "--held-out-tasks", "10", "--out", out,
    ]  # fmt: skip
    assert cli.main([str(a) for a in [*flags, "--max-evaluations", "120"]]) == 0
    assert "target not reached in 120 evaluations" in capsys.readouterr().out
    assert cli.main([str(a) for a in [*flags, "--max-evaluations", "200", "--resume"]]) == 0
    text = capsys.readouterr().out
    assert "target not reached in 200 evaluations" in text
    assert "SGD linear regression on the same tasks: 1" in text  # the rms fitness of SGD
    summary = json.loads((out / "summary.json").read_text())
    assert (out / "fitness.png").stat().st_size > 1000
    assert [e for e, _, _ in summary["history"]] == list(range(60, 201, 20))
    run = jnas.load(out)
    assert (run.command, run.units) == ("automl-zero", 4)
    assert amz.to_text(run.arch) == summary["best_program"]
    _, held_out = automl_zero_tasks("linear", 1, 10)
    fitness = amz.evaluate(run.arch, held_out, jax.random.key(99), metric="rms", vectors=3)
    np.testing.assert_allclose(float(fitness), summary["held_out_fitness"], rtol=1e-5)

    bad = tmp_path / "bad"
    code = cli.main(["automl-zero", "--check-every", "3", "--record-every", "4", "--out", str(bad)])
    assert code == 2
    assert "`record_every` must be a multiple of `check_every` (3); got 4" in (
        capsys.readouterr().err
    )
    assert not bad.exists()


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--held-out-tasks", "200"], "`held_out_tasks` must be in [1, 100]; got 200"),
        (["--mutate-prob", "2"], "mutate_prob=2.0"),
        (["--children", "2000"], "children=2000, population=1000"),
        (["--metric", "accuracy"], "for the linear tasks must be one of ('rms', 'mse')"),
        (["--task", "digits", "--metric", "rms"], "for the digits tasks must be one of"),
        (["--op-set", "every"], "invalid choice: 'every'"),
    ],
)
def test_bad_flags_exit_2_with_one_line_and_leave_no_folder(tmp_path, capsys, flags, message):
    out = tmp_path / "run"
    try:
        code = cli.main(["automl-zero", *flags, "--out", str(out)])
    except SystemExit as exit:  # argparse's own errors
        code = exit.code
    assert code == 2
    assert message in capsys.readouterr().err
    assert not out.exists()
