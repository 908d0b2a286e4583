"""NAS-Bench-NLP's WikiText-2 runs (`nbnlp_wt2.npz`: 345 runs, 50-epoch learning curves)
as a `Table` over the `NBNLP` space.

Rows are distinct cells: recipes that are the same graph (the benchmark lists some cells
under several recipe ids, sometimes with other node names or input orders) share a row,
found by `NBNLP.fingerprint`; each run of a cell is one `seed` of the per-seed columns and
the row holds the mean over the runs that reached an epoch. Dataset `"wikitext2"`;
metrics per epoch 1..50: `valid_loss`, `test_loss`, `train_loss` (cross-entropy, nats),
`valid_ppl`, `test_ppl` (exp of the loss), `train_time_s` (the benchmark GPU's wall time
up to the end of that epoch; for the 4 runs that stopped with a NaN loss, the time up to
the stop: a query of a later epoch is a failed evaluation charged what the run cost); `params` (epochs None): the language model's parameter
count as the benchmark reports it.
"""

from __future__ import annotations

import json
import os

import jax
import jax.numpy as jnp
import numpy as np

from jnas.bench._load import _npz, _resolve
from jnas.bench._table import Table, table_from_numpy
from jnas.spaces import NBNLP, NBNLPArch

NBNLP_DATASET = "wikitext2"
NBNLP_EPOCHS = 50


def load_nbnlp(path: str | os.PathLike | None = None) -> Table:
    """The NAS-Bench-NLP WikiText-2 table (see the module docstring); `path` is the file
    or the folder holding `nbnlp_wt2.npz` (default `$JNAS_NASBENCH_DIR`)."""
    p = _resolve(path, "nbnlp_wt2.npz")
    data = _npz(
        p,
        ("recipe", "num_params", "train_loss", "valid_loss", "test_loss", "epoch_time_s"),
        rows="recipe",
        numeric=("num_params", "train_loss", "valid_loss", "test_loss", "epoch_time_s"),
    )
    space = NBNLP()
    groups: dict[tuple[int, int], list[int]] = {}
    cells = []
    parsed = [
        space.recipe_arrays(json.loads(str(r)), where=f"{p}: run {i}")
        for i, r in enumerate(data["recipe"])
    ]
    batch = NBNLPArch(*(jnp.asarray(np.stack(a)) for a in zip(*parsed, strict=True)))
    keys = np.asarray(jax.jit(jax.vmap(space.fingerprint))(batch))
    for i, key in enumerate(map(tuple, keys.tolist())):
        if key not in groups:
            groups[key] = []
            cells.append(i)
        groups[key].append(i)
    runs = max(len(v) for v in groups.values())
    seeds = tuple(range(runs))
    members = list(groups.values())

    def per_run(values: np.ndarray) -> np.ndarray:
        out = np.full((len(members), runs), np.nan)
        for row, idx in enumerate(members):
            out[row, : len(idx)] = values[idx]
        return out

    def mean(per: np.ndarray) -> np.ndarray:
        counts = np.sum(~np.isnan(per), axis=1)
        return np.where(counts > 0, np.nansum(per, axis=1) / np.maximum(counts, 1), np.nan)

    # a run that stopped (loss NaN) cost its time up to the stop: its clock stays there
    time_cum = np.cumsum(np.nan_to_num(np.asarray(data["epoch_time_s"], np.float64)), axis=1)
    curves = {
        "valid_loss": np.asarray(data["valid_loss"], np.float64),
        "test_loss": np.asarray(data["test_loss"], np.float64),
        "train_loss": np.asarray(data["train_loss"], np.float64),
        "train_time_s": time_cum,
    }
    cols, seed_cols = {}, {}
    for e in range(1, NBNLP_EPOCHS + 1):
        for metric, values in curves.items():
            per = per_run(values[:, e - 1])
            seed_cols[(NBNLP_DATASET, metric, e)] = per
            cols[(NBNLP_DATASET, metric, e)] = mean(per)
        for split in ("valid", "test"):
            per = np.exp(seed_cols[(NBNLP_DATASET, f"{split}_loss", e)])
            seed_cols[(NBNLP_DATASET, f"{split}_ppl", e)] = per
            cols[(NBNLP_DATASET, f"{split}_ppl", e)] = mean(per)
    cols[(NBNLP_DATASET, "params", None)] = mean(per_run(np.asarray(data["num_params"], float)))
    order = np.lexsort((keys[cells, 1], keys[cells, 0]))
    table = table_from_numpy(
        space,
        "NAS-Bench-NLP (WikiText-2)",
        {k: v[order] for k, v in cols.items()},
        {k: v[order] for k, v in seed_cols.items()},
        seeds,
        num_rows=len(cells),
    )
    row_archs = jax.tree.map(lambda x: x[np.asarray(cells)[order]], batch)
    return table.with_row_keys(jnp.asarray(keys[cells][order]), row_archs)
