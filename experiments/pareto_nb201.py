"""Multi-objective search on NB201 (#19 §3): NSGA-II for accuracy against FLOPs, judged by
the hypervolume of what it evaluated against the true Pareto front (`pareto_fronts.json`).

    python experiments/pareto_nb201.py --seeds 100 --out benchmarks/results

Per dataset: NSGA-II (population 20, 10 generations = 200 evaluations) maximises the
200-epoch validation accuracy and minimises FLOPs; random search draws 200 cells. Each
run's evaluated cells give a front in (test error %, FLOPs M); its hypervolume (reference
point: the space's median error and largest FLOPs, so that the accurate half of the front
counts) is divided by the hypervolume of the published true front. Writes `pareto_nb201.json`.
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
        flops = np.asarray(table.column(reported, "flops_M", None))
        error = 100.0 - np.asarray(table.column(reported, "test_acc", 200))
        ref = (float(np.nanmedian(error)), float(np.nanmax(flops)))
        true = np.asarray(fronts[name]["points"])
        true_hv = bench.hypervolume(true[:, 0], true[:, 1], ref)
        table_hv = bench.hypervolume(error, flops, ref)
        objectives = [(searched, "valid_acc", 200, 1.0), (reported, "flops_M", None, -1.0)]
        rows = bench.simulate_pareto(
            search.nsga2(table.space, args.population),
            table,
            objectives,
            key=jax.random.key(0),
            num_seeds=args.seeds,
            generations=args.generations,
        )
        rand = np.asarray(
            jax.random.randint(jax.random.key(1), (args.seeds, budget), 0, table.num_rows)
        )
        ratio = {
            k: np.asarray([bench.hypervolume(error[r], flops[r], ref) / true_hv for r in rs])
            for k, rs in (("nsga2", rows), ("random search", rand))
        }
        t, p = bench.welch_test(ratio["nsga2"], ratio["random search"])
        result["datasets"][name] = {
            "true_front_hv": true_hv,
            "table_front_hv_ratio": round(table_hv / true_hv, 5),
            "hv_ratio": {
                k: {"mean": round(float(v.mean()), 4), "std": round(float(v.std()), 4)}
                for k, v in ratio.items()
            },
            "distinct_cells_nsga2": float(np.mean([len(set(r.tolist())) for r in rows])),
            "welch_nsga2_vs_rs": {"t": round(t, 2), "p": p},
        }
        print(name, json.dumps(result["datasets"][name]), flush=True)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "pareto_nb201.json").write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
