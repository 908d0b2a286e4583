"""Summaries, JSON-lines records and regret plots of simulated searches."""

from __future__ import annotations

import json
import pathlib
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from jnas.bench._simulate import Simulation
from jnas.bench._table import Key, Table

# NB201 Table 5: search on CIFAR-10 (train/valid split), report the chosen cell on
# CIFAR-10 valid/test, CIFAR-100 and ImageNet16-120 valid/test, after 200 epochs.
NB201_REPORT: tuple[Key, ...] = (
    ("cifar10-valid", "valid_acc", 200),
    ("cifar10", "test_acc", 200),
    ("cifar100", "valid_acc", 200),
    ("cifar100", "test_acc", 200),
    ("ImageNet16-120", "valid_acc", 200),
    ("ImageNet16-120", "test_acc", 200),
)


# NAS-Bench-NLP: the chosen cell's 50-epoch WikiText-2 perplexities (lower is better)
NBNLP_REPORT: tuple[Key, ...] = (
    ("wikitext2", "valid_ppl", 50),
    ("wikitext2", "test_ppl", 50),
)


def summarize(sim: Simulation, table: Table, report: Sequence[Key] = NB201_REPORT) -> dict:
    """Mean, std and count over seeds of each reported metric of the final incumbent, and
    every seed's value (`values`, None where a seed has no result), for tests across
    searchers."""
    out = {
        "num_seeds": int(sim.best_row.shape[0]),
        "budget_s": sim.budget_s,
        "evals_mean": float(np.mean(sim.num_evals)),
    }
    for dataset, metric, epochs in report:
        values = sim.report(table, dataset=dataset, metric=metric, epochs=epochs)[:, -1]
        out[f"{dataset}/{metric}/{epochs}"] = {
            "mean": float(np.nanmean(values)),
            "std": float(np.nanstd(values)),
            "n": int(np.sum(~np.isnan(values))),
            "values": [None if np.isnan(v) else round(float(v), 4) for v in values],
        }
    return out


def write_jsonl(path: str | pathlib.Path, records: Sequence[dict]) -> None:
    """Append records as JSON lines (one object a line)."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        for r in records:
            f.write(json.dumps(r) + "\n")


def regret_curves(
    sims: dict[str, Simulation],
    table: Table,
    *,
    dataset: str,
    metric: str,
    epochs: int,
    num_points: int = 200,
    minimize: bool = False,
) -> dict[str, np.ndarray]:
    """Per searcher: float[4, num_points], the mean, std, 25th and 75th percentile over
    seeds of the incumbent's regret (the best value in the table minus the incumbent's;
    the incumbent's minus the lowest with `minimize`) on a shared simulated-time grid
    (`grid`); NaN where no seed has a result yet."""
    col = np.asarray(table.column(dataset, metric, epochs), np.float64)
    sign = -1.0 if minimize else 1.0
    best = sign * (np.nanmin(col) if minimize else np.nanmax(col))
    budget = max(s.budget_s for s in sims.values())
    grid = np.linspace(0, budget, num_points)
    out = {"grid": grid}
    for name, sim in sims.items():
        regret = best - sign * sim.report(table, dataset=dataset, metric=metric, epochs=epochs)
        curve = sim.on_grid(regret, grid)
        with warnings.catch_warnings():  # grid points before any seed's first result
            warnings.simplefilter("ignore", RuntimeWarning)
            out[name] = np.stack(
                [
                    np.nanmean(curve, 0),
                    np.nanstd(curve, 0),
                    *np.nanpercentile(curve, [25, 75], axis=0),
                ]
            )
    return out


def plot_regret(curves: dict[str, np.ndarray], path: str | pathlib.Path, *, ylabel: str) -> None:
    """A regret-vs-simulated-time plot, PNG or SVG: per searcher the mean over seeds (line)
    and the 25th-75th percentile band (a ±std band would fall below zero on the log axis).
    The axis is logarithmic when any regret is positive, else linear with a note (a budget
    too short for any seed's first result)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    grid = curves["grid"]
    rows = {k: v for k, v in curves.items() if k != "grid"}
    values = np.concatenate([v[[0, 2, 3]].ravel() for v in rows.values()])
    positive = values[np.isfinite(values) & (values > 0)]
    floor = positive.min() / 2 if positive.size else 0.0
    for name, row in rows.items():
        mean, low, high = row[0], row[2], row[3]
        ax.plot(grid, mean, label=name)
        ax.fill_between(grid, np.maximum(low, floor), np.maximum(high, floor), alpha=0.2)
    ax.set_xlabel("simulated time (s)")
    ax.set_ylabel(ylabel)
    ax.set_title("mean over seeds; band: 25th-75th percentile", fontsize=9)
    if positive.size:
        ax.set_yscale("log")
    else:
        ax.text(0.5, 0.5, "no result within the budget", ha="center", transform=ax.transAxes)
    ax.grid(True, alpha=0.3)
    if rows:
        ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def arch_report(table: Table, arch: object, report: Sequence[Key] = NB201_REPORT) -> dict:
    """The table's published values of one architecture, keyed `dataset/metric/epochs`."""
    return {
        f"{d}/{m}/{e}": round(float(table.query(arch, dataset=d, metric=m, epochs=e)), 3)
        for d, m, e in report
    }


def welch_test(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Welch's t statistic of mean(a) > mean(b) across seeds and its one-sided p value
    (Student's t with Welch-Satterthwaite degrees of freedom, by SciPy); NaN-free input."""
    import warnings

    from scipy import stats

    with warnings.catch_warnings():  # identical values (a converged searcher): t is inf/NaN
        warnings.filterwarnings("ignore", "Precision loss", RuntimeWarning)
        res: Any = stats.ttest_ind(  # SciPy's stubs lack TtestResult's fields
            np.asarray(a, np.float64),
            np.asarray(b, np.float64),
            equal_var=False,
            alternative="greater",
        )
    return float(res.statistic), float(res.pvalue)
