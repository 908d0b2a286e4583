"""NAS-Bench tables as device arrays, with queries that name split, metric and fidelity.

A `Table` holds one float32 array per (dataset, metric, epochs) column, one row per
`space.index`, plus per-seed columns where the benchmark has them. Queries must say
which dataset, metric and training length they mean: the silent defaults of the official
APIs (12 vs 200 epochs, `cifar10` vs `cifar10-valid`) are the mistakes this avoids.
A value the benchmark does not have is NaN, never 0.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

Key = tuple[str, str, int | None]  # (dataset, metric, epochs)


def _name(key: Key) -> str:
    """Columns are stored under strings: pytree dict keys must sort, and None does not."""
    return "|".join(str(k) for k in key)


def _key(name: str) -> Key:
    dataset, metric, epochs = name.split("|")
    return dataset, metric, None if epochs == "None" else int(epochs)


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Table:
    """A benchmark table: `columns[(dataset, metric, epochs)]` is float32[space.size].

    `seed_columns` hold float32[space.size, num_seeds] where the benchmark reports each
    seed; `seeds` names them. Both are pytrees of device arrays, so a table can be an
    argument of a jitted function; `space`, `name` and `seeds` are static.
    """

    columns: dict[str, jax.Array]  # by "dataset|metric|epochs"
    seed_columns: dict[str, jax.Array]
    space: Any = dataclasses.field(metadata={"static": True})
    name: str = dataclasses.field(metadata={"static": True})
    seeds: tuple[int, ...] = dataclasses.field(metadata={"static": True})
    # Tables whose rows are not `space.index` (NB101): sorted uint32[rows, 2] fingerprints
    # (`space.fingerprint`) and the cell of each row.
    row_keys: jax.Array | None = None
    row_archs: Any = None

    def with_row_keys(self, keys: jax.Array, archs: Any) -> Table:
        """This table with rows found by fingerprint (`keys` sorted, one per row)."""
        return dataclasses.replace(self, row_keys=keys, row_archs=archs)

    @property
    def num_rows(self) -> int:
        """Rows of the table (the space's size, or the cells an NB101 table holds)."""
        return next(iter(self.columns.values())).shape[0]

    def keys(self) -> list[Key]:
        """Every (dataset, metric, epochs) the table has."""
        return [_key(k) for k in sorted(self.columns)]

    def check(self, dataset: str, metric: str, epochs: int | None, seed: int | None = None) -> Key:
        """Raise `ValueError` listing what exists unless the column is in the table."""
        key = (dataset, metric, epochs)
        keys = self.keys()
        if key not in keys:
            datasets = sorted({k[0] for k in keys})
            if dataset not in datasets:
                raise ValueError(f"{self.name}: unknown `dataset` {dataset!r}; valid: {datasets}")
            metrics = sorted({k[1] for k in keys if k[0] == dataset})
            if metric not in metrics:
                raise ValueError(
                    f"{self.name}: unknown `metric` {metric!r} for {dataset!r}; valid: {metrics}"
                )
            epochs_ok = [k[2] for k in keys if k[:2] == (dataset, metric)]
            raise ValueError(
                f"{self.name}: `epochs` must be one of {epochs_ok} for "
                f"({dataset!r}, {metric!r}); got {epochs!r}"
            )
        if seed is not None:
            if _name(key) not in self.seed_columns:
                per_seed = [_key(k) for k in sorted(self.seed_columns)]
                raise ValueError(
                    f"{self.name}: no per-seed values for {key}; `seed` works "
                    f"for {per_seed}, else pass seed=None for the seed mean"
                )
            if seed not in self.seeds:
                raise ValueError(f"{self.name}: `seed` must be one of {self.seeds}; got {seed}")
        return key

    def column(
        self, dataset: str, metric: str, epochs: int | None, seed: int | None = None
    ) -> jax.Array:
        """The whole column, float32[num_rows] (seed mean unless `seed` is given)."""
        key = self.check(dataset, metric, epochs, seed)
        if seed is None:
            return self.columns[_name(key)]
        return self.seed_columns[_name(key)][:, self.seeds.index(seed)]

    def query(
        self, archs: Any, *, dataset: str, metric: str, epochs: int | None, seed: int | None = None
    ) -> jax.Array:
        """Values for one architecture or a batch (leading axes), jittable and vmappable.

        The column is chosen in Python (a wrong name fails before tracing); the lookup
        is a gather by `space.index`.
        """
        col = self.column(dataset, metric, epochs, seed)
        rows = self.rows(archs)
        return jnp.where(rows >= 0, col[jnp.maximum(rows, 0)], jnp.nan)

    def rows(self, archs: Any) -> jax.Array:
        """int32 row indices of one architecture or a batch; -1 where the table lacks it
        or the architecture is invalid (an out-of-range op would otherwise wrap into a
        real row under `jit`, where indexing cannot raise)."""
        lookup = self.space.index if self.row_keys is None else self._row_by_key

        def index(arch: Any) -> jax.Array:
            return jnp.where(self.space.is_valid(arch), lookup(arch), -1).astype(jnp.int32)

        leaf = jax.tree.leaves(archs)[0]
        single = jax.tree.leaves(jax.eval_shape(self.space.sample, jax.random.key(0)))[0]
        for _ in range(leaf.ndim - single.ndim):
            index = jax.vmap(index)
        return index(archs)

    def _row_by_key(self, arch: Any) -> jax.Array:
        key = self.space.fingerprint(arch)
        keys = self.row_keys
        assert keys is not None  # only tables with row keys look rows up by key
        start = jnp.searchsorted(keys[:, 0], key[0])
        cand = jnp.clip(start + jnp.arange(4), 0, keys.shape[0] - 1)  # equal first halves
        hit = jnp.all(keys[cand] == key[None, :], axis=1)
        return jnp.where(jnp.any(hit), cand[jnp.argmax(hit)], -1).astype(jnp.int32)


def table_from_numpy(
    space: Any,
    name: str,
    columns: dict[Key, np.ndarray],
    seed_columns: dict[Key, np.ndarray] | None = None,
    seeds: tuple[int, ...] = (),
    num_rows: int | None = None,
) -> Table:
    """Check shapes and move host columns to the device as float32."""
    n = space.size if num_rows is None else num_rows
    out, out_seeds = {}, {}
    for key, values in [*columns.items(), *(seed_columns or {}).items()]:
        kind = np.asarray(values).dtype.kind
        if kind not in "biuf":
            raise ValueError(
                f"{name}: column {key} must be numeric; got {np.asarray(values).dtype}"
            )
    for key, values in columns.items():
        values = np.asarray(values, np.float64)
        if values.shape != (n,):
            raise ValueError(f"{name}: column {key} must have shape ({n},); got {values.shape}")
        out[_name(key)] = jnp.asarray(values, jnp.float32)
    for key, values in (seed_columns or {}).items():
        values = np.asarray(values, np.float64)
        if values.shape != (n, len(seeds)):
            raise ValueError(
                f"{name}: per-seed column {key} must have shape "
                f"({n}, {len(seeds)}); got {values.shape}"
            )
        out_seeds[_name(key)] = jnp.asarray(values, jnp.float32)
    return Table(out, out_seeds, space, name, tuple(int(s) for s in seeds))
