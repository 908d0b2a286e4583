"""The simulated searches' summaries and regret curves, against the same numbers worked
out by hand (Python loops over seeds and grid points) on a small simulation written
out in full."""

import math

import numpy as np
import pytest

from jnas import bench
from jnas.bench import Simulation

COL = np.asarray([90.0, 80.0, 95.0, 99.0, np.nan], np.float32)  # the table's column


class OneColumn:
    """A table of one column (what the reports read of a table)."""

    def column(self, dataset, metric, epochs, seed=None):
        return COL


SIM = Simulation(
    time_s=np.asarray([[10, 25, 40], [5, 30, 60], [20, 45, 50]], np.float32),
    best_fitness=np.zeros((3, 3), np.float32),  # not read by the reports
    best_row=np.asarray([[-1, 2, 2], [0, 0, 3], [-1, -1, 1]], np.int32),
    num_evals=np.asarray([3, 3, 2], np.int32),
    budget_s=60.0,
)


def _percentile(values, q):
    """The linear-interpolation percentile (NumPy's default), by hand."""
    v = sorted(values)
    pos = (len(v) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return v[lo] + (v[hi] - v[lo]) * (pos - lo)


@pytest.mark.parametrize("minimize", [False, True])
def test_regret_curves_are_the_incumbents_regret_at_each_grid_time(minimize):
    curves = bench.regret_curves(
        {"a": SIM}, OneColumn(), dataset="d", metric="m", epochs=1, num_points=7, minimize=minimize
    )
    grid = [0.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0]
    np.testing.assert_allclose(curves["grid"], grid)
    best = 80.0 if minimize else 99.0
    for g, got in zip(grid, curves["a"].T, strict=True):
        regrets = []
        for s in range(3):
            done = [i for i in range(3) if SIM.time_s[s, i] <= g]
            if done and SIM.best_row[s, done[-1]] >= 0:
                value = float(COL[SIM.best_row[s, done[-1]]])
                regrets.append(value - best if minimize else best - value)
        if not regrets:
            assert np.isnan(got).all(), (g, got)
            continue
        mean = sum(regrets) / len(regrets)
        std = math.sqrt(sum((r - mean) ** 2 for r in regrets) / len(regrets))
        want = [mean, std, _percentile(regrets, 25), _percentile(regrets, 75)]
        np.testing.assert_allclose(got, want, rtol=1e-6, err_msg=f"grid time {g}")


def test_summarize_reports_each_seeds_final_incumbent():
    report = (("d", "m", 1),)
    out = bench.summarize(SIM, OneColumn(), report)
    finals = [95.0, 99.0, 80.0]  # rows 2, 3 and 1 at the last step
    mean = sum(finals) / 3
    assert out["num_seeds"] == 3
    assert out["budget_s"] == 60.0
    assert out["evals_mean"] == pytest.approx(8 / 3)
    got = out["d/m/1"]
    assert got["n"] == 3
    assert got["values"] == finals
    assert got["mean"] == pytest.approx(mean)
    assert got["std"] == pytest.approx(math.sqrt(sum((f - mean) ** 2 for f in finals) / 3))
    # a seed without a result counts in no statistic and reads None
    late = SIM._replace(best_row=SIM.best_row.copy())
    late.best_row[2] = -1
    got = bench.summarize(late, OneColumn(), report)["d/m/1"]
    assert got["n"] == 2
    assert got["values"] == [95.0, 99.0, None]
    assert got["mean"] == pytest.approx(97.0)
    assert got["std"] == pytest.approx(2.0)


def test_arch_report_is_the_tables_value_of_each_reported_key_to_3_decimals():
    class Queried:
        def query(self, arch, *, dataset, metric, epochs):
            return {"a": 91.23456, "b": 7.0004999}[dataset] + arch + (epochs or 0)

    report = (("a", "acc", 200), ("b", "ppl", None))
    got = bench.arch_report(Queried(), 0.5, report)
    assert got == {"a/acc/200": 291.735, "b/ppl/None": 7.5}
    assert list(got) == ["a/acc/200", "b/ppl/None"]
