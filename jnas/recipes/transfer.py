"""Learning to search across tasks, as whole runs (`jnas transfer` and `experiments/`).

- `run_latency`: HELP's latency predictor meta-trained over HELP's devices, scored on the
  unseen ones beside the FLOPs baseline and the same network trained from scratch, then
  used for latency-constrained search; writes `summary.json` and `predictor.npz`.
- `run_warm_start`: one leave-one-dataset-out rotation: a portfolio from the source
  datasets in front of random search and regularized evolution on the target, and a
  REINFORCE policy meta-learned on them, against the same searchers from scratch; writes `summary.json` and `regret.png`.
"""

from __future__ import annotations

import functools
import json
import math
import pathlib
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jnas import bench, search, transfer
from jnas.predictors import spearman

SPACES = ("nb201", "nats_size")


def _space_tasks(space: str, nasbench: Any) -> tuple[Any, dict, dict, float]:
    """(table, target tasks, source tasks, budget) of a space's dataset suite."""
    if space == "nb201":
        # the sources' tables: their full 200-epoch results; the target: NB201's protocol
        return (
            bench.load_nb201(nasbench),
            transfer.nb201_tasks(12),
            transfer.nb201_tasks(200),
            12_000.0,
        )
    if space == "nats_size":
        tasks = transfer.nats_size_tasks()
        return bench.load_nats_sss(nasbench), tasks, tasks, 100.0
    raise ValueError(f"run_warm_start: `space` must be one of {SPACES}; got {space!r}")


def run_warm_start(
    space: str,
    target: str,
    *,
    seeds: int = 500,
    portfolio: int = 10,
    seed: int = 0,
    nasbench: Any = None,
    out: str | pathlib.Path | None = None,
    surrogates: bool = True,
    only: Sequence[str] | None = None,
    rgpe_joint: bool = True,
) -> dict:
    """Leave `target` out of the space's datasets: a `portfolio`-cell zero-shot portfolio
    from the others' tables, evaluated first by random search and regularized evolution
    on the target, evolution within the box of the choices the others' 5 best cells make
    (`transfer.decision_box`), random search drawing from the choices of the others' top
    1% (`transfer.quantile_prior`), and REINFORCE started from logits meta-learned with
    Reptile on the others' tables (`transfer.meta_train_policy`), and, with `surrogates`
    (the heavier meta-learners), REINFORCE from logits meta-learned by MAML with exact
    policy gradients (100 meta-steps through 50 inner steps), REINFORCE with Zoph & Le's LSTM
    controller from scratch and from one meta-learned alike (100 meta-steps through 20 inner
    steps of REINFORCE's learning rate, the exact sum over every cell's probability), and
    Bayesian optimisation with surrogates meta-learned on 100 random evaluations of each
    source (RGPE's ranking-weighted GP ensemble; FSBO's deep-kernel GP, 1,000 meta-training
    steps, 20 fine-tuning steps per proposal, alone and after the portfolio; both again
    on the first 100 evaluations of a regularized-evolution search of each source, what
    earlier searches leave behind) against a GP from scratch; each searches the target
    (its 12-epoch validation accuracy charged its training time, 12,000 simulated s; NATS
    size: 100 evaluations; `rgpe_joint`: RGPE's source draws joint, as the paper). Returns each
    searcher's final mean +- std of the target's reported metric, the share of the budget
    at which its mean incumbent reaches plain evolution's final mean, and Welch's t test of
    the warm-started evolution at a quarter of the budget against evolution at all of it.
    `only`: run just these searchers (by name) beside regularized evolution, the reference."""
    table, tasks, source_tasks, budget = _space_tasks(space, nasbench)
    if target not in tasks:
        raise ValueError(f"--target must be one of {list(tasks)}; got {target!r}")
    if seeds < 1 or portfolio < 1:
        raise ValueError(f"seeds and portfolio must be >= 1; got {seeds} and {portfolio}")
    sources = tuple(n for n in tasks if n != target)
    task = tasks[target]
    obj = task.objective(table)
    source_scores = transfer.suite_scores(table, [source_tasks[s] for s in sources])
    rows = transfer.portfolio(source_scores, portfolio)
    sp = table.space
    archs = sp.from_index(rows)
    logits = transfer.meta_train_policy(jax.random.key(seed + 1), sp, source_scores)
    box: Any = transfer.decision_box(sp, source_scores, top=5)  # a Space by delegation
    prior: Any = transfer.quantile_prior(sp, source_scores, quantile=0.01)
    makers: dict[str, Callable[[], search.Searcher]] = {
        "random search": lambda: search.random_search(sp),
        "regularized evolution": lambda: search.regularized_evolution(sp),
        "RS + portfolio": lambda: search.warm_start(search.random_search(sp), sp, archs),
        "REA + portfolio": lambda: search.warm_start(search.regularized_evolution(sp), sp, archs),
        "REA, bounding box": lambda: search.regularized_evolution(box),
        "RS, quantile prior": lambda: search.random_search(prior),
        "REINFORCE": lambda: search.reinforce(sp),
        "REINFORCE, Reptile-meta-learned": lambda: search.reinforce(sp, initial_policy=logits),
    }
    if surrogates:  # meta-trained when a searcher that needs them is made
        maml = functools.cache(
            lambda: transfer.meta_train_policy(
                jax.random.key(seed + 4), sp, source_scores, method="maml", meta_steps=100
            )
        )
        data = functools.cache(
            lambda: transfer.source_data(
                jax.random.key(seed + 2), sp, source_scores, num_points=100
            )
        )
        kernel = functools.cache(
            lambda: transfer.meta_train_deep_kernel(jax.random.key(seed + 3), data(), steps=1000)[0]
        )
        fsbo = lambda: transfer.fsbo(sp, kernel(), finetune_steps=20)
        searched = functools.cache(  # what an earlier search on each source evaluated
            lambda: transfer.source_data(
                jax.random.key(seed + 6),
                sp,
                source_scores,
                num_points=100,
                searcher=search.regularized_evolution(sp),
            )
        )
        kernel_searched = functools.cache(
            lambda: transfer.meta_train_deep_kernel(
                jax.random.key(seed + 3), searched(), steps=1000
            )[0]
        )
        maml_lstm = functools.cache(
            lambda: transfer.meta_train_policy(
                jax.random.key(seed + 5),
                sp,
                source_scores,
                method="maml",
                controller="lstm",
                meta_steps=100,
                inner_evals=20,
                inner_lr=0.01,  # REINFORCE's own step: 0.05 left a poor start on CIFAR-10
            )
        )
        makers |= {
            "REINFORCE, MAML-meta-learned (exact)": lambda: search.reinforce(
                sp, initial_policy=maml()
            ),
            "REINFORCE (LSTM)": lambda: search.reinforce(sp, controller="lstm"),
            "REINFORCE (LSTM), MAML-meta-learned (exact)": lambda: search.reinforce(
                sp, controller="lstm", initial_policy=maml_lstm()
            ),
            "BO (GP)": lambda: search.bayesian_optimization(sp, encoding="one_hot", max_points=100),
            "BO, RGPE": lambda: transfer.rgpe(sp, data(), joint=rgpe_joint),
            "BO, FSBO": fsbo,
            "BO, RGPE (sources: REA searches)": lambda: transfer.rgpe(
                sp, searched(), joint=rgpe_joint
            ),
            "BO, FSBO (sources: REA searches)": lambda: transfer.fsbo(
                sp, kernel_searched(), finetune_steps=20
            ),
            "BO, FSBO + portfolio": lambda: search.warm_start(fsbo(), sp, archs),
        }
    run = list(makers)
    if only is not None:
        unknown = sorted(set(only) - set(makers))
        if unknown:
            raise ValueError(f"run_warm_start: unknown searchers {unknown}; expected of {run}")
        run = [
            "regularized evolution",
            *(n for n in run if n in only and n != "regularized evolution"),
        ]
    key = jax.random.key(seed)
    sims = {
        name: bench.simulate(makers[name](), obj, key=key, num_seeds=seeds, budget_s=budget)
        for name in run
    }
    quarter = bench.simulate(
        makers["REA + portfolio"](), obj, key=key, num_seeds=seeds, budget_s=budget / 4
    )
    report = {"dataset": task.report_dataset, "metric": task.report_metric}
    report["epochs"] = task.report_epochs
    curves = bench.regret_curves(sims, table, **report)
    truth = np.asarray(task.truth(table))
    best = float(np.nanmax(truth))
    finals = {name: sim.report(table, **report)[:, -1] for name, sim in sims.items()}
    rea_final = float(np.nanmean(finals["regularized evolution"]))
    result: dict = {
        "space": space,
        "target": target,
        "sources": list(sources),
        "seeds": seeds,
        "report": f"{task.report_dataset}/{task.report_metric}/{task.report_epochs}",
        "budget": budget,
        "portfolio_rows": [int(r) for r in rows],
        "portfolio_truth": [round(float(v), 2) for v in truth[np.asarray(rows)]],
        "best_in_table": round(best, 2),
        "searchers": {},
    }
    grid = curves["grid"]
    for name, values in finals.items():
        reached = np.flatnonzero(best - curves[name][0] >= rea_final - 1e-9)
        at = float(grid[reached[0]]) if reached.size else None
        result["searchers"][name] = {
            "final_mean": round(float(np.nanmean(values)), 3),
            "final_std": round(float(np.nanstd(values)), 3),
            "evals_mean": round(float(np.mean(sims[name].num_evals)), 1),
            "reaches_rea_final_at": at,
            "reaches_rea_final_at_fraction": None if at is None else round(at / budget, 4),
        }
    q = quarter.report(table, **report)[:, -1]
    t, p = bench.welch_test(q[~np.isnan(q)], finals["regularized evolution"])
    result["rea_portfolio_at_25pct_vs_rea_at_100pct"] = {
        "mean_at_25pct": round(float(np.nanmean(q)), 3),
        "rea_final": round(rea_final, 3),
        "t": round(t, 2),
        "p": p,
    }
    if out is not None:
        folder = pathlib.Path(out)
        folder.mkdir(parents=True, exist_ok=True)
        bench.plot_regret(curves, folder / "regret.png", ylabel=f"{target} regret (%)")
        (folder / "summary.json").write_text(json.dumps(result, indent=1))
    return result


def run_latency(
    *,
    seeds: int = 5,
    steps: int = 3000,
    nasbench: Any = None,
    out: str | pathlib.Path | None = None,
    progress: Any = None,
) -> dict:
    """HELP on the NB201 latency tables: `seeds` meta-trainings of `steps` MAML steps on
    HELP's meta-train devices (model selection on its meta-validation devices), each scored
    on the six meta-test devices from their 10 reference measurements, beside the FLOPs
    baseline and the same MLP trained from scratch on the same 10 measurements; then
    latency-constrained search per meta-test device (CIFAR-100 test accuracy of the
    table, bounds at the device's 25th / 50th latency percentile and MetaD2A+HELP's 11 ms
    on gold_6226), judged by the table's true latency. Writes `summary.json` and the first
    seed's `predictor.npz` under `out`."""
    if seeds < 1 or steps < 1:
        raise ValueError(f"seeds and steps must be >= 1; got {seeds} and {steps}")
    latency = bench.load_latency(nasbench)
    nb201 = bench.load_nb201(nasbench)
    flops = nb201.column("cifar10", "flops_M", None)
    acc = nb201.column("cifar100", "test_acc", 200)
    test = transfer.HELP_SPLIT["meta_test"]
    x = transfer.architecture_features(latency)
    y = transfer.device_latencies(latency, test)
    rows: dict[str, list[list[float]]] = {"help": [], "scratch": []}
    found: list[dict] = []
    folder = None if out is None else pathlib.Path(out)
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
    for seed in range(seeds):
        key = jax.random.key(seed)
        step = math.gcd(steps, 500)  # validation every 500 steps, or what divides `steps`
        predictor, _ = transfer.meta_train_latency(key, latency, steps=steps, eval_every=step)
        if folder is not None and seed == 0:
            transfer.save_latency_predictor(predictor, folder / "predictor.npz")
        rows["help"].append(transfer.evaluate_latency(predictor, latency, test)["spearman"])
        refs = predictor.references
        scratch = jax.vmap(
            lambda yd, refs=refs, key=key: transfer.fit_latency_from_scratch(key, x, refs, yd[refs])
        )(y)
        rows["scratch"].append([float(v) for v in jax.vmap(spearman)(scratch, y)])
        pred = jax.vmap(lambda yd, p=predictor: transfer.adapt_latency(p, x, yd[p.references]))(y)
        found += _constrained(seed, test, np.asarray(y), pred, acc)
        if progress is not None:
            progress(seed + 1, seeds)
    result: dict = {
        "split": transfer.HELP_SPLIT,
        "references": 10,
        "seeds": seeds,
        "meta_steps": steps,
        "published_mean": transfer.HELP_PUBLISHED,
        "spearman": {},
    }
    for name, per_seed in rows.items():
        a = np.asarray(per_seed)  # [seeds, devices]
        result["spearman"][name] = {
            "per_device_mean": dict(zip(test, a.mean(0).round(4).tolist(), strict=True)),
            "per_device_std": dict(zip(test, a.std(0).round(4).tolist(), strict=True)),
            "mean": round(float(a.mean(1).mean()), 4),
            "std_over_seeds": round(float(a.mean(1).std()), 4),
        }
    rho = [float(spearman(flops, y[d])) for d in range(len(test))]
    result["spearman"]["flops"] = {
        "per_device": dict(zip(test, np.round(rho, 4).tolist(), strict=True)),
        "mean": round(float(np.mean(rho)), 4),
    }
    result["constrained_search"] = found
    gap = [s["optimum_acc"] - s["found_acc"] for s in found if s["within_bound"]]
    result["constrained_summary"] = {
        "within_bound": f"{sum(s['within_bound'] for s in found)}/{len(found)}",
        "mean_accuracy_gap_when_within": round(float(np.mean(gap)), 3) if gap else None,
    }
    if folder is not None:
        (folder / "summary.json").write_text(json.dumps(result, indent=1))
    return result


def _constrained(seed: int, devices, true_ms, pred_ms, acc) -> list[dict]:
    out = []
    for d, device in enumerate(devices):
        true = true_ms[d]
        bounds = {"p25": float(np.percentile(true, 25)), "p50": float(np.percentile(true, 50))}
        if device == "gold_6226":
            bounds["11ms"] = 11.0
        for name, bound in bounds.items():
            found = int(transfer.constrained_best(pred_ms[d], acc, bound))
            best = int(transfer.constrained_best(jnp.asarray(true), acc, bound))
            out.append(
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
    return out
