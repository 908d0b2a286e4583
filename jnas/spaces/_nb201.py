"""The NAS-Bench-201 cell space (Dong & Yang, ICLR 2020).

A cell is a DAG on `num_nodes` nodes whose every edge i -> j (i < j) carries one op.
The architecture is the op index on each edge in the benchmark's string order
(e01, e02, e12, e03, e13, e23), so the 15,625 cells of the benchmark are int8[6] arrays.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import random
import re
from typing import Any, NamedTuple

import jax
import jax.core
import jax.numpy as jnp
import numpy as np

from jnas.spaces._common import (
    DecisionSupernet,
    bad,
    categorical_neighbors,
    check_int,
    check_names,
    concrete,
    mutate_categorical,
)

NB201_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
# The seed with which the NB201 authors shuffled the enumeration into the benchmark's
# index order (`random.seed(88); random.shuffle(archs)` in AutoDL-Projects'
# `generate_meta_info`); reproduced here so `index` needs no table file.
_BENCHMARK_SHUFFLE_SEED = 88


class NB201Arch(NamedTuple):
    """One NB201 cell; a batch has a leading axis."""

    ops: jax.Array  # int8[E]: op index on each edge, string order (e01, e02, e12, ...)


class AdjacencyEncoding(NamedTuple):
    """A DAG with an op label on every node (the form predictors and kernels take)."""

    matrix: jax.Array  # int8[V, V]: matrix[i, j] = 1 for an edge i -> j
    ops: jax.Array  # int8[V]: op label of each node (input/output have their own labels)


@dataclasses.dataclass(frozen=True)
class NB201(DecisionSupernet):
    """The NAS-Bench-201 / NATS-Bench topology search space.

    Args:
      ops: candidate operations; the default is the benchmark's order.
      num_nodes: nodes of the cell DAG, input included (the benchmark has 4).

    With the defaults, `index` is the benchmark's own row index, so the tables in
    `jnas.bench` are indexed by it directly.

    >>> space = NB201()
    >>> space.to_string(space.from_index(6111))
    '|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|'
    """

    ops: tuple[str, ...] = NB201_OPS
    num_nodes: int = 4

    def __post_init__(self) -> None:
        check_names("NB201", "ops", self.ops)
        check_int("NB201", "num_nodes", self.num_nodes, 2, 8)
        for op in self.ops:
            if "~" in op or "|" in op or "+" in op:
                raise bad("NB201", "ops", "names without '~', '|' or '+'", op)

    # ----------------------------------------------------------------- structure
    @property
    def num_edges(self) -> int:
        return self.num_nodes * (self.num_nodes - 1) // 2

    @property
    def num_ops(self) -> int:
        return len(self.ops)

    @property
    def edges(self) -> tuple[tuple[int, int], ...]:
        """(source, target) of each edge, in string order."""
        return tuple((i, j) for j in range(1, self.num_nodes) for i in range(j))

    @property
    def size(self) -> int:
        return self.num_ops**self.num_edges

    @property
    def is_benchmark(self) -> bool:
        """Whether `index` is the NAS-Bench-201 row index."""
        return self.ops == NB201_OPS and self.num_nodes == 4

    # ----------------------------------------------------------------- decisions
    @property
    def decision_sizes(self) -> tuple[int, ...]:
        """Choices of each categorical decision (what policy-based searchers sample)."""
        return (self.num_ops,) * self.num_edges

    def to_decisions(self, arch: NB201Arch) -> jax.Array:
        return jnp.asarray(arch.ops).astype(jnp.int32)

    def from_decisions(self, decisions: jax.Array) -> NB201Arch:
        return NB201Arch(jnp.asarray(decisions).astype(jnp.int8))

    # ------------------------------------------------------------------ sampling
    def sample(self, key: jax.Array) -> NB201Arch:
        """A uniformly random cell. Many: `jax.vmap(space.sample)(keys)`."""
        return NB201Arch(jax.random.randint(key, (self.num_edges,), 0, self.num_ops, jnp.int8))

    def mutate(self, key: jax.Array, arch: NB201Arch) -> NB201Arch:
        """Change the op of exactly one edge to a different op."""
        return NB201Arch(mutate_categorical(key, arch.ops, self.num_ops))

    def neighbors(self, arch: NB201Arch) -> tuple[NB201Arch, jax.Array]:
        """All E * (K - 1) cells one op change away, and a mask (all True here)."""
        batch, mask = categorical_neighbors(arch.ops, self.num_ops)
        return NB201Arch(batch), mask

    def is_valid(self, arch: NB201Arch) -> jax.Array:
        """bool[]: every op index in range (jittable)."""
        ops = jnp.asarray(arch.ops)
        return jnp.all((ops >= 0) & (ops < self.num_ops))

    def validate(self, arch: Any) -> None:
        """Raise `ValueError` unless `arch` is one valid cell (Python side)."""
        if not isinstance(arch, NB201Arch):
            raise bad("NB201.validate", "arch", "an NB201Arch", type(arch).__name__)
        ops = concrete("NB201.validate", "arch.ops", arch.ops, (self.num_edges,))
        if ops.min() < 0 or ops.max() >= self.num_ops:
            raise bad(
                "NB201.validate", "arch.ops", f"op indices in [0, {self.num_ops})", ops.tolist()
            )

    # ------------------------------------------------------------------- indexing
    def code(self, arch: NB201Arch) -> jax.Array:
        """int32[]: the cell's position in the plain enumeration (first edge most significant)."""
        radix = self.num_ops ** jnp.arange(self.num_edges - 1, -1, -1, dtype=jnp.int32)
        return arch.ops.astype(jnp.int32) @ radix  # widen first: int8 would overflow

    def index(self, arch: NB201Arch) -> jax.Array:
        """int32[]: the benchmark row of the cell (jittable)."""
        return jnp.asarray(_tables(self)[0])[self.code(arch)]

    def from_index(self, index: jax.Array | int) -> NB201Arch:
        """The cell at a benchmark row (jittable). Out-of-range rows raise when concrete."""
        if not isinstance(index, jax.core.Tracer):
            i = np.asarray(index)
            if not np.issubdtype(i.dtype, np.integer) or np.any((i < 0) | (i >= self.size)):
                raise bad("NB201.from_index", "index", f"integers in [0, {self.size})", index)
        return NB201Arch(jnp.asarray(_tables(self)[1])[index])

    def enumerate(self) -> NB201Arch:
        """Every cell, as a batch in index order."""
        return NB201Arch(jnp.asarray(_tables(self)[1]))

    # -------------------------------------------------------------------- strings
    def to_string(self, arch: NB201Arch) -> str:
        """The benchmark's string, e.g. `|nor_conv_3x3~0|+|skip_connect~0|none~1|+|...|`."""
        self.validate(arch)
        ops = np.asarray(arch.ops).tolist()
        nodes, k = [], 0
        for j in range(1, self.num_nodes):
            nodes.append("|" + "|".join(f"{self.ops[ops[k + i]]}~{i}" for i in range(j)) + "|")
            k += j
        return "+".join(nodes)

    def from_string(self, string: str) -> NB201Arch:
        """Parse the benchmark's string form; raise `ValueError` on anything else."""
        where = "NB201.from_string"
        if not isinstance(string, str):
            raise bad(where, "string", "a str", type(string).__name__)
        nodes = string.split("+")
        if len(nodes) != self.num_nodes - 1:
            raise bad(
                where,
                "string",
                f"{self.num_nodes - 1} '+'-separated nodes like "
                "'|nor_conv_3x3~0|+|skip_connect~0|none~1|+...'",
                string,
            )
        ops = []
        for j, node in enumerate(nodes, start=1):
            if not re.fullmatch(r"\|([^|]+\|)+", node):
                raise bad(where, "string", f"node {j} written as '|op~i|op~i|'", node)
            edges = node.strip("|").split("|")
            if len(edges) != j:
                raise bad(where, "string", f"node {j} with exactly {j} inputs", node)
            for i, edge in enumerate(edges):
                op, sep, src = edge.rpartition("~")
                if not sep or src != str(i):
                    raise bad(where, "string", f"edge {i} of node {j} as 'op~{i}'", edge)
                if op not in self.ops:
                    raise bad(where, "string", f"ops from {self.ops}", op)
                ops.append(self.ops.index(op))
        return NB201Arch(jnp.asarray(ops, jnp.int8))

    def isomorphism_key(self, arch: NB201Arch) -> str:
        """A string shared exactly by cells that compute the same function.

        The NATS-Bench `unique_str` (AutoDL's `CellStructure.to_unique_str(consider_zero=True)`):
        `none` edges and nodes fed only by zeros drop out, `skip_connect` passes its input's
        expression through, and the inputs of a node are summed, so their order is irrelevant.
        """
        self.validate(arch)
        if "none" not in self.ops or "skip_connect" not in self.ops:
            raise bad(
                "NB201.isomorphism_key",
                "space.ops",
                "to contain 'none' and 'skip_connect' (their semantics define the classes)",
                self.ops,
            )
        ops = np.asarray(arch.ops).tolist()
        exprs, k = {0: "0"}, 0
        for j in range(1, self.num_nodes):
            terms = []
            for i in range(j):
                op = self.ops[ops[k + i]]
                if op == "none" or exprs[i] == "#":
                    terms.append("#")
                elif op == "skip_connect":
                    terms.append(exprs[i])
                else:
                    terms.append(f"({exprs[i]})@{op}")
            k += j
            exprs[j] = "+".join(sorted(terms))
        return exprs[self.num_nodes - 1]

    # ------------------------------------------------------------------ encodings
    def one_hot(self, arch: NB201Arch) -> jax.Array:
        """float32[E, K]: one row per edge."""
        return jax.nn.one_hot(arch.ops, self.num_ops, dtype=jnp.float32)

    def adjacency(self, arch: NB201Arch) -> AdjacencyEncoding:
        """The cell with ops moved onto nodes (BANANAS / NASLib form).

        Nodes: input, one node per edge (in string order), output; op labels are
        `0..K-1` for the edge ops, `K` for the input and `K + 1` for the output.
        """
        num_v = self.num_edges + 2
        matrix = np.zeros((num_v, num_v), np.int8)
        for e, (i, j) in enumerate(self.edges):
            src = [0] if i == 0 else [1 + f for f, (_, t) in enumerate(self.edges) if t == i]
            for s in src:
                matrix[s, 1 + e] = 1
            if j == self.num_nodes - 1:
                matrix[1 + e, num_v - 1] = 1
        labels = jnp.concatenate(
            [
                jnp.array([self.num_ops], jnp.int8),
                arch.ops.astype(jnp.int8),
                jnp.array([self.num_ops + 1], jnp.int8),
            ]
        )
        return AdjacencyEncoding(jnp.asarray(matrix), labels)

    @functools.cached_property
    def _paths(self) -> tuple[tuple[int, ...], ...]:
        """Every input -> output path as a tuple of edge indices."""
        edge_id = {e: k for k, e in enumerate(self.edges)}
        out = []
        last = self.num_nodes - 1
        inner = range(1, last)
        for r in range(len(inner) + 1):
            for mid in itertools.combinations(inner, r):
                nodes = (0, *mid, last)
                out.append(tuple(edge_id[(a, b)] for a, b in itertools.pairwise(nodes)))
        return tuple(out)

    @property
    def path_dim(self) -> int:
        alphabet = self.num_ops - ("none" in self.ops)
        return sum(alphabet**n for n in range(1, self.num_nodes))

    def path(self, arch: NB201Arch) -> jax.Array:
        """float32[path_dim]: the BANANAS path encoding (White et al., AAAI 2021).

        One feature per sequence of ops along an input -> output path; a path through a
        `none` edge carries nothing, so `none` is left out of the alphabet.
        """
        zero = self.ops.index("none") if "none" in self.ops else -1
        # rank of each op in the alphabet without `none`
        rank = jnp.asarray([i - (zero >= 0 and i > zero) for i in range(self.num_ops)], jnp.int32)
        alphabet = self.num_ops - (zero >= 0)
        feats = jnp.zeros((self.path_dim,), jnp.float32)
        for path in self._paths:
            n = len(path)
            offset = sum(alphabet**m for m in range(1, n))
            ops = arch.ops[jnp.asarray(path)].astype(jnp.int32)
            idx = offset + rank[ops] @ (alphabet ** jnp.arange(n - 1, -1, -1, dtype=jnp.int32))
            alive = jnp.all(ops != zero)
            feats = feats.at[idx].max(alive.astype(jnp.float32))
        return feats

    # ------------------------------------------------------------------- networks
    def build(
        self,
        arch: NB201Arch,
        *,
        channels: int = 16,
        cells_per_stage: int = 5,
        num_classes: int = 10,
        rngs: Any = None,
    ) -> Any:
        """The NB201 network of this cell (`jnas.nn.NB201Network`), as the benchmark trains it."""
        from jnas.nn import NB201Network

        self.validate(arch)
        return NB201Network(
            self,
            arch,
            channels=channels,
            cells_per_stage=cells_per_stage,
            num_classes=num_classes,
            rngs=rngs,
        )

    def supernet(
        self,
        *,
        channels: int = 16,
        cells_per_stage: int = 5,
        num_classes: int = 10,
        in_channels: int = 3,
        stem_stride: int = 1,
        scan: bool = True,
        remat: bool = True,
        conv_impl: str = "auto",
        rngs: Any = None,
    ) -> Any:
        """The weight-sharing search network (`jnas.nn.NB201Supernet`, C=16, N=5 default;
        `scan` / `remat`: scanned cells, recomputation in the backward pass; `conv_impl`: the
        3x3 convolutions as im2col products, "patches", XLA's own, "native", or "auto",
        native on a CPU and patches elsewhere)."""
        from jnas.nn import NB201Supernet

        return NB201Supernet(
            self.edges,
            self.ops,
            channels=channels,
            cells_per_stage=cells_per_stage,
            num_classes=num_classes,
            in_channels=in_channels,
            stem_stride=stem_stride,
            scan=scan,
            remat=remat,
            conv_impl=conv_impl,
            rngs=rngs,
        )


@functools.cache
def _tables(space: NB201) -> tuple[np.ndarray, np.ndarray]:
    """(code -> index, index -> ops) for a space; the benchmark's shuffle when it is one."""
    all_ops = np.array(
        list(itertools.product(range(space.num_ops), repeat=space.num_edges)), np.int8
    ).reshape(space.size, space.num_edges)
    order = np.arange(space.size)
    if space.is_benchmark:
        order = list(order)
        random.Random(_BENCHMARK_SHUFFLE_SEED).shuffle(order)
        order = np.asarray(order)
    index_to_ops = all_ops[order]
    code_to_index = np.empty(space.size, np.int32)
    code_to_index[order] = np.arange(space.size, dtype=np.int32)
    return code_to_index, index_to_ops
