"""The benchmark tables `jnas bench run` and `jnas search --objective table` search, each
with its protocol: what guides the search, what a query costs, what is reported, and the
space it covers (the subsets of NB101 and NB301 through `bench.restrict`, so searchers
propose only cells the table holds)."""

from __future__ import annotations

import dataclasses
from typing import Any

# table name -> the space it covers (the name `jnas search --space` takes)
TABLE_SPACES = {
    "nb201": "nb201",
    "nats_sss": "nats_size",
    "nb101": "nb101",
    "nb301": "darts",
    "nbnlp": "nbnlp",
}
SPACE_TABLES = {space: table for table, space in TABLE_SPACES.items()}
TABLES_HELP = (
    "nb201: NAS-Bench-201 (Table 5's protocol: 12-epoch CIFAR-10 validation accuracy, "
    "charged its training time); nats_sss: NATS-Bench's size space (32,768 channel "
    "configurations, 90-epoch accuracy, the budget in evaluations); nb101: the NAS-Bench-101 "
    "subset (its 108-epoch validation accuracy; budget in evaluations); nb301: the "
    "NAS-Bench-301 subset (725 DARTS cells, the surrogate's validation accuracy; budget in "
    "evaluations); nbnlp: NAS-Bench-NLP (WikiText-2 perplexity, 265 cells; multi-fidelity "
    "searchers continue their runs)"
)


@dataclasses.dataclass(frozen=True)
class TableSetup:
    """A table and its protocol (see `table_setup`)."""

    name: str
    table: Any  # the table searched (restricted to its cells for the subsets)
    objective: Any  # bench.Objective: the search signal and each query's cost
    multi: Any  # a multi-fidelity Objective, or None for a one-fidelity table
    report: tuple  # (dataset, metric, epochs) keys of the final incumbent to report
    regret_of: tuple  # (dataset, metric, epochs, minimize) of the regret plot
    budget: float  # the default budget (simulated seconds or evaluations)
    ylabel: str
    fidelities: int

    @property
    def space(self) -> Any:
        return self.table.space


def table_setup(
    name: str,
    nasbench: str | None = None,
    *,
    dataset: str | None = None,
    epochs: int | None = None,
    budget: float | None = None,
) -> TableSetup:
    """The protocol of table `name` (one of `TABLE_SPACES`) read from `nasbench` (default
    `$JNAS_NASBENCH_DIR`); `dataset` / `epochs` choose NB201's signal; `budget` replaces
    the default. A wrong choice is a `ValueError` naming the flag."""
    import jax.numpy as jnp

    from jnas import bench

    if name not in TABLE_SPACES:
        raise ValueError(f"unknown table {name!r}; expected one of {', '.join(TABLE_SPACES)}")
    if name == "nbnlp":
        if dataset is not None or epochs not in (None, 50):
            raise ValueError(
                "--table nbnlp: WikiText-2 at 50 epochs (its multi-fidelity searchers use "
                "1/3/9/27/50); drop --dataset and --epochs"
            )
        table = bench.restrict(bench.load_nbnlp(nasbench))
        kw: dict[str, Any] = {"dataset": "wikitext2", "metric": "valid_ppl", "minimize": True}
        mean_run = float(jnp.mean(table.column("wikitext2", "train_time_s", 50)))
        return TableSetup(
            name,
            table,
            bench.objective(table, epochs=50, **kw),
            bench.objective(table, epochs=(1, 3, 9, 27, 50), resume=True, **kw),
            bench.NBNLP_REPORT,
            ("wikitext2", "valid_ppl", 50, True),
            20 * mean_run if budget is None else budget,
            "validation perplexity regret (50 epochs)",
            5,
        )
    if name in ("nb101", "nb301"):
        if dataset not in (None, "cifar10"):
            raise ValueError(f"--table {name} has CIFAR-10 only; got --dataset {dataset}")
        full = 108 if name == "nb101" else 100
        if epochs not in (None, full):
            raise ValueError(
                f"--table {name} has {full}-epoch accuracies only; got --epochs {epochs}"
            )
        load = bench.load_nb101 if name == "nb101" else bench.load_nb301
        table = bench.restrict(load(nasbench))
        key = ("cifar10", "valid_acc", full)
        return TableSetup(
            name,
            table,
            bench.objective(
                table, dataset="cifar10", metric="valid_acc", epochs=full, cost="evaluations"
            ),
            None,
            (key,),
            (*key, False),
            100.0 if budget is None else budget,
            f"CIFAR-10 validation regret (%, {full} epochs)",
            1,
        )
    if name == "nats_sss":
        table = bench.load_nats_sss(nasbench)
        data = "cifar10-valid" if dataset in (None, "cifar10") else str(dataset)
        if epochs not in (None, 90):
            raise ValueError(
                f"--table nats_sss has 90-epoch accuracies only; got --epochs {epochs}"
            )
        # the compact NATS size table has no training times: the budget counts evaluations
        return TableSetup(
            name,
            table,
            bench.objective(table, dataset=data, metric="valid_acc", epochs=90, cost="evaluations"),
            None,
            tuple((d, "valid_acc", 90) for d in ("cifar10-valid", "cifar100", "ImageNet16-120")),
            (data, "valid_acc", 90, False),
            100.0 if budget is None else budget,
            f"{data} validation regret (%)",
            1,
        )
    table = bench.load_nb201(nasbench)
    # "search on CIFAR-10" means its train/valid split, as in the NB201 API
    data = "cifar10-valid" if dataset in (None, "cifar10") else str(dataset)
    e = 12 if epochs is None else epochs
    if e not in (12, 200):
        raise ValueError(f"--epochs must be 12 or 200 for nb201; got {e}")
    return TableSetup(
        name,
        table,
        bench.objective(table, dataset=data, metric="valid_acc", epochs=e),
        # Hyperband and BOHB evaluate at 12 or 200 epochs, each charged its training time
        bench.objective(table, dataset=data, metric="valid_acc", epochs=(12, 200)),
        bench.NB201_REPORT,
        ("cifar10", "test_acc", 200, False),
        12000.0 if budget is None else budget,
        "CIFAR-10 test regret (%)",
        2,
    )


def search_setup(space_name: str, objective: str, nasbench: str | None) -> tuple[Any, Any]:
    """(the space searched, the table's protocol or None) of `jnas search --space
    space_name --objective objective`: with a table, the table's own space (its cells only
    for the NB101 / NB301 subsets and NAS-Bench-NLP), else the named space."""
    from jnas.recipes.spaces import TRAIN_SPACES, make_space

    if objective == "table":
        if space_name not in SPACE_TABLES:
            raise ValueError(
                f"--objective table: no NAS-Bench table covers the {space_name} space; tables "
                f"exist for {', '.join(SPACE_TABLES)} (or train: --objective train)"
            )
        setup = table_setup(SPACE_TABLES[space_name], nasbench)
        return setup.space, setup
    if space_name not in TRAIN_SPACES:
        raise ValueError(
            f"--objective train trains image networks; the {space_name} space is searched "
            "against its table: --objective table"
        )
    return make_space(space_name), None
