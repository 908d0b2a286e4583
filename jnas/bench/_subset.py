"""A search space of exactly the cells a table holds (for subset tables such as the
NAS-Bench-101 subset in `$JNAS_NASBENCH_DIR`, 292 of NB101's 423k cells).

Searching the full space against a subset table would spend almost every query on a
cell the table lacks. `restrict(table)` returns the same table over a `TableSubset` space
whose architectures are table rows:

- `sample`: a uniform row; `mutate` / `neighbors`: the `neighbors` rows nearest in
  Hamming distance over the cells' genes (a cell's own row excluded), the subset's
  stand-in for single edits, which almost never stay inside a small subset;
- decisions (`decision_sizes`, `to_decisions`, `from_decisions`) for the policy and model
  searchers: the genes that vary across the table's cells (NB101: the adjacency bits and
  interior ops), `from_decisions` snapping any decision vector to the nearest cell;
- the base space's encodings where it has them (`one_hot`, `path`, `adjacency`), so BO,
  BANANAS and the WL kernel see the real cells: `subset_space` picks the class that
  declares exactly those (`offers(space, HasPath)` is true only over a base with paths).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jnas._hash import mix32
from jnas.bench._table import Table
from jnas.spaces import HasAdjacency, HasPath, offers

_ENCODINGS = ("one_hot", "path")  # precomputed per row where the base has them


class SubsetArch(NamedTuple):
    row: jax.Array  # int32[]: the table row of the cell


@dataclasses.dataclass(frozen=True, eq=False)
class TableSubset:
    """The cells `cells` (a batch of the base space's architectures, one per table row)
    as a space; see the module docstring. Hashes by identity (a static jit argument)."""

    base: Any
    cells: Any
    neighbors_k: int = 8
    _encodings: dict = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        n = jax.tree.leaves(self.cells)[0].shape[0]
        if n < 2:
            raise ValueError(f"TableSubset: need at least 2 cells; got {n}")
        if not isinstance(self.neighbors_k, int) or not 1 <= self.neighbors_k < n:
            raise ValueError(
                f"TableSubset: `neighbors_k` must be an integer in [1, {n}); "
                f"got {self.neighbors_k!r}"
            )
        # encodings of every row, computed here, outside any trace
        encodings = {
            name: np.asarray(jax.jit(jax.vmap(getattr(self.base, name)))(self.cells))
            for name in _ENCODINGS
            if callable(getattr(self.base, name, None))
        }
        object.__setattr__(self, "_encodings", encodings)
        _ = self._genes, self._nearest  # host arrays, also computed before any trace

    @functools.cached_property
    def size(self) -> int:
        return int(jax.tree.leaves(self.cells)[0].shape[0])

    @functools.cached_property
    def _genes(self) -> np.ndarray:
        leaves = [
            np.asarray(x).reshape(self.size, -1).astype(np.int32)
            for x in jax.tree.leaves(self.cells)
        ]
        genes = np.concatenate(leaves, axis=1)
        varying = np.any(genes != genes[:1], axis=0)
        return genes[:, varying] - genes[:, varying].min(axis=0, keepdims=True)

    @functools.cached_property
    def _nearest(self) -> np.ndarray:
        g = self._genes
        d = np.sum(g[:, None, :] != g[None, :, :], axis=-1).astype(np.float64)
        np.fill_diagonal(d, np.inf)
        return np.argsort(d, axis=1, kind="stable")[:, : self.neighbors_k].astype(np.int32)

    # ----------------------------------------------------------------- the space
    def cell(self, arch: SubsetArch) -> Any:
        """The base space's architecture of a row (jittable)."""
        return jax.tree.map(lambda x: jnp.asarray(x)[arch.row], self.cells)

    def index(self, arch: SubsetArch) -> jax.Array:
        return jnp.asarray(arch.row, jnp.int32)

    def is_valid(self, arch: SubsetArch) -> jax.Array:
        return (arch.row >= 0) & (arch.row < self.size)

    def sample(self, key: jax.Array) -> SubsetArch:
        return SubsetArch(jax.random.randint(key, (), 0, self.size, jnp.int32))

    def mutate(self, key: jax.Array, arch: SubsetArch) -> SubsetArch:
        j = jax.random.randint(key, (), 0, self.neighbors_k)
        return SubsetArch(jnp.asarray(self._nearest)[arch.row, j])

    def neighbors(self, arch: SubsetArch) -> tuple[SubsetArch, jax.Array]:
        return (
            SubsetArch(jnp.asarray(self._nearest)[arch.row]),
            jnp.ones((self.neighbors_k,), bool),
        )

    @functools.cached_property
    def decision_sizes(self) -> tuple[int, ...]:
        return tuple(int(v) + 1 for v in self._genes.max(axis=0))

    def to_decisions(self, arch: SubsetArch) -> jax.Array:
        return jnp.asarray(self._genes)[arch.row]

    def from_decisions(self, decisions: jax.Array) -> SubsetArch:
        """The cell nearest to `decisions` in Hamming distance. Ties (frequent: many
        decision vectors share a distance) go to a pseudo-random one of the nearest cells,
        a hash of the decisions and the row, so no cell is favoured by its row number."""
        decisions = decisions.astype(jnp.int32)
        d = jnp.sum(jnp.asarray(self._genes) != decisions[None, :], axis=1)
        h = jnp.zeros((), jnp.uint32)
        for i in range(decisions.shape[0]):  # static: the decisions' hash
            h = mix32(h ^ decisions[i].astype(jnp.uint32) + jnp.uint32(i))
        rows = jnp.arange(self.size, dtype=jnp.uint32)
        tie = mix32(h ^ mix32(rows)).astype(jnp.float32) / 2.0**32  # in [0, 1)
        return SubsetArch(jnp.argmin(d.astype(jnp.float32) + 0.5 * tie).astype(jnp.int32))

    def validate(self, arch: Any) -> None:
        """Raise `ValueError` unless `arch` is a `SubsetArch` naming a row of the table."""
        if not isinstance(arch, SubsetArch):
            raise ValueError(
                f"TableSubset.validate: `arch` must be a SubsetArch; got {type(arch).__name__}"
            )
        row = np.asarray(arch.row)
        if (
            row.shape != ()
            or not np.issubdtype(row.dtype, np.integer)
            or not (0 <= int(row) < self.size)
        ):
            raise ValueError(
                f"TableSubset.validate: `arch.row` must be an integer in "
                f"[0, {self.size}); got {arch.row!r}"
            )

    def to_string(self, arch: SubsetArch) -> str:
        return self.base.to_string(jax.tree.map(lambda x: np.asarray(x)[int(arch.row)], self.cells))

    def from_string(self, string: str) -> SubsetArch:
        """The row of the cell `string` names in the base space; `ValueError` when the
        table does not hold it."""
        target = self.base.to_string(self.base.from_string(string))
        for row in range(self.size):
            if self.to_string(SubsetArch(jnp.int32(row))) == target:
                return SubsetArch(jnp.asarray(row, jnp.int32))
        raise ValueError(
            f"TableSubset.from_string: `string` must name one of the table's "
            f"{self.size} cells; got {string!r}"
        )

    def one_hot(self, arch: SubsetArch) -> jax.Array:
        return jnp.asarray(self._encodings["one_hot"])[arch.row]


class _WithPath:
    """The base space's BANANAS path encoding, precomputed per row."""

    _encodings: dict
    base: Any

    @property
    def path_dim(self) -> int:
        return int(self.base.path_dim)

    def path(self, arch: SubsetArch) -> jax.Array:
        return jnp.asarray(self._encodings["path"])[arch.row]


class _WithAdjacency:
    """The base space's cell graph of a row."""

    base: Any

    def adjacency(self, arch: SubsetArch) -> Any:
        return self.base.adjacency(self.cell(arch))  # type: ignore[attr-defined]


@functools.cache
def _subset_class(path: bool, adjacency: bool) -> type:
    if not (path or adjacency):
        return TableSubset
    bases = ((_WithPath,) if path else ()) + ((_WithAdjacency,) if adjacency else ())
    name = "TableSubset" + "".join(b.__name__[5:] for b in bases)
    return type(name, (*bases, TableSubset), {})


def subset_space(base: Any, cells: Any, neighbors_k: int = 8) -> TableSubset:
    """A `TableSubset` of `cells` that offers `path` / `adjacency` exactly where `base`
    does (its class declares them, so the capability checks of `jnas.spaces` see it)."""
    cls = _subset_class(offers(base, HasPath), offers(base, HasAdjacency))
    return cls(base, cells, neighbors_k)


def restrict(table: Table, *, neighbors: int = 8) -> Table:
    """`table` over a `TableSubset` of its own cells: searchers then only propose cells
    the table has. Needs a table that lists its cells (`row_archs`: NB101 tables)."""
    if table.row_archs is None:
        raise ValueError(
            f"restrict: {table.name} does not list its cells (`row_archs`); "
            "it already covers its whole space, search that space directly"
        )
    space = subset_space(table.space, jax.tree.map(np.asarray, table.row_archs), neighbors)
    return dataclasses.replace(
        table, space=space, name=f"{table.name} (its cells only)", row_keys=None, row_archs=None
    )
