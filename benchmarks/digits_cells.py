"""A small reusable table of NB201 cells trained from scratch on real data (the digits), and
every zero-cost proxy's rank correlation with it (#18 §1).

1. Training (`jnas.train.train_cells`: many cells in one program, the supernet with fixed
   one-hot op weights): `--cells` distinct NB201 cells drawn uniformly, each trained with
   `--seeds` seeds on the digits' train split (8x8x1 images, C=8, one cell per stage, SGD
   Nesterov lr 0.05 with cosine decay, weight decay 5e-4, batch 64, `--epochs` epochs), with
   validation and test loss / accuracy after every epoch. Written to
   `benchmarks/results/digits_nb201_cells.npz` (cell strings, table indices, curves
   [cells, seeds, epochs], settings) and reused unless `--retrain`.
2. Proxies: each data-dependent proxy on one batch of 64 training images, each cell on its own
   initialisation (`jnas.proxies.score_architectures`), SynFlow data-free (float64, batch norm
   removed), params and FLOPs of the discrete network; Spearman with the mean final
   validation and test accuracy over seeds, next to the seed-to-seed agreement of the table
   itself (the ceiling any estimator can reach).

    python benchmarks/digits_cells.py  # ~15 min on 2 CPU cores (training ~9, proxies ~5)
    python benchmarks/digits_cells.py --epochs 16 --retrain \
        --table benchmarks/results/digits_nb201_cells_16ep.npz \
        --out benchmarks/results/digits_nb201_proxies_16ep.json  # 22 min of training
"""

from __future__ import annotations

import argparse
import functools
import json
import pathlib
import time

import jax
import numpy as np
from flax import nnx
from scipy import stats

from jnas import proxies
from jnas.data import digits
from jnas.nn import count_flops, count_params
from jnas.spaces import NB201
from jnas.train import TrainConfig, train_cells

HERE = pathlib.Path(__file__).parent
NET = {"channels": 8, "cells_per_stage": 1, "num_classes": 10, "in_channels": 1}


def sample_cells(key: jax.Array, space: NB201, n: int) -> np.ndarray:
    """`n` distinct table indices, uniform over the space."""
    return np.sort(np.asarray(jax.random.choice(key, space.size, (n,), replace=False)))


def train_table(args: argparse.Namespace, space: NB201, data: dict) -> dict:
    indices = sample_cells(jax.random.key(args.seed), space, args.cells)
    archs = jax.vmap(space.from_index)(indices)
    config = TrainConfig(epochs=args.epochs, batch_size=64, lr=0.05, augment=False)
    t0 = time.perf_counter()
    runs = [
        train_cells(jax.random.key(1000 + s), space, archs, data, config, chunk=16, **NET)
        for s in range(args.seeds)
    ]
    seconds = time.perf_counter() - t0
    table = {
        "index": indices,
        "arch": np.asarray([space.to_string(space.from_index(int(i))) for i in indices]),
        **{
            name: np.stack([getattr(r, name) for r in runs], axis=1)
            for name in ("train_loss", "valid_loss", "valid_acc", "test_loss", "test_acc")
        },
        "settings": json.dumps(
            {
                "data": "scikit-learn digits, 8x8x1, jnas.data.digits(key(0), size=8, "
                "channels=1): train 675 / valid 672 / test 450",
                "network": {"space": "NB201", **NET, "batch_norm": "batch statistics"},
                "training": {
                    "epochs": args.epochs,
                    "batch": 64,
                    "optimizer": "SGD Nesterov 0.9, lr 0.05 cosine, weight decay 5e-4",
                    "seeds": [1000 + s for s in range(args.seeds)],
                },
                "seconds": seconds,
            }
        ),
    }
    print(f"trained {args.cells} cells x {args.seeds} seeds in {seconds:.0f} s")
    return table


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--cells", type=int, default=200)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--retrain", action="store_true")
    p.add_argument("--table", default=str(HERE / "results" / "digits_nb201_cells.npz"))
    p.add_argument("--out", default=str(HERE / "results" / "digits_nb201_proxies.json"))
    args = p.parse_args()
    space = NB201()
    data = digits(jax.random.key(0), size=8, channels=1)
    path = pathlib.Path(args.table)
    if path.exists() and not args.retrain:
        table = dict(np.load(path))
        print(f"reusing {path} ({len(table['index'])} cells)")
    else:
        table = train_table(args, space, data)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(path, **table)
    archs = jax.vmap(space.from_index)(table["index"])
    valid = table["valid_acc"][:, :, -1].mean(1)
    test = table["test_acc"][:, :, -1].mean(1)
    seeds = table["valid_acc"].shape[1]
    ceiling = [
        stats.spearmanr(table["valid_acc"][:, a, -1], table["valid_acc"][:, b, -1])[0]
        for a in range(seeds)
        for b in range(a + 1, seeds)
    ]
    print(
        f"table: mean final test accuracy {test.mean():.3f} (min {test.min():.3f}, max "
        f"{test.max():.3f}); seed-to-seed Spearman {np.mean(ceiling):.3f}; mean valid vs mean "
        f"test {stats.spearmanr(valid, test)[0]:.3f}"
    )

    rng = np.random.default_rng(0)
    pick = rng.choice(len(data["train"].y), 64, replace=False)
    batch = (data["train"].x[pick], data["train"].y[pick])
    key = jax.random.key(7)
    scored = {
        "grad_norm": functools.partial(proxies.grad_norm, batch=batch),
        "snip": functools.partial(proxies.snip, batch=batch),
        "grasp": functools.partial(proxies.grasp, batch=batch),
        "fisher": functools.partial(proxies.fisher, batch=batch),
        "jacob_cov": functools.partial(proxies.jacob_cov, batch=batch),
        "nwot": functools.partial(proxies.nwot, batch=batch),
        "epe_nas": functools.partial(proxies.epe_nas, batch=batch, num_classes=10),
        "plain": functools.partial(proxies.plain, batch=batch),
    }
    results, seconds = {}, {}
    for name, proxy in scored.items():
        t0 = time.perf_counter()
        results[name] = proxies.score_architectures(key, proxy, space, archs, chunk=25, **NET)
        seconds[name] = time.perf_counter() - t0
        print(f"{name}: {seconds[name]:.0f} s", flush=True)
    t0 = time.perf_counter()
    with jax.enable_x64(True):
        results["synflow"] = proxies.score_architectures(
            key,
            functools.partial(proxies.synflow, input_shape=(1, 8, 8, 1)),
            space,
            archs,
            chunk=25,
            batch_norm=False,
            **NET,
        )
    seconds["synflow"] = time.perf_counter() - t0
    # the discrete network (3 input channels: the stem adds the same to every cell)
    shape = {k: v for k, v in NET.items() if k != "in_channels"}
    models = [
        space.build(space.from_index(int(i)), **shape, rngs=nnx.Rngs(0)) for i in table["index"]
    ]
    results["params"] = np.asarray([count_params(m) for m in models], np.float64)
    results["flops"] = np.asarray([count_flops(m, (1, 8, 8, 3)) for m in models], np.float64)
    rows = {}
    for name, score in results.items():
        finite = np.isfinite(score)
        rows[name] = {
            "spearman_valid": float(stats.spearmanr(score[finite], valid[finite])[0]),
            "spearman_test": float(stats.spearmanr(score[finite], test[finite])[0]),
            "non_finite": int((~finite).sum()),
            "seconds": seconds.get(name),
        }
        print(
            f"{name:10s} Spearman with mean valid acc {rows[name]['spearman_valid']:+.3f}, "
            f"test acc {rows[name]['spearman_test']:+.3f}"
            + (f"  ({seconds[name]:.0f} s)" if name in seconds else "")
        )
    out = pathlib.Path(args.out)
    out.write_text(
        json.dumps(
            {
                "table": str(path.name),
                "cells": len(valid),
                "seed_to_seed_spearman": float(np.mean(ceiling)),
                "valid_vs_test_spearman": float(stats.spearmanr(valid, test)[0]),
                "proxy_batch": "64 training images (rng 0), one init per cell (key 7)",
                "proxies": rows,
                "settings": json.loads(str(table["settings"])),
            },
            indent=1,
        )
    )
    np.savez_compressed(out.with_suffix(".npz"), index=table["index"], **results)
    print("wrote", out)


if __name__ == "__main__":
    main()
