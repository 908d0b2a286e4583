"""The NAS-Bench-301 subset (`nb301_subset_naslib.csv.gz`, NAS-Bench-Suite-Zero's 725
DARTS cells) as a `Table` over the `DARTS` space.

NAS-Bench-301 (Siems et al. 2020) is a surrogate: `valid_acc` is its predicted CIFAR-10
validation accuracy (%) of the cell trained as in DARTS' evaluation (100 epochs), keyed
`("cifar10", "valid_acc", 100)`; `params_M`, `flops_M` and the zero-cost proxies `zc_*`
(NAS-Bench-Suite-Zero) have epochs None. Rows are found inside `jit` by
`DARTS.fingerprint` (a node's two edges in either order), so a cell the subset lacks reads
NaN; search the subset through `bench.restrict(load_nb301())`.
"""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np

from jnas.bench._load import _resolve, read_csv_rows
from jnas.bench._table import Table, table_from_numpy
from jnas.spaces import DARTS, DARTSArch

# NASLib's compact op index (the file's README); DARTS' own list adds `none` at 0
NASLIB_DARTS_OPS = (
    "max_pool_3x3",
    "avg_pool_3x3",
    "skip_connect",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "dil_conv_3x3",
    "dil_conv_5x5",
)
NB301_EPOCHS = 100


def parse_naslib_genotype(text: str, space: DARTS, where: str) -> tuple[np.ndarray, np.ndarray]:
    """(ops, inputs) int8[2, 8] of a NASLib compact genotype `normal;reduce`, each part
    8 `input:op` pairs in DARTS' edge order; a clear `ValueError` naming `where` else."""
    form = "'normal;reduce', each 8 comma-separated input:op pairs (op 0..6)"
    parts = str(text).split(";")
    if len(parts) != 2:
        raise ValueError(f"{where}: genotype must be {form}; got {text!r}")
    ops = np.zeros((2, space.num_edges), np.int8)
    src = np.zeros((2, space.num_edges), np.int8)
    for c, part in enumerate(parts):
        pairs = part.split(",")
        if len(pairs) != space.num_edges:
            raise ValueError(f"{where}: genotype must be {form}; got {text!r}")
        for e, pair in enumerate(pairs):
            try:
                i, o = (int(v) for v in pair.split(":"))
            except ValueError:
                raise ValueError(f"{where}: genotype must be {form}; got {text!r}") from None
            if not 0 <= o < len(NASLIB_DARTS_OPS):
                raise ValueError(f"{where}: op {o} outside 0..6 in {text!r}")
            ops[c, e] = space.ops.index(NASLIB_DARTS_OPS[o])
            src[c, e] = i
    arch = DARTSArch(jnp.asarray(ops), jnp.asarray(src))
    try:
        space.validate(arch)
    except ValueError as err:
        raise ValueError(f"{where}: {err}") from None
    return ops, src


def load_nb301(path: str | os.PathLike | None = None) -> Table:
    """The NAS-Bench-301 subset table (see the module docstring); `path` is the file or
    the folder holding `nb301_subset_naslib.csv.gz` (default `$JNAS_NASBENCH_DIR`)."""
    p = _resolve(path, "nb301_subset_naslib.csv.gz")
    rows = read_csv_rows(p)
    need = ("genotype_naslib", "val_acc_surrogate", "params_M_naslib", "flops_M_naslib")
    if not rows or any(c not in rows[0] for c in need):
        raise ValueError(f"{p}: expected the columns {', '.join(need)}, zc_*")
    space = DARTS()
    parsed = [
        parse_naslib_genotype(r["genotype_naslib"], space, f"{p}: row {i}")
        for i, r in enumerate(rows)
    ]
    batch = DARTSArch(
        jnp.asarray(np.stack([o for o, _ in parsed])), jnp.asarray(np.stack([s for _, s in parsed]))
    )
    keys = np.asarray(jax.jit(jax.vmap(space.fingerprint))(batch))
    order = np.lexsort((keys[:, 1], keys[:, 0]))
    sorted_keys = keys[order]
    if np.any(np.all(sorted_keys[1:] == sorted_keys[:-1], axis=1)):
        raise ValueError(f"{p}: two rows hold the same cell (or share a fingerprint)")

    def column(name: str) -> np.ndarray:
        try:
            return np.asarray(
                [float(r[name]) if r[name] not in ("", None) else np.nan for r in rows]
            )[order]
        except ValueError as err:
            raise ValueError(f"{p}: column {name}: {err}") from None

    cols = {
        ("cifar10", "valid_acc", NB301_EPOCHS): column("val_acc_surrogate"),
        ("cifar10", "params_M", None): column("params_M_naslib"),
        ("cifar10", "flops_M", None): column("flops_M_naslib"),
    }
    for name in rows[0]:
        if name.startswith("zc_"):
            cols[("cifar10", name, None)] = column(name)
    table = table_from_numpy(space, "NB301-subset", cols, num_rows=len(rows))
    return table.with_row_keys(jnp.asarray(sorted_keys), jax.tree.map(lambda x: x[order], batch))
