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
    for fail_at in (4, 9, 3):  # three kills at different points
        obj = Counting(fail_at=fail_at)
        with pytest.raises(KeyboardInterrupt):
            search.run(
                searcher,
                obj,
                jax.random.key(1),
                num_evaluations=25,
                space=SPACE,
                out=tmp_path / "cut",
                resume=True,
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
