"""Task suites from the real tables, and zero-shot portfolios learned on source tasks.

A task is one objective of a table (a dataset's validation accuracy, charged its training
time) with the metric a search on it is judged by (the test accuracy). Tasks of one space
share its rows, so a suite's scores stack into one `[T, N]` array (one program for many
tasks). `leave_one_out` gives the meta-train / target rotations; `portfolio` picks cells good
across the source tasks (Wistuba, Schilling & Schmidt-Thieme 2015: greedy minimisation of
the mean, over tasks, of the best normalised regret among the cells chosen so far), to be
evaluated first on the target (`jnas.search.warm_start`).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jnas._checks import check_positive
from jnas.bench import Objective, Table, objective


class TableTask(NamedTuple):
    """One objective of a table: searched by (`dataset`, `metric`, `epochs`), judged by
    (`report_dataset`, `report_metric`, `report_epochs`), charged `cost` per query."""

    name: str
    dataset: str
    metric: str
    epochs: int
    report_dataset: str
    report_metric: str
    report_epochs: int
    cost: str = "train_time_s"

    def objective(self, table: Table) -> Objective:
        return objective(
            table, dataset=self.dataset, metric=self.metric, epochs=self.epochs, cost=self.cost
        )

    def scores(self, table: Table) -> jax.Array:
        """float32[N]: what earlier searches on this task measured (the searched metric)."""
        return table.column(self.dataset, self.metric, self.epochs)

    def truth(self, table: Table) -> jax.Array:
        """float32[N]: the metric a search on this task is judged by."""
        return table.column(self.report_dataset, self.report_metric, self.report_epochs)


def nb201_tasks(epochs: int = 12) -> dict[str, TableTask]:
    """NB201's three datasets as tasks (`bench.load_nb201()`): searched by the validation
    accuracy after `epochs` (12 or 200, the NB201 protocol's two fidelities), judged by the
    200-epoch test accuracy; cifar10 is searched on `cifar10-valid` as NB201 does."""
    if epochs not in (12, 200):
        raise ValueError(f"nb201_tasks: `epochs` must be 12 or 200; got {epochs}")
    return {
        name: TableTask(name, ds, "valid_acc", epochs, name, "test_acc", 200)
        for name, ds in (
            ("cifar10", "cifar10-valid"),
            ("cifar100", "cifar100"),
            ("ImageNet16-120", "ImageNet16-120"),
        )
    }


def nats_size_tasks() -> dict[str, TableTask]:
    """The NATS size space's three datasets (`bench.load_nats_sss()`): only the 90-epoch
    validation accuracy is tabulated, so it is both searched and judged, and each query
    costs one evaluation."""
    return {
        name: TableTask(name, ds, "valid_acc", 90, ds, "valid_acc", 90, cost="evaluations")
        for name, ds in (
            ("cifar10", "cifar10-valid"),
            ("cifar100", "cifar100"),
            ("ImageNet16-120", "ImageNet16-120"),
        )
    }


def leave_one_out(names: list[str] | tuple[str, ...]) -> list[tuple[tuple[str, ...], str]]:
    """Every (sources, target) rotation: each task the target once, the others the sources."""
    if len(names) < 2:
        raise ValueError(f"leave_one_out: expected >= 2 tasks; got {list(names)}")
    return [(tuple(n for n in names if n != t), t) for t in names]


def suite_scores(table: Table, tasks: list[TableTask] | tuple[TableTask, ...]) -> jax.Array:
    """float32[T, N]: the tasks' searched metric stacked over the space's rows."""
    return jnp.stack([t.scores(table) for t in tasks])


def portfolio(scores: jax.Array, size: int) -> jax.Array:
    """int32[size]: rows chosen greedily to minimise the mean over tasks of the best
    normalised regret among the chosen (Wistuba et al. 2015). `scores[T, N]`: higher is
    better; per task, regret is scaled to [0, 1] by its best and worst row; NaN rows are
    never chosen, nor a row twice; once no row lowers the sum, the next is the row of
    lowest mean regret of its own."""
    if scores.ndim != 2:
        raise ValueError(f"portfolio: `scores` must be [tasks, rows]; got shape {scores.shape}")
    check_positive("portfolio", size=size)
    hi = jnp.nanmax(scores, axis=1, keepdims=True)
    lo = jnp.nanmin(scores, axis=1, keepdims=True)
    regret = (hi - scores) / jnp.maximum(hi - lo, 1e-12)
    regret = jnp.where(jnp.isnan(regret), jnp.inf, regret)

    alone = regret.mean(0)  # a row's own mean regret: breaks ties once the best is reached

    def pick(carry: tuple, _: None) -> tuple[tuple, jax.Array]:
        best, taken = carry
        mean = jnp.minimum(regret, best[:, None]).mean(0)  # [N]: mean best regret with row
        key = jnp.where(taken, jnp.inf, mean + 1e-6 * alone)
        row = jnp.argmin(key)
        return (jnp.minimum(best, regret[:, row]), taken.at[row].set(True)), row.astype(jnp.int32)

    start = (jnp.ones(scores.shape[0]), jnp.zeros(scores.shape[1], bool))
    _, rows = jax.lax.scan(pick, start, None, length=size)
    return rows
