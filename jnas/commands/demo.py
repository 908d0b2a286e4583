"""`jnas demo`, the main job: a one-shot search on the bundled digits, the found cell
trained from scratch, and (when the NB201 table is present) its published accuracies, the
table's best CIFAR-10 cell trained alike on the digits for comparison, and regularized
evolution vs random search on the table for 100 seeds."""

from __future__ import annotations

import argparse
import json
import pathlib
import time
from typing import Any

from jnas.commands._common import (
    NASBENCH_HELP,
    positive_float,
    positive_int,
    progress,
)
from jnas.commands.oneshot import METHOD_NAMES
from jnas.recipes.oneshot import load_nb201_if_present, run_oneshot
from jnas.recipes.train import run_train

# The demo's search has ~100 α steps (10 epochs of the digits' ~10 batches) against NB201's
# 19,550: at NB201's 3e-4, α ends within 0.005 of uniform, and the derived cell is noise.
DEMO_ALPHA_LR = 1e-2


def _table_search(table, out: pathlib.Path, seed: int, seeds: int) -> dict:
    import jax

    from jnas import bench, search

    obj = bench.objective(table, dataset="cifar10-valid", metric="valid_acc", epochs=12)
    sims, rows = {}, {}
    for name, make in (
        ("random search", search.random_search),
        ("regularized evolution", search.regularized_evolution),
    ):
        sims[name] = bench.simulate(
            make(table.space),
            obj,
            key=jax.random.key(seed),
            num_seeds=seeds,
            budget_s=12_000,
            progress=progress(name),
        )
        rows[name] = bench.summarize(sims[name], table)["cifar10/test_acc/200"]
    curves = bench.regret_curves(sims, table, dataset="cifar10", metric="test_acc", epochs=200)
    bench.plot_regret(curves, out / "regret.png", ylabel="CIFAR-10 test regret (%)")
    return rows


def _alpha_moved(records: pathlib.Path) -> tuple[float, float, int] | None:
    """(lowest, highest op weight softmax(α) reached, ops per edge) after the last epoch."""
    import numpy as np

    from jnas.checkpoint import read_jsonl

    rows = read_jsonl(records)
    if not rows or "alpha" not in rows[-1]:
        return None
    alpha = np.asarray(rows[-1]["alpha"], np.float64)
    weights = np.exp(alpha - alpha.max(-1, keepdims=True))
    weights /= weights.sum(-1, keepdims=True)
    return float(weights.min()), float(weights.max()), int(alpha.shape[-1])


def _has_alpha(method: str) -> bool:
    """Whether the one-shot method has architecture parameters α (`--alpha-lr` applies)."""
    from jnas.oneshot import REGISTRY

    return REGISTRY[method].uses_alpha


def _learned(records: pathlib.Path) -> tuple[float, float, float, float] | None:
    """(supernet training accuracy, α-step validation loss) of the first and last epoch."""
    from jnas.checkpoint import read_jsonl

    rows = read_jsonl(records)
    if not rows or "alpha_loss" not in rows[0]:
        return None
    first, last = rows[0], rows[-1]
    return first["w_acc"], last["w_acc"], first["alpha_loss"], last["alpha_loss"]


def _best_cell(table) -> str:
    """The table's best cell by CIFAR-10 test accuracy after 200 epochs."""
    import jax.numpy as jnp
    import numpy as np

    col = np.asarray(table.column("cifar10", "test_acc", 200), np.float64)
    return table.space.to_string(table.space.from_index(jnp.int32(np.nanargmax(col))))


def _percentile(table, value: float) -> float:
    """The share (%) of the table's cells with a lower CIFAR-10 test accuracy."""
    import numpy as np

    col = np.asarray(table.column("cifar10", "test_acc", 200), np.float64)
    return float(100.0 * np.mean(col[~np.isnan(col)] < value))


def _best(table) -> float:
    import numpy as np

    return float(np.nanmax(np.asarray(table.column("cifar10", "test_acc", 200))))


def cmd_demo(args: argparse.Namespace) -> int:
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    table = load_nb201_if_present(args.nasbench)
    print(
        f"jnas demo: {args.method} one-shot search in the NB201 space on scikit-learn's "
        f"digits ({args.epochs} epochs), then the found cell trained from scratch"
    )
    print(
        "  compiling first: under a minute cold on 2 CPU cores, seconds once cached "
        "($JNAS_XLA_CACHE, default ~/.cache/jnas/xla)",
        flush=True,
    )
    found = run_oneshot(
        args.method,
        "digits",
        seed=args.seed,
        epochs=args.epochs,
        out=out / "search",
        table=table,
        progress=progress(f"{args.method} on digits", "epochs"),
        alpha_lr=args.alpha_lr if _has_alpha(args.method) else None,
    )
    print(f"  found cell    {found['arch']}  ({found['search_s']}s)")
    learned = _learned(out / "search" / "records.jsonl")
    if learned is not None:
        acc0, acc1, loss0, loss1 = learned
        print(
            f"  the supernet learned: training accuracy {100 * acc0:.1f}% -> {100 * acc1:.1f}%, "
            f"validation loss (α's objective) {loss0:.3f} -> {loss1:.3f} (first -> last epoch)"
        )
    moved = _alpha_moved(out / "search" / "records.jsonl")
    if moved is not None:
        low, high, k = moved
        print(
            f"  α after the search: op weights {low:.3f} to {high:.3f} across edges "
            f"(uniform: {1 / k:.3f}; the further from it, the surer the search; "
            f"α learning rate {args.alpha_lr:g})"
        )
    trained = run_train(
        found["arch"],
        "digits",
        seed=args.seed,
        epochs=args.train_epochs,
        out=out / "train",
        progress=progress("train on digits", "epochs"),
    )
    print(
        f"  from scratch  test accuracy {100 * trained['test_acc']:.2f}% on the digits "
        f"({trained['epochs']} epochs, {trained['train_s']}s)"
    )
    summary: dict[str, Any] = {"search": found, "train": trained}
    if table is not None and args.reference:
        best = _best_cell(table)
        reference = run_train(
            best,
            "digits",
            seed=args.seed,
            epochs=args.train_epochs,
            out=out / "reference",
            progress=progress("train the table's best cell on digits", "epochs"),
        )
        summary["reference"] = {"arch": best, **reference}
        gap = 100 * (reference["test_acc"] - trained["test_acc"])
        print(
            f"  the table's best CIFAR-10 cell {best}, trained alike on the digits: test "
            f"accuracy {100 * reference['test_acc']:.2f}% ({gap:+.2f} points over the found "
            "cell)"
        )
        print(
            "  "
            + (
                "on the digits the found cell is as good as the best (within 1 point): the "
                "search did what its data can tell, and the rank on CIFAR-10 below is how far "
                "a proxy this small transfers"
                if gap < 1.0
                else f"the search left {gap:.1f} points on its own data: try more --epochs"
            )
        )
    if table is None:
        print(
            "  (no NB201 table: set JNAS_NASBENCH_DIR or --nasbench to add the cell's "
            "published accuracies and a search on the table)"
        )
    else:
        print("  NB201 table, the found cell after 200 epochs:")
        for name, value in found["nb201"].items():
            print(f"    {name:32s} {value:6.2f}")
        rank = _percentile(table, found["nb201"]["cifar10/test_acc/200"])
        summary["percentile_cifar10"] = rank
        print(
            f"  the found cell beats {rank:.1f}% of the 15,625 NB201 cells on CIFAR-10 "
            f"(the best: {_best(table):.2f}%; the digits are a proxy task, CIFAR-10 is not "
            "searched here)"
        )
        rows = _table_search(table, out, args.seed, args.seeds)
        summary["table_search"] = rows
        print(
            f"  on the table, {args.seeds} seeds, 12,000 simulated s, CIFAR-10 test "
            "accuracy of the final incumbent:"
        )
        for name, r in rows.items():
            print(f"    {name:24s} {r['mean']:6.2f} +- {r['std']:4.2f}")
    summary["wall_s"] = round(time.perf_counter() - start, 1)
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(
        f"wrote {out}/ (search/, train/, "
        f"{'reference/, ' if 'reference' in summary else ''}summary.json"
        f"{', regret.png' if table is not None else ''}) in {summary['wall_s']}s"
    )
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    """`jnas demo`: its flags, its choices from the registries."""
    demo = sub.add_parser(
        "demo",
        help="the main job: a one-shot search on the bundled digits, end to end",
        description="Search the NB201 cell space with a one-shot method on scikit-learn's "
        "digits, derive the cell, train it from scratch and report its test accuracy; with "
        "the NB201 table, also report the cell's published CIFAR-10/100/ImageNet16 "
        "accuracies and run regularized evolution vs random search on the table.",
    )
    demo.add_argument(
        "--out", default=None, help="run folder (default: a new folder out/demo/<date-time>)"
    )
    demo.add_argument(
        "--method",
        default="darts-v1",
        choices=METHOD_NAMES,
        help="one-shot method (default: darts-v1)",
    )
    demo.add_argument("--epochs", type=positive_int, default=10, help="search epochs (default: 10)")
    demo.add_argument(
        "--train-epochs",
        type=positive_int,
        default=20,
        help="epochs of the final training (default: 20)",
    )
    demo.add_argument(
        "--seeds", type=positive_int, default=100, help="seeds of the table search (default: 100)"
    )
    demo.add_argument(
        "--alpha-lr",
        type=positive_float,
        default=DEMO_ALPHA_LR,
        help=f"Adam's learning rate on α (default: {DEMO_ALPHA_LR:g}; NB201's 3e-4 is set for "
        "19,550 steps, the demo's search has ~100)",
    )
    demo.add_argument(
        "--reference",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also train the table's best CIFAR-10 cell on the digits alike, to show what "
        "the search could win on its own data (with the table; default: on)",
    )
    demo.add_argument("--nasbench", default=None, help=NASBENCH_HELP)
    demo.add_argument("--seed", type=int, default=0, help="PRNG seed (default: 0)")
    demo.set_defaults(func=cmd_demo)
