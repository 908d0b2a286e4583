"""`jnas estimate`: score cells of a space with a zero-cost proxy in one program, write the
scores, their rank correlation with the benchmark table and a correlation plot."""

from __future__ import annotations

import argparse
import functools
import json
import pathlib
import time

from jnas.commands._common import make_space

# proxies exact on a one-hot supernet (`jnas.proxies.score_architectures`)
PROXIES = (
    "synflow",
    "grad_norm",
    "snip",
    "grasp",
    "fisher",
    "jacob_cov",
    "nwot",
    "epe_nas",
    "plain",
)
REPORT = (
    ("cifar10", "test_acc", 200),
    ("cifar100", "test_acc", 200),
    ("ImageNet16-120", "test_acc", 200),
)


def _proxy(name: str, key, size: int, batch: int, num_classes: int):
    """The proxy as `score_architectures` takes it, with its batch (the digits, resized)."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from jnas import proxies
    from jnas.data import digits

    if name == "synflow":
        return functools.partial(proxies.synflow, input_shape=(1, size, size, 3))
    data = digits(key, size=size, channels=3)["train"]
    pick = np.asarray(jax.random.choice(key, len(data.y), (batch,), replace=False))
    xy = (jnp.asarray(data.x[pick]), jnp.asarray(data.y[pick]))
    if name == "epe_nas":
        return functools.partial(proxies.epe_nas, batch=xy, num_classes=num_classes)
    return functools.partial(getattr(proxies, name), batch=xy)


def cmd_estimate(args: argparse.Namespace) -> int:
    import jax
    import numpy as np
    from scipy import stats

    from jnas import proxies

    if args.cells < 0:
        raise ValueError(f"--cells must be >= 0 (0: the whole space); got {args.cells}")
    space = make_space(args.space)
    if not hasattr(space, "supernet"):
        raise ValueError(f"--space {args.space} has no supernet to score cells with")
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    key = jax.random.key(args.seed)
    k_cells, k_data, k_init = jax.random.split(key, 3)
    total = int(space.size)
    n = total if args.cells == 0 else min(args.cells, total)
    index = np.sort(np.asarray(jax.random.permutation(k_cells, total)[:n]))
    archs = jax.vmap(space.from_index)(index)
    net = {"channels": args.channels, "cells_per_stage": args.cells_per_stage, "num_classes": 10}
    proxy = _proxy(args.proxy, k_data, 32, args.batch, 10)
    start = time.perf_counter()
    if args.proxy == "synflow":  # Abdelfattah et al.: float64, batch norm removed
        with jax.enable_x64(True):
            scores = proxies.score_architectures(
                k_init, proxy, space, archs, chunk=args.chunk, batch_norm=False, **net
            )
    else:
        scores = proxies.score_architectures(k_init, proxy, space, archs, chunk=args.chunk, **net)
    seconds = time.perf_counter() - start
    finite = np.isfinite(scores)
    summary: dict = {
        "space": args.space,
        "proxy": args.proxy,
        "cells": int(n),
        "non_finite_scores": int((~finite).sum()),
        "seconds": round(seconds, 2),
        "network": net,
        "spearman": {},
    }
    table = None
    if args.space == "nb201":
        from jnas import bench

        try:
            table = bench.load_nb201(args.nasbench)
        except (OSError, ValueError) as err:
            summary["table"] = f"not loaded: {err}"
    if table is not None:
        for dataset, metric, epochs in REPORT:
            acc = np.asarray(table.column(dataset, metric, epochs))[index]
            ok = finite & np.isfinite(acc)
            rho = np.nan
            if ok.sum() > 2:
                rho = float(np.asarray(stats.spearmanr(scores[ok], acc[ok])[0]).item())
            summary["spearman"][f"{dataset}/{metric}/{epochs}"] = rho
        acc = np.asarray(table.column(*REPORT[0]))[index]
        _plot(scores, acc, out / "correlation.png", args.proxy, REPORT[0])
    np.savez_compressed(
        out / "scores.npz",
        index=index,
        arch=np.asarray([space.to_string(space.from_index(int(i))) for i in index]),
        score=scores,
    )
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(f"{args.proxy} on {n} {args.space} cells in {seconds:.1f} s")
    for k, v in summary["spearman"].items():
        print(f"  Spearman with {k}: {v:.3f}")
    if summary["non_finite_scores"]:
        print(f"  {summary['non_finite_scores']} non-finite scores (left out of the correlations)")
    print(f"wrote {out}")
    return 0


def _plot(scores, acc, path: pathlib.Path, proxy: str, key: tuple) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    ok = np.isfinite(scores) & np.isfinite(acc)
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.scatter(np.argsort(np.argsort(scores[ok])), acc[ok], s=4, alpha=0.5)
    ax.set_xlabel(f"{proxy} rank")
    ax.set_ylabel("/".join(str(k) for k in key))
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def add_parser(sub: argparse._SubParsersAction) -> None:
    """`jnas estimate`: its flags."""
    p = sub.add_parser(
        "estimate",
        help="score cells with a zero-cost proxy (one program for many cells)",
        description="Score cells of a space with a zero-cost proxy (jnas.proxies), each on "
        "its own initialisation; write scores.npz, summary.json (Spearman with the NB201 "
        "table when found) and correlation.png.",
    )
    p.add_argument("--space", default="nb201", choices=("nb201",))
    p.add_argument("--proxy", default="synflow", choices=PROXIES)
    p.add_argument("--cells", type=int, default=1000, help="cells to score (0: all)")
    p.add_argument("--channels", type=int, default=16)
    p.add_argument("--cells-per-stage", type=int, default=5)
    p.add_argument("--batch", type=int, default=64, help="images for data-dependent proxies")
    p.add_argument("--chunk", type=int, default=64, help="cells per compiled call")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--nasbench", default=None, help="NAS-Bench folder (JNAS_NASBENCH_DIR)")
    p.add_argument("--out", default=None, help="output folder (default out/estimate/<time>)")
    p.set_defaults(func=cmd_estimate)
