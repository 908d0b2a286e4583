"""`jnas.search.run`: a searcher against a Python objective, checkpointed and resumable."""

import math

import jax
import numpy as np
import pytest

from jnas import search
from jnas.spaces import NB201

SPACE = NB201()
WEIGHTS = np.asarray([[0, 1, 2, 4, 1]] * 6, np.float32)


class Counting:
    """fitness = a fixed score of the cell's ops; counts calls; can fail on a chosen call."""

    def __init__(self, fail_at=None, nan_every=None):
        self.calls, self.fail_at, self.nan_every = 0, fail_at, nan_every

    def __call__(self, arch):
        self.calls += 1
        if self.fail_at is not None and self.calls == self.fail_at:
            raise KeyboardInterrupt  # a kill in the middle of an evaluation
        if self.nan_every and self.calls % self.nan_every == 0:
            return math.nan
        ops = np.asarray(arch.ops)
        return float(WEIGHTS[np.arange(6), ops].sum())


@pytest.mark.parametrize("name", ["rea", "reinforce"])
def test_run_matches_the_objective_and_finds_good_cells(name, tmp_path):
    from jnas.search import make_searcher

    objective = Counting(nan_every=7)
    _, records = search.run(
        make_searcher(name, SPACE),
        objective,
        jax.random.key(0),
        num_evaluations=60,
        space=SPACE,
        out=tmp_path,
    )
    evaluations = [e for r in records for e in r["evaluations"]]
    assert len(evaluations) == objective.calls == 60
    finite = [e for e in evaluations if not math.isnan(e["fitness"])]
    assert records[-1]["best_fitness"] == max(e["fitness"] for e in finite)
    assert not math.isnan(records[-1]["best_fitness"])  # NaN never becomes the incumbent
    # 24 is the optimum, random cells average 9.6
    assert records[-1]["best_fitness"] >= {"rea": 18, "reinforce": 15}[name]


def test_interrupted_run_resumes_without_losing_or_repeating_evaluations(tmp_path):
    from jnas.search import make_searcher

    searcher = make_searcher("rea", SPACE)
    full_obj = Counting()
    _, full = search.run(
        searcher,
        full_obj,
        jax.random.key(1),
        num_evaluations=25,
        space=SPACE,
        out=tmp_path / "full",
    )
    calls = 0
    for n, fail_at in enumerate((4, 9, 3)):  # three kills at different points
        obj = Counting(fail_at=fail_at)
        with pytest.raises(KeyboardInterrupt):
            search.run(
                searcher,
                obj,
                jax.random.key(1),
                num_evaluations=25,
                space=SPACE,
                out=tmp_path / "cut",
                resume=n > 0,
            )
        calls += obj.calls - 1  # the interrupted call did not finish
    obj = Counting()
    _, resumed = search.run(
        searcher,
        obj,
        jax.random.key(1),
        num_evaluations=25,
        space=SPACE,
        out=tmp_path / "cut",
        resume=True,
    )
    assert resumed == full
    assert calls + obj.calls == full_obj.calls == 25  # nothing lost, nothing repeated
    with pytest.raises(ValueError, match="num_evaluations"):
        search.run(searcher, obj, jax.random.key(1), num_evaluations=0, space=SPACE)


class Curves:
    """Per-epoch fitness rising to the fixed score of the cell: score - 3 exp(-0.3 e)."""

    def __init__(self, epochs=20):
        self.epochs, self.trained = epochs, 0

    def final(self, arch):
        return float(WEIGHTS[np.arange(6), np.asarray(arch.ops)].sum())

    def __call__(self, arch):
        final = self.final(arch)
        for e in range(1, self.epochs + 1):
            self.trained += 1
            yield final - 3.0 * math.exp(-0.3 * e)


def test_early_stopping_stops_only_runs_that_cannot_win(tmp_path):
    """Runs stopped at epoch 5 by the curve rule would not have beaten the incumbent of the
    time; completed runs carry their full curve; a stopped run is never the incumbent; the
    epochs trained drop. A resumed run with early stopping equals an uninterrupted one."""
    from jnas.predictors import curve_stopper
    from jnas.search import make_searcher

    stop = curve_stopper(20, check_at=(5,), increasing=True)
    objective = Curves()
    kwargs = {"num_evaluations": 24, "space": SPACE, "early_stop": stop}
    _, records = search.run(
        make_searcher("rs", SPACE),
        objective,
        jax.random.key(3),
        out=tmp_path / "a",
        **kwargs,
    )
    evaluations = [e for r in records for e in r["evaluations"]]
    stopped = [e for e in evaluations if e["stopped_at"] is not None]
    assert 0 < len(stopped) < len(evaluations)
    assert objective.trained == 20 * len(evaluations) - 15 * len(stopped)
    best = -math.inf
    for e in evaluations:
        arch = SPACE.from_string(e["arch"])
        truth = [objective.final(arch) - 3.0 * math.exp(-0.3 * k) for k in range(1, 21)]
        if e["stopped_at"] is None:
            np.testing.assert_allclose(e["curve"], truth)
            best = max(best, e["fitness"])
        else:
            assert e["stopped_at"] == 5
            np.testing.assert_allclose(e["curve"], truth[:5])
            assert truth[-1] < best  # it could not have won
    assert records[-1]["best_fitness"] == best
    with pytest.raises(ValueError, match="yield the fitness"):
        search.run(
            make_searcher("rs", SPACE),
            objective.final,
            jax.random.key(3),
            num_evaluations=2,
            space=SPACE,
            early_stop=stop,
        )
    with pytest.raises(ValueError, match="increasing=True"):
        search.run(
            make_searcher("rs", SPACE),
            objective,
            jax.random.key(3),
            num_evaluations=2,
            space=SPACE,
            early_stop=curve_stopper(20),
        )

    class Killed(Curves):
        def __call__(self, arch):
            if self.trained >= 100:
                raise KeyboardInterrupt
            yield from super().__call__(arch)

    with pytest.raises(KeyboardInterrupt):
        search.run(
            make_searcher("rs", SPACE),
            Killed(),
            jax.random.key(3),
            out=tmp_path / "b",
            **kwargs,
        )
    _, resumed = search.run(
        make_searcher("rs", SPACE),
        Curves(),
        jax.random.key(3),
        out=tmp_path / "b",
        resume=True,
        **kwargs,
    )
    assert resumed == records


class Training:
    """A multi-fidelity objective with a state: fitness after e epochs is
    sum_{k<e} score * 0.5^k (the same whether trained at once or continued); counts the
    epochs it trains; can be killed on a chosen call."""

    def __init__(self, fail_at=None):
        self.epochs, self.calls, self.fail_at = 0, 0, fail_at

    def __call__(self, arch, budget, state):
        self.calls += 1
        if self.fail_at is not None and self.calls == self.fail_at:
            raise KeyboardInterrupt
        score = float(WEIGHTS[np.arange(6), np.asarray(arch.ops)].sum())
        if state is not None:
            state = search.restore_state({"epochs": np.int32(0), "value": np.float64(0)}, state)
        start = 0 if state is None else int(state["epochs"])
        value = 0.0 if state is None else float(state["value"])
        assert start < budget
        for e in range(start, budget):
            value += score * 0.5**e
            self.epochs += 1
        return value, {"epochs": np.int32(budget), "value": np.float64(value)}


def _scratch(arch_string, budget):
    arch = SPACE.from_string(arch_string)
    score = float(WEIGHTS[np.arange(6), np.asarray(arch.ops)].sum())
    return sum(score * 0.5**e for e in range(budget))


@pytest.mark.parametrize("make", [search.hyperband, search.dehb])
def test_hyperband_runs_real_objectives_and_promotions_continue_their_runs(make, tmp_path):
    searcher = make(SPACE, fidelities=3, eta=3)  # 40 evaluations: DEHB's 2nd iteration too
    budgets = (1, 3, 9)
    kwargs = {"num_evaluations": 40, "space": SPACE, "fidelities": budgets}
    objective = Training()
    _, full = search.run(searcher, objective, jax.random.key(2), out=tmp_path / "full", **kwargs)
    evaluations = [e for r in full for e in r["evaluations"]]
    assert len(evaluations) == 40
    promoted = [e for e in evaluations if e["continued_from"] is not None]
    assert promoted  # Hyperband's promotions re-evaluate the same cells higher up
    for e in evaluations:
        assert e["budget"] == budgets[e["budget_index"]]
        np.testing.assert_allclose(e["fitness"], _scratch(e["arch"], e["budget"]), rtol=1e-12)
    trained = sum(e["budget"] - (e["continued_from"] or 0) for e in evaluations)
    assert objective.epochs == trained < sum(e["budget"] for e in evaluations)
    top = [e for e in evaluations if e["budget_index"] == 2]
    assert full[-1]["best_fitness"] == max(e["fitness"] for e in top)
    # killed twice (the states of partial runs on disk), resumed: the same records and no
    # epoch trained twice
    epochs = 0
    for n, fail_at in enumerate((7, 11)):
        obj = Training(fail_at=fail_at)
        with pytest.raises(KeyboardInterrupt):
            search.run(
                searcher, obj, jax.random.key(2), out=tmp_path / "cut", resume=n > 0, **kwargs
            )
        epochs += obj.epochs
    obj = Training()
    _, resumed = search.run(
        searcher, obj, jax.random.key(2), out=tmp_path / "cut", resume=True, **kwargs
    )
    assert resumed == full
    assert epochs + obj.epochs == objective.epochs
    with pytest.raises(ValueError, match="fidelities"):
        search.run(searcher, obj, jax.random.key(2), num_evaluations=3, space=SPACE)
