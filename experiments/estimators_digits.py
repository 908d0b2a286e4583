"""Every performance estimator of jnas on the same trained cells (#18 §4).

The reference: NB201 cells trained from scratch on the digits (`benchmarks/digits_cells.py`,
`--epochs 16`: 200 cells x 3 seeds, curves per epoch), target = the mean final test
accuracy over seeds. Each estimator ranks those cells; the table reports its Spearman (and
Kendall) with the target, next to the table's own seed-to-seed agreement (the ceiling):

- zero-cost proxies (`benchmarks/digits_cells.py`'s scores of the same cells);
- the one-shot supernet (RSWS: `jnas.oneshot.rsws`, the supernet's accuracy of each cell on
  the validation split) and SMASH's hypernetwork (`jnas.oneshot.smash`, the accuracy with
  the weights it generates for each cell), trained with the same steps, batches and
  optimiser, `--oneshot-seeds` seeds each;
- the NB201 table's 12-epoch (and 200-epoch) CIFAR-10 accuracy of the cells (transfer from
  another dataset);
- learning-curve extrapolation from the first k epochs of the cells' own (seed-mean)
  validation curves: the last observed value, Domhan et al.'s parametric families
  (`jnas.predictors.extrapolate_curve`) and Baker et al.'s nu-SVR
  (`jnas.predictors.fit_curve_svr`, 5-fold cross-validated over cells).

Second part, SMASH's own setting: `--mb-archs` architectures of the memory-bank space
(`jnas.spaces.MemoryBank`) trained from scratch on the digits (`jnas.train.train_cells`),
ranked by SMASH and by RSWS trained on that space.

    python experiments/estimators_digits.py  # ~10 min on 2 CPU cores after the table
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from scipy import stats
from sklearn.model_selection import KFold

from jnas import oneshot
from jnas.bench import load_nb201
from jnas.data import digits
from jnas.predictors import extrapolate_curve, fit_curve_svr
from jnas.spaces import NB201, MemoryBank
from jnas.train import TrainConfig, train_cells

HERE = pathlib.Path(__file__).parent
RESULTS = HERE.parent / "benchmarks" / "results"
NET = {"channels": 8, "cells_per_stage": 1, "num_classes": 10, "in_channels": 1}
MB_SPACE = MemoryBank(stages=2, blocks=4, banks=3)
MB_NET = {"channels": 8, "num_classes": 10, "in_channels": 1}


def rank(score: np.ndarray, target: np.ndarray) -> dict:
    ok = np.isfinite(score)
    return {
        "spearman": float(stats.spearmanr(score[ok], target[ok])[0]),
        "kendall": float(stats.kendalltau(score[ok], target[ok])[0]),
        "non_finite": int((~ok).sum()),
    }


def make_trainer(name: str, space, config: dict, data, steps: int, batch: int):
    """`run(seed) -> (method, state, losses)`: `name` (rsws | smash) trained for `steps`
    steps of `batch` training images; one compiled program for every seed."""
    extra = {"embedding": 32, "hidden": 64} if name == "smash" else {}
    method = oneshot.REGISTRY[name].make(
        space,
        epochs=1,
        steps_per_epoch=steps,
        num_candidates=10,
        w_optimizer=optax.chain(
            optax.clip_by_global_norm(5.0),
            optax.add_decayed_weights(5e-4),
            optax.sgd(optax.cosine_decay_schedule(0.05, steps), momentum=0.9, nesterov=True),
        ),
        **config,
        **extra,
    )
    x, y = jnp.asarray(data["train"].x), jnp.asarray(data["train"].y)
    val = (jnp.asarray(data["valid"].x), jnp.asarray(data["valid"].y))
    net = oneshot.Supernet(None, method.apply)

    def body(state, k):
        k_batch, k_step = jax.random.split(k)
        i = jax.random.choice(k_batch, len(y), (batch,), replace=False)
        state, metrics = method.step(k_step, state, (x[i], y[i]), (x[i], y[i]))
        return state, metrics["w_loss"]

    @jax.jit
    def train(key):
        keys = jax.random.split(jax.random.fold_in(key, 1), steps)
        return jax.lax.scan(body, method.init(key), keys)

    score = jax.jit(lambda p, a: oneshot.supernet_accuracy(net, space, p, a, val))

    def run(seed: int, archs) -> tuple[np.ndarray, np.ndarray]:
        state, losses = train(jax.random.key(seed))
        return np.asarray(score(state.params, archs), np.float64), np.asarray(losses)

    return run


def estimators_on(space, config, archs, target, data, args, label: str) -> dict:
    rows = {}
    for name in ("rsws", "smash"):
        run = make_trainer(name, space, config, data, args.steps, args.batch)
        per_seed, seconds = [], []
        for s in range(args.oneshot_seeds):
            t0 = time.perf_counter()
            scores, losses = run(100 + s, archs)
            seconds.append(time.perf_counter() - t0)
            per_seed.append(rank(scores, target))
            print(
                f"[{label}] {name} seed {s}: Spearman {per_seed[-1]['spearman']:+.3f} "
                f"(final loss {losses[-50:].mean():.3f}, {seconds[-1]:.0f} s)",
                flush=True,
            )
        sp = np.asarray([r["spearman"] for r in per_seed])
        rows[name] = {
            "spearman": float(sp.mean()),
            "spearman_std": float(sp.std(ddof=1)) if len(sp) > 1 else 0.0,
            "kendall": float(np.mean([r["kendall"] for r in per_seed])),
            "per_seed": per_seed,
            "seconds_per_seed": seconds,
        }
    return rows


def curve_rows(curves: np.ndarray, target: np.ndarray, ks: tuple[int, ...]) -> dict:
    horizon = curves.shape[1]
    forecast = jax.jit(jax.vmap(lambda y, o: extrapolate_curve(y, o, horizon, increasing=True)))
    rows = {}
    for k in ks:
        obs = np.broadcast_to(np.arange(horizon)[None] < k, curves.shape)
        t0 = time.perf_counter()
        fc = forecast(jnp.asarray(np.where(obs, curves, 0.0), jnp.float32), jnp.asarray(obs))
        t_domhan = time.perf_counter() - t0
        svr = np.zeros(len(curves))
        for i, (tr, te) in enumerate(KFold(5, shuffle=True, random_state=0).split(curves)):
            m = fit_curve_svr(jax.random.key(i), curves[tr, :k], target[tr])
            svr[te] = m.predict(curves[te, :k]).mean
        rows[f"last value at epoch {k}"] = rank(curves[:, k - 1], target)
        rows[f"Domhan extrapolation from {k} epochs"] = {
            **rank(np.asarray(fc.mean, np.float64), target),
            "seconds": t_domhan,
        }
        rows[f"Baker nu-SVR from {k} epochs (5-fold CV)"] = rank(svr, target)
    return rows


def memory_bank_part(args: argparse.Namespace, data) -> dict:
    """SMASH's own setting: memory-bank architectures trained from scratch, ranked by
    SMASH and RSWS trained on that space."""
    mb_archs = jax.vmap(MB_SPACE.sample)(jax.random.split(jax.random.key(11), args.mb_archs))
    config = TrainConfig(epochs=args.mb_epochs, batch_size=64, lr=0.05, augment=False)
    t0 = time.perf_counter()
    runs = [
        train_cells(jax.random.key(2000 + s), MB_SPACE, mb_archs, data, config, chunk=12, **MB_NET)
        for s in range(args.mb_seeds)
    ]
    mb_seconds = time.perf_counter() - t0
    mb_target = np.mean([r.test_acc[:, -1] for r in runs], 0)
    mb_ceiling = (
        float(stats.spearmanr(runs[0].test_acc[:, -1], runs[1].test_acc[:, -1])[0])
        if len(runs) > 1
        else float("nan")
    )
    print(
        f"memory bank: {args.mb_archs} archs x {args.mb_seeds} seeds trained in "
        f"{mb_seconds:.0f} s; test acc {mb_target.mean():.3f} "
        f"[{mb_target.min():.3f}, {mb_target.max():.3f}]; seed-to-seed {mb_ceiling:.3f}"
    )
    mb_rows = estimators_on(MB_SPACE, MB_NET, mb_archs, mb_target, data, args, "memory bank")

    return {
        "space": repr(MB_SPACE),
        "network": MB_NET,
        "archs": args.mb_archs,
        "seeds": args.mb_seeds,
        "epochs": args.mb_epochs,
        "train_seconds": mb_seconds,
        "mean_test_acc": float(mb_target.mean()),
        "seed_to_seed_spearman": mb_ceiling,
        "strings": [
            MB_SPACE.to_string(jax.tree.map(lambda a, i=i: a[i], mb_archs))
            for i in range(args.mb_archs)
        ],
        "test_acc": mb_target.tolist(),
        "estimators": mb_rows,
    }


def render(result: dict, argv: str) -> list[str]:
    """The Markdown table of a result (`--render JSON` redraws it from the file)."""
    cells, train = result["nb201_cells"], result["oneshot_training"]
    lines = [
        "# Every estimator on the same digits-trained NB201 cells",
        "",
        f"{cells['cells']} NB201 cells trained from scratch on the digits ({cells['seeds']} "
        f"seeds, {cells['epochs']} epochs; `{cells['table']}`); target: mean final test "
        f"accuracy over the seeds. Seed-to-seed Spearman of single runs: "
        f"{cells['seed_to_seed_spearman']:.3f} (the ceiling for an estimator that does not "
        "see the runs; the curve rows read the same runs' first epochs, so they share their "
        "noise and can pass it). Domhan's families need at least 4 observed epochs.",
        "",
        "| estimator | Spearman | Kendall |",
        "|---|---|---|",
    ]
    for name, row in sorted(
        cells["estimators"].items(), key=lambda kv: -np.nan_to_num(kv[1]["spearman"], nan=-9)
    ):
        std = f" ± {row['spearman_std']:.3f}" if "spearman_std" in row else ""
        lines.append(f"| {name} | {row['spearman']:+.3f}{std} | {row['kendall']:+.3f} |")
    lines += [
        "",
        f"One-shot estimators: {train['steps']} steps of {train['batch']} images, "
        f"{train['seeds']} seeds (mean ± std), scored by {train['scoring']}.",
    ]
    mb = result.get("memory_bank")
    if mb is not None:
        lines += [
            "",
            f"## SMASH's own space: {mb['archs']} memory-bank architectures",
            "",
            f"`{mb['space']}`, trained from scratch {mb['seeds']} seeds x {mb['epochs']} "
            f"epochs (mean test accuracy {mb['mean_test_acc']:.3f}); seed-to-seed Spearman "
            f"{mb['seed_to_seed_spearman']:.3f}.",
            "",
            "| estimator | Spearman | Kendall |",
            "|---|---|---|",
        ]
        for name, row in mb["estimators"].items():
            lines.append(
                f"| {name} | {row['spearman']:+.3f} ± {row['spearman_std']:.3f} | "
                f"{row['kendall']:+.3f} |"
            )
    lines += ["", f"    python experiments/estimators_digits.py {argv}".rstrip(), ""]
    return lines


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--table", default=str(RESULTS / "digits_nb201_cells_16ep.npz"))
    p.add_argument("--proxies", default=str(RESULTS / "digits_nb201_proxies_16ep.npz"))
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--oneshot-seeds", type=int, default=3)
    p.add_argument("--mb-archs", type=int, default=40)
    p.add_argument("--mb-epochs", type=int, default=4)
    p.add_argument("--mb-seeds", type=int, default=2)
    p.add_argument("--out", default=str(RESULTS / "estimators_digits.json"))
    p.add_argument("--render", default=None, help="only redraw the Markdown of this JSON")
    p.add_argument("--command", default="", help="with --render: the arguments it ran with")
    args = p.parse_args()
    if args.render:
        path = pathlib.Path(args.render)
        path.with_suffix(".md").write_text(
            "\n".join(render(json.loads(path.read_text()), args.command))
        )
        return
    data = digits(jax.random.key(0), size=8, channels=1)

    # -- NB201 cells -----------------------------------------------------------------------
    table = dict(np.load(args.table))
    space = NB201()
    target = table["test_acc"][:, :, -1].mean(1)
    valid_curves = table["valid_acc"].mean(1)  # [cells, epochs], seed mean
    seeds = table["valid_acc"].shape[1]
    ceiling = np.mean(
        [
            stats.spearmanr(table["test_acc"][:, a, -1], table["test_acc"][:, b, -1])[0]
            for a in range(seeds)
            for b in range(a + 1, seeds)
        ]
    )
    print(
        f"{len(target)} cells x {seeds} seeds x {valid_curves.shape[1]} epochs; mean final "
        f"test acc {target.mean():.3f}; seed-to-seed Spearman {ceiling:.3f}"
    )
    archs = jax.vmap(space.from_index)(jnp.asarray(table["index"]))
    rows: dict[str, dict] = {}
    proxies = dict(np.load(args.proxies))
    for name in sorted(k for k in proxies if k != "index"):
        rows[f"zero-cost: {name}"] = rank(np.asarray(proxies[name], np.float64), target)
    rows.update(
        {
            {"rsws": "one-shot supernet (RSWS)", "smash": "SMASH hypernetwork"}[k]: v
            for k, v in estimators_on(space, NET, archs, target, data, args, "nb201").items()
        }
    )
    root = pathlib.Path(
        os.environ.get("JNAS_NASBENCH_DIR", HERE.parent.parent / "shared" / "nasbench")
    )
    if (root / "nb201_tss.npz").exists():
        nb = load_nb201(root / "nb201_tss.npz")
        idx = np.asarray(table["index"])
        for ds, metric, ep in (
            ("cifar10-valid", "valid_acc", 12),
            ("cifar10", "test_acc", 12),
            ("cifar10", "test_acc", 200),
        ):
            col = np.asarray(nb.columns[f"{ds}|{metric}|{ep}"], np.float64)[idx]
            rows[f"NB201 table: {ds} {metric} at {ep} epochs"] = rank(col, target)
    ks = tuple(k for k in (2, 4, 8) if k < valid_curves.shape[1])
    rows.update(curve_rows(valid_curves, target, ks))
    for name, row in rows.items():
        print(f"{name:48s} Spearman {row['spearman']:+.3f}  Kendall {row['kendall']:+.3f}")

    mb = memory_bank_part(args, data) if args.mb_archs > 0 else None

    out = pathlib.Path(args.out)
    result = {
        "nb201_cells": {
            "table": pathlib.Path(args.table).name,
            "cells": len(target),
            "target": "mean over seeds of the final test accuracy on the digits",
            "seeds": seeds,
            "epochs": int(valid_curves.shape[1]),
            "seed_to_seed_spearman": float(ceiling),
            "estimators": rows,
        },
        "memory_bank": mb,
        "oneshot_training": {
            "steps": args.steps,
            "batch": args.batch,
            "optimizer": "SGD Nesterov 0.9, lr 0.05 cosine, weight decay 5e-4, clip 5",
            "seeds": args.oneshot_seeds,
            "scoring": "accuracy on the 672-image validation split, batch statistics",
            "smash": "embedding 32, hidden 64",
        },
    }
    out.write_text(json.dumps(result, indent=1))
    lines = render(result, " ".join(sys.argv[1:]))
    out.with_suffix(".md").write_text("\n".join(lines))
    print("wrote", out, out.with_suffix(".md"))


if __name__ == "__main__":
    main()
