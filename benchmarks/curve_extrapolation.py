"""Learning-curve extrapolation on real curves (#18 §2): NAS-Bench-NLP, 341 recurrent cells x
50 epochs of WikiText-2 validation loss (`nbnlp_wt2.npz`).

1. Ranking: from the first 5 / 10 / 20 epochs, predict the epoch-50 validation loss; Spearman
   and Kendall tau against the true one, for the last observed value (the baseline), Domhan et
   al.'s parametric families (`jnas.predictors.extrapolate_curve`, all curves in one vmapped
   program) and Baker et al.'s nu-SVR (`jnas.predictors.fit_curve_svr`), the SVR
   cross-validated over recipes (5 folds grouped by recipe id; recipe 1002429 ran twice).
2. Early stopping in a simulated random search over the table: each seed draws `--runs` runs
   in random order and trains them one after another; at the check epochs a run stops when
   P(final loss < incumbent's) < `--threshold` (Domhan et al.'s rule, on the Domhan forecast and
   on the SVR's out-of-fold forecast). Reported: the fraction of epochs (and of GPU hours,
   from the table's per-epoch times) saved and the final regret against training every run.

    python benchmarks/curve_extrapolation.py  # ~2 min on 2 CPU cores
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import time

import jax
import jax.numpy as jnp
import numpy as np
from scipy import stats
from sklearn.model_selection import GroupKFold

from jnas.predictors import extrapolate_curve, fit_curve_svr, probability_better

HERE = pathlib.Path(__file__).parent
OPS = (
    "linear",
    "blend",
    "elementwise_prod",
    "elementwise_sum",
    "activation_tanh",
    "activation_sigm",
    "activation_leaky_relu",
)


def recipe_features(recipes: np.ndarray, num_params: np.ndarray) -> np.ndarray:
    """Architecture features of NAS-Bench-NLP recipes: op counts, nodes, recurrent inputs,
    hidden outputs, log parameter count."""
    rows = []
    for r in recipes:
        g = json.loads(str(r))
        inputs = [i for n in g.values() for i in n["input"]]
        rows.append(
            [sum(n["op"] == o for n in g.values()) for o in OPS]
            + [len(g), sum(i.startswith("h_prev") for i in inputs)]
            + [sum(k.startswith("h_new") for k in g)]
        )
    return np.c_[np.asarray(rows, np.float64), np.log(num_params)]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--seeds", type=int, default=100)
    p.add_argument("--runs", type=int, default=100, help="runs trained per simulated search")
    p.add_argument("--threshold", type=float, default=0.05)
    p.add_argument("--out", default=str(HERE / "results" / "curve_extrapolation_nbnlp.json"))
    args = p.parse_args()
    root = pathlib.Path(os.environ.get("JNAS_NASBENCH_DIR", HERE.parent.parent / "shared/nasbench"))
    d = np.load(root / "nbnlp_wt2.npz")
    ok = d["status"] == "OK"
    v = d["valid_loss"][ok]
    times = d["epoch_time_s"][ok]
    groups = d["recipe_id"][ok]
    arch = recipe_features(d["recipe"][ok], d["num_params"][ok])
    final = v[:, -1]
    horizon = v.shape[1]
    n = len(v)
    print(f"{n} runs x {horizon} epochs")

    forecast = jax.jit(jax.vmap(lambda y, o: extrapolate_curve(y, o, horizon)))
    ranking, forecasts, svr_oof = {}, {}, {}
    for k in (5, 10, 20):
        obs = np.arange(horizon)[None, :] < k
        obs = np.broadcast_to(obs, v.shape)
        t0 = time.perf_counter()
        fc = forecast(jnp.asarray(np.where(obs, v, 0.0), jnp.float32), jnp.asarray(obs))
        fc = jax.tree.map(np.asarray, fc)
        t_domhan = time.perf_counter() - t0
        forecasts[k] = fc
        t0 = time.perf_counter()
        pred = {"svr": np.zeros(n), "svr_arch": np.zeros(n)}
        std = np.zeros(n)
        for i, (tr, te) in enumerate(GroupKFold(5).split(v, groups=groups)):
            key = jax.random.key(i)
            m = fit_curve_svr(key, v[tr, :k], final[tr])
            out = m.predict(v[te, :k])
            pred["svr"][te], std[te] = out.mean, out.std
            pred["svr_arch"][te] = (
                fit_curve_svr(key, v[tr, :k], final[tr], arch[tr]).predict(v[te, :k], arch[te]).mean
            )
        t_svr = time.perf_counter() - t0
        svr_oof[k] = (pred["svr"], std)
        row = {}
        for name, x in (
            ("last_value", v[:, k - 1]),
            ("domhan", fc.mean),
            ("svr", pred["svr"]),
            ("svr_arch", pred["svr_arch"]),
        ):
            good = np.isfinite(x)
            row[name] = {
                "spearman": float(stats.spearmanr(x[good], final[good])[0]),
                "kendall": float(stats.kendalltau(x[good], final[good])[0]),
                "mae": float(np.mean(np.abs(x[good] - final[good]))),
                "nan": int((~good).sum()),
            }
        z = np.abs(final - fc.mean) / fc.std
        row["domhan"]["coverage_95"] = float(np.mean(z < 1.96))
        row["svr"]["coverage_95"] = float(np.mean(np.abs(final - pred["svr"]) / std < 1.96))
        row["seconds"] = {"domhan_all_curves": t_domhan, "svr_5_folds_2_models": t_svr}
        ranking[k] = row
        print(
            f"epochs {k:2d}: Spearman last {row['last_value']['spearman']:.3f}  "
            f"Domhan {row['domhan']['spearman']:.3f}  SVR {row['svr']['spearman']:.3f}  "
            f"SVR+arch {row['svr_arch']['spearman']:.3f}   (Kendall "
            f"{row['last_value']['kendall']:.3f} / {row['domhan']['kendall']:.3f} / "
            f"{row['svr']['kendall']:.3f} / {row['svr_arch']['kendall']:.3f})"
        )

    # P(final < c) for each run at each check, as a function of the incumbent c.
    def p_domhan(k, idx, c):
        fc = jax.tree.map(lambda a: a[idx], forecasts[k])
        return float(probability_better(fc, c))

    def p_svr(k, idx, c):
        mean, std = svr_oof[k]
        return float(stats.norm.cdf((c - mean[idx]) / std[idx]))

    best_all = final.min()
    sims = {}
    for name, prob in (("domhan", p_domhan), ("svr", p_svr)):
        rng = np.random.default_rng(0)
        regret_full, regret_stop, epochs_used, hours_used, stopped, same = [], [], [], [], [], []
        for _ in range(args.seeds):
            order = rng.permutation(n)[: args.runs]
            inc = np.inf
            used = hours = 0.0
            n_stop = 0
            for idx in order:
                stop_at = horizon
                if np.isfinite(inc):
                    for k in (5, 10, 20):
                        if prob(k, idx, inc) < args.threshold:
                            stop_at = k
                            break
                used += stop_at
                hours += times[idx, :stop_at].sum() / 3600
                if stop_at == horizon:
                    inc = min(inc, final[idx])
                else:
                    n_stop += 1
            full = final[order].min()
            regret_full.append(full - best_all)
            regret_stop.append(inc - best_all)
            epochs_used.append(used / (args.runs * horizon))
            hours_used.append(hours / (times[order].sum() / 3600))
            stopped.append(n_stop / args.runs)
            same.append(inc == full)
        sims[name] = {
            "regret_train_all_mean": float(np.mean(regret_full)),
            "regret_early_stop_mean": float(np.mean(regret_stop)),
            "same_final_incumbent": float(np.mean(same)),
            "epochs_saved": float(1 - np.mean(epochs_used)),
            "gpu_hours_saved": float(1 - np.mean(hours_used)),
            "runs_stopped": float(np.mean(stopped)),
            "welch_t_p_regret": float(stats.ttest_ind(regret_full, regret_stop, equal_var=False)[1])
            if np.std(regret_stop) + np.std(regret_full) > 0
            else 1.0,
        }
        s = sims[name]
        print(
            f"early stopping ({name}, checks 5/10/20, threshold {args.threshold}): "
            f"{s['epochs_saved']:.1%} epochs / {s['gpu_hours_saved']:.1%} GPU hours saved, "
            f"{s['runs_stopped']:.1%} runs stopped; final regret {s['regret_early_stop_mean']:.4f} "
            f"vs {s['regret_train_all_mean']:.4f} training all (same incumbent in "
            f"{s['same_final_incumbent']:.0%} of {args.seeds} seeds)"
        )
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "table": "nbnlp_wt2.npz (NAS-Bench-NLP, WikiText-2), status OK runs",
                "runs": n,
                "target": "validation loss at epoch 50 (nats)",
                "ranking": {str(k): r for k, r in ranking.items()},
                "early_stopping": {
                    "seeds": args.seeds,
                    "runs_per_search": args.runs,
                    "threshold": args.threshold,
                    "check_epochs": [5, 10, 20],
                    **sims,
                },
                "machine": f"{os.cpu_count()} CPU cores, jax {jax.__version__}",
            },
            indent=1,
        )
    )
    print("wrote", out)


if __name__ == "__main__":
    main()
