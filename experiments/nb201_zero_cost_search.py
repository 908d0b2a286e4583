"""Zero-cost warm starts inside search, on the NB201 Table 5 protocol (#18 §1).

    python experiments/nb201_zero_cost_search.py --seeds 500 --model-seeds 200

Each searcher runs with and without `search.zero_cost_warmup`: its first 10 candidates are
the best of 1,000 random cells by jnas' SynFlow (the scores of all 15,625 cells in
`benchmarks/results/zero_cost_nb201_cpu.npz`, from `benchmarks/zero_cost_nb201.py`), the
scoring charged to the simulated clock (1,000 x 18 ms measured = 18 s). Protocol of
`nb201_table5.py`: CIFAR-10 train/valid split, 12-epoch validation accuracy, each query
charged its 12-epoch training time, 12,000 simulated seconds; the final incumbent's 200-epoch
CIFAR-10 test accuracy is compared by Welch's t test (one-sided, warm > plain), and the mean
test accuracy reached by a quarter and half of the budget is reported too.
"""

from __future__ import annotations

import argparse
import os

os.environ["XLA_FLAGS"] = (  # see nb201_table5.py: vmapped GP searches on XLA:CPU
    os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false"
).strip()
import json
import pathlib
import time

import jax
import jax.numpy as jnp
import numpy as np

from jnas import bench, search
from jnas.spaces import NB201

HERE = pathlib.Path(__file__).parent
SCORE_SECONDS = 0.018  # synflow per cell, measured over the whole space (281 s / 15,625)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--seeds", type=int, default=500)
    p.add_argument("--model-seeds", type=int, default=200)
    p.add_argument("--candidates", type=int, default=1000)
    p.add_argument("--budget", type=float, default=12000)
    p.add_argument("--nasbench", default=None)
    p.add_argument("--out", default=str(HERE.parent / "benchmarks" / "results"))
    p.add_argument(
        "--features-only",
        action="store_true",
        help="only BO and BANANAS with SynFlow as a surrogate feature (rows added to the JSON)",
    )
    args = p.parse_args()
    space = NB201()
    table = bench.load_nb201(args.nasbench)
    obj = bench.objective(table, dataset="cifar10-valid", metric="valid_acc", epochs=12)
    scores = np.load(HERE.parent / "benchmarks" / "results" / "zero_cost_nb201_cpu.npz")
    column = np.full(space.size, np.nan, np.float32)
    with np.errstate(divide="ignore"):  # cells without a parametric path score 0: -inf, last
        column[scores["rows"]] = np.log(scores["synflow"])  # log: float32-safe, same order
    col = jnp.asarray(column)

    def synflow(archs):
        return col[jax.vmap(space.index)(archs)]

    finite = np.isfinite(column)
    clipped = np.where(finite, column, column[finite].min())  # no parametric path: the lowest
    z = jnp.asarray((clipped - clipped.mean()) / clipped.std())

    def synflow_feature(arch):  # one cell -> [1], standardised over the space
        return z[space.index(arch)][None]

    if args.features_only:
        path = pathlib.Path(args.out) / "nb201_zero_cost_search.json"
        saved = json.loads(path.read_text())
        makers = {
            "BO (GP, EI)": search.bayesian_optimization,  # mixed kernel: RBF on the feature
            "BANANAS": search.bananas,  # the feature is one more MLP input
        }
        for label, make in makers.items():
            finals = {}
            for use in (False, True):
                searcher = make(space, features=synflow_feature if use else None)
                t0 = time.perf_counter()
                sim = bench.simulate(
                    searcher,
                    obj,
                    key=jax.random.key(0),
                    num_seeds=args.model_seeds,
                    budget_s=args.budget,
                    chunk=25,
                )
                test = sim.report(table, dataset="cifar10", metric="test_acc", epochs=200)
                grid = np.asarray([args.budget / 4, args.budget / 2, args.budget])
                on_grid = sim.on_grid(test, grid)
                finals[use] = test[:, -1]
                row = {
                    "searcher": label + (" + SynFlow feature" if use else " (features run)"),
                    "warm_start": False,
                    "seeds": args.model_seeds,
                    "test_acc_at_quarter_half_full": [
                        round(float(np.nanmean(on_grid[:, j])), 3) for j in range(3)
                    ],
                    "test_acc_final_std": round(float(np.nanstd(test[:, -1])), 3),
                    "wall_s": round(time.perf_counter() - t0, 1),
                }
                print(row, flush=True)
                saved["rows"] = [r for r in saved["rows"] if r["searcher"] != row["searcher"]]
                saved["rows"].append(row)
            t, pval = bench.welch_test(finals[True], finals[False])
            saved["rows"][-1]["vs_plain"] = {"welch_t": round(t, 2), "p_one_sided": pval}
            print(f"{label} + SynFlow feature vs plain: t={t:.2f} p={pval:.3g}")
            path.write_text(json.dumps(saved, indent=1))
        return

    setup = args.candidates * SCORE_SECONDS
    rows = []
    for short in ("rs", "rea", "ls", "bo", "bananas"):
        entry = search.REGISTRY[short]
        seeds = args.model_seeds if entry.model_based else args.seeds
        finals = {}
        for warm in (False, True):
            searcher = entry.make(space)
            if warm:
                searcher = search.zero_cost_warmup(
                    searcher, space, synflow, candidates=args.candidates, warm=10
                )
            t0 = time.perf_counter()
            sim = bench.simulate(
                searcher,
                obj,
                key=jax.random.key(0),
                num_seeds=seeds,
                budget_s=args.budget,
                chunk=25 if entry.model_based else seeds,
                setup_s=setup if warm else 0.0,
            )
            test = sim.report(table, dataset="cifar10", metric="test_acc", epochs=200)
            grid = np.asarray([args.budget / 4, args.budget / 2, args.budget])
            on_grid = sim.on_grid(test, grid)
            finals[warm] = test[:, -1]
            rows.append(
                {
                    "searcher": entry.label,
                    "warm_start": warm,
                    "seeds": seeds,
                    "test_acc_at_quarter_half_full": [
                        round(float(np.nanmean(on_grid[:, j])), 3) for j in range(3)
                    ],
                    "test_acc_final_std": round(float(np.nanstd(test[:, -1])), 3),
                    "wall_s": round(time.perf_counter() - t0, 1),
                }
            )
            print(rows[-1], flush=True)
        t, pval = bench.welch_test(finals[True], finals[False])
        rows[-1]["vs_plain"] = {"welch_t": round(t, 2), "p_one_sided": pval}
        print(f"{entry.label}: warm vs plain t={t:.2f} p={pval:.3g}", flush=True)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    meta = {
        "protocol": "NB201 cifar10-valid valid_acc at 12 epochs, cost train_time_s, "
        f"{args.budget:.0f} s; report cifar10 test_acc at 200 epochs",
        "proxy": "jnas SynFlow (benchmarks/results/zero_cost_nb201_cpu.npz)",
        "candidates": args.candidates,
        "warm": 10,
        "setup_s": setup,
        "device": jax.default_backend(),
    }
    (out / "nb201_zero_cost_search.json").write_text(
        json.dumps({"meta": meta, "rows": rows}, indent=1)
    )
    print("wrote", out / "nb201_zero_cost_search.json")


if __name__ == "__main__":
    main()
