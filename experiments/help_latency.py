"""HELP's meta-learned latency predictor on the NB201 latency tables (#19 §3).

    python experiments/help_latency.py --seeds 5 --out benchmarks/results

HELP's split (meta-train 9 device configurations, meta-validation 4 for model selection,
meta-test 6), 10 reference architectures measured on each unseen device, Spearman's rho
between predicted and measured latency over all 15,625 cells. Beside it: the FLOPs
baseline (CIFAR-10 FLOPs of the table) and the same MLP trained from scratch on the same 10
measurements. Then latency-constrained search on each meta-test device: the most accurate
cell on CIFAR-100 (the table's 200-epoch test accuracy) whose *predicted* latency is under
a bound (the device's 25th and 50th latency percentile, and MetaD2A+HELP's 11 ms on
gold_6226), judged by its true latency and accuracy against the true constrained optimum.
Writes `help_latency.json`.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import time

import jax
import jax.numpy as jnp
import numpy as np

from jnas import bench, transfer
from jnas.predictors import spearman


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--nasbench", default=None)
    parser.add_argument("--out", default="benchmarks/results")
    args = parser.parse_args()
    latency = bench.load_latency(args.nasbench)
    nb201 = bench.load_nb201(args.nasbench)
    flops = nb201.column("cifar10", "flops_M", None)
    acc = nb201.column("cifar100", "test_acc", 200)
    test = transfer.HELP_SPLIT["meta_test"]
    x = transfer.architecture_features(latency)
    y = transfer.device_latencies(latency, test)
    rows: dict[str, list[list[float]]] = {"help": [], "scratch": []}
    search: list[dict] = []
    start = time.perf_counter()
    for seed in range(args.seeds):
        key = jax.random.key(seed)
        predictor, history = transfer.meta_train_latency(key, latency, steps=args.steps)
        rows["help"].append(transfer.evaluate_latency(predictor, latency, test)["spearman"])
        refs = predictor.references
        scratch = jax.vmap(
            lambda yd, refs=refs, seed=seed: transfer.fit_latency_from_scratch(
                jax.random.key(seed), x, refs, yd[refs]
            )
        )(y)
        rows["scratch"].append([float(v) for v in jax.vmap(spearman)(scratch, y)])
        pred = jax.vmap(lambda yd, p=predictor: transfer.adapt_latency(p, x, yd[p.references]))(y)
        for d, device in enumerate(test):
            true = np.asarray(y[d])
            bounds = {"p25": float(np.percentile(true, 25)), "p50": float(np.percentile(true, 50))}
            if device == "gold_6226":
                bounds["11ms"] = 11.0
            for name, bound in bounds.items():
                found = int(transfer.constrained_best(pred[d], acc, bound))
                best = int(transfer.constrained_best(jnp.asarray(true), acc, bound))
                search.append(
                    {
                        "seed": seed,
                        "device": device,
                        "bound": name,
                        "bound_ms": round(bound, 3),
                        "found_acc": float(acc[found]) if found >= 0 else None,
                        "found_true_ms": float(true[found]) if found >= 0 else None,
                        "within_bound": bool(found >= 0 and true[found] <= bound),
                        "optimum_acc": float(acc[best]),
                    }
                )
        print(
            f"seed {seed}: HELP mean Spearman {np.mean(rows['help'][-1]):.3f}, "
            f"from scratch {np.mean(rows['scratch'][-1]):.3f} "
            f"(validation history {[round(h['valid_spearman'], 3) for h in history]})",
            flush=True,
        )
    flops_rho = [float(spearman(flops, y[d])) for d in range(len(test))]
    result: dict = {
        "split": transfer.HELP_SPLIT,
        "references": 10,
        "seeds": args.seeds,
        "meta_steps": args.steps,
        "wall_s": round(time.perf_counter() - start, 1),
        "published_mean": transfer.HELP_PUBLISHED,
        "spearman": {},
    }
    for name, per_seed in rows.items():
        a = np.asarray(per_seed)  # [seeds, devices]
        means = a.mean(1)
        result["spearman"][name] = {
            "per_device_mean": dict(zip(test, a.mean(0).round(4).tolist(), strict=True)),
            "per_device_std": dict(zip(test, a.std(0).round(4).tolist(), strict=True)),
            "mean": round(float(means.mean()), 4),
            "std_over_seeds": round(float(means.std()), 4),
        }
    result["spearman"]["flops"] = {
        "per_device": dict(zip(test, np.round(flops_rho, 4).tolist(), strict=True)),
        "mean": round(float(np.mean(flops_rho)), 4),
    }
    result["constrained_search"] = search
    gap = [s["optimum_acc"] - (s["found_acc"] or 0.0) for s in search if s["within_bound"]]
    result["constrained_summary"] = {
        "within_bound": f"{sum(s['within_bound'] for s in search)}/{len(search)}",
        "mean_accuracy_gap_when_within": round(float(np.mean(gap)), 3) if gap else None,
    }
    print(json.dumps({k: result[k] for k in ("spearman", "constrained_summary")}, indent=1))
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "help_latency.json").write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
