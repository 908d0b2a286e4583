"""Multi-objective search on NB201 (#19 §3): NSGA-II for accuracy against FLOPs, judged by
the hypervolume of what it evaluated against the true Pareto front (`pareto_fronts.json`).

    python experiments/pareto_nb201.py --seeds 100 --out benchmarks/results

Per dataset: NSGA-II (population 20, 10 generations = 200 evaluations) maximises the
200-epoch validation accuracy and minimises FLOPs; random search draws 200 cells
(`bench.pareto_protocol`, which `jnas bench pareto` runs too). Each run's evaluated cells
give a front in (test error %, FLOPs M); its hypervolume (reference point: the space's
median error and largest FLOPs, so that the accurate half of the front counts) is divided
by that of the whole table's front, the published true front's within 1e-4
(`table_front_hv_ratio`). Writes `pareto_nb201.json`.
"""

from __future__ import annotations

import argparse
import json
import pathlib

import jax
import numpy as np

from jnas import bench, search

DATASETS = {  # name in pareto_fronts.json -> (searched dataset, reported dataset)
    "NAS201_CIFAR-10|TestAcc|FLOPs": ("cifar10-valid", "cifar10"),
    "NAS201_CIFAR-100|TestAcc|FLOPs": ("cifar100", "cifar100"),
    "NAS201_ImageNet16-120|TestAcc|FLOPs": ("ImageNet16-120", "ImageNet16-120"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=100)
    parser.add_argument("--population", type=int, default=20)
    parser.add_argument("--generations", type=int, default=10)
    parser.add_argument("--nasbench", default=None)
    parser.add_argument("--out", default="benchmarks/results")
    args = parser.parse_args()
    table = bench.load_nb201(args.nasbench)
    fronts = json.loads(
        (bench.default_dir() if args.nasbench is None else pathlib.Path(args.nasbench))
        .joinpath("pareto_fronts.json")
        .read_text()
    )
    budget = args.population * args.generations
    result: dict = {"seeds": args.seeds, "evaluations": budget, "datasets": {}}
    for name, (searched, reported) in DATASETS.items():
        run = bench.pareto_protocol(
            search.nsga2(table.space, args.population),
            table,
            searched=searched,
            reported=reported,
            cost="flops_M",
            key=jax.random.key(0),
            num_seeds=args.seeds,
            generations=args.generations,
        )
        true = np.asarray(fronts[name]["points"])
        true_hv = bench.hypervolume(true[:, 0], true[:, 1], tuple(run["reference_point"]))
        result["datasets"][name] = {
            "true_front_hv": true_hv,
            "table_front_hv_ratio": round(run["table_front_hv"] / true_hv, 5),
            "hv_ratio": {
                ("nsga2" if k == "searcher" else k): {
                    "mean": round(v["mean"], 4),
                    "std": round(v["std"], 4),
                }
                for k, v in run["hv_ratio"].items()
            },
            "distinct_cells_nsga2": run["distinct_cells"],
            "welch_nsga2_vs_rs": {
                "t": round(run["welch_vs_random_search"]["t"], 2),
                "p": run["welch_vs_random_search"]["p"],
            },
        }
        print(name, json.dumps(result["datasets"][name]), flush=True)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "pareto_nb201.json").write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
