"""The NAS-Bench-101 cell space (Ying et al., ICML 2019).

A cell is a DAG on at most 7 vertices (input, up to 5 ops, output) given by an
upper-triangular adjacency matrix with at most 9 edges. Architectures are always stored
as 7x7 matrices; a smaller cell is a 7x7 matrix whose extra vertices lie on no
input -> output path, which `prune` removes exactly as the NB101 release does.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jnas._hash import mix32
from jnas.spaces._common import (
    bad,
    check_int,
    check_names,
    concrete,
    random_choice_masked,
)
from jnas.spaces._nb201 import AdjacencyEncoding

NB101_OPS = ("conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3")


class NB101Arch(NamedTuple):
    """One NB101 cell; a batch has a leading axis."""

    matrix: jax.Array  # int8[V, V]: upper-triangular adjacency, vertex 0 input, V-1 output
    ops: jax.Array  # int8[V - 2]: op index of each interior vertex


@dataclasses.dataclass(frozen=True)
class NB101:
    """The NAS-Bench-101 space: 7 vertices, at most 9 edges, 3 interior ops.

    `hash` is the release's graph-isomorphism fingerprint (`hash_module` in
    `nasbench/lib/graph_util.py`), so cells can be found in the official tables.
    """

    ops: tuple[str, ...] = NB101_OPS
    num_vertices: int = 7
    max_edges: int = 9

    def __post_init__(self) -> None:
        check_names("NB101", "ops", self.ops)
        check_int("NB101", "num_vertices", self.num_vertices, 2, 12)
        check_int("NB101", "max_edges", self.max_edges, 1)
        for op in self.ops:
            if op in ("input", "output") or "|" in op or ":" in op:
                raise bad("NB101", "ops", "names other than input/output, without '|' or ':'", op)

    @property
    def num_ops(self) -> int:
        return len(self.ops)

    @property
    def num_interior(self) -> int:
        return self.num_vertices - 2

    @property
    def size(self) -> int:
        """Distinct (non-isomorphic) valid cells: 423,624 in the release's configuration."""
        if (self.ops, self.num_vertices, self.max_edges) != (NB101_OPS, 7, 9):
            raise ValueError(
                "NB101.size: known only for the release's configuration (3 ops, "
                f"7 vertices, 9 edges); got {self.ops}, {self.num_vertices}, "
                f"{self.max_edges}"
            )
        return 423_624  # Ying et al. 2019, Section 2.2

    @property
    def _triu(self) -> np.ndarray:
        return np.triu(np.ones((self.num_vertices,) * 2, np.int8), 1)

    @property
    def _edge_slots(self) -> np.ndarray:
        """(row, col) of the upper-triangular entries, row-major."""
        return np.argwhere(self._triu)

    # ----------------------------------------------------------------- validity
    def prune(self, arch: NB101Arch) -> tuple[NB101Arch, jax.Array]:
        """Remove vertices on no input -> output path (jittable).

        Returns the pruned cell (dead rows, columns and ops zeroed) and bool[V], which
        vertices are alive. A cell with no input -> output path has no live vertex.
        """
        m = jnp.asarray(arch.matrix).astype(jnp.int32) * jnp.asarray(self._triu, jnp.int32)
        v = self.num_vertices
        fwd = jnp.zeros(v, bool).at[0].set(True)
        bwd = jnp.zeros(v, bool).at[v - 1].set(True)
        for _ in range(v - 1):
            fwd = fwd | ((fwd.astype(jnp.int32) @ m) > 0)
            bwd = bwd | ((m @ bwd.astype(jnp.int32)) > 0)
        live = fwd & bwd
        keep = live[:, None] & live[None, :]
        matrix = jnp.where(keep, m, 0).astype(jnp.int8)
        ops = jnp.where(live[1:-1], jnp.asarray(arch.ops), 0).astype(jnp.int8)
        return NB101Arch(matrix, ops), live

    def _prune_host(self, matrix: np.ndarray, ops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """`prune` in NumPy on host values (no device round trip: loading a table prunes
        every cell of the release; concrete even inside `nnx.eval_shape`)."""
        m = (np.asarray(matrix) != 0).astype(np.int32) * self._triu
        v = self.num_vertices
        fwd = np.zeros(v, bool)
        fwd[0] = True
        bwd = np.zeros(v, bool)
        bwd[v - 1] = True
        for _ in range(v - 1):
            fwd = fwd | ((fwd.astype(np.int32) @ m) > 0)
            bwd = bwd | ((m @ bwd.astype(np.int32)) > 0)
        live = fwd & bwd
        return np.where(live[:, None] & live[None, :], m, 0).astype(np.int8), live

    def is_valid(self, arch: NB101Arch) -> jax.Array:
        """bool[]: 0/1 upper-triangular matrix, ops in range, a path from input to output,
        and at most `max_edges` edges once pruned (the NB101 rules; jittable)."""
        m = jnp.asarray(arch.matrix).astype(jnp.int32)
        ops = jnp.asarray(arch.ops).astype(jnp.int32)
        shape_ok = jnp.all((m == 0) | (m == 1)) & jnp.all(m * (1 - self._triu) == 0)
        ops_ok = jnp.all((ops >= 0) & (ops < self.num_ops))
        pruned, live = self.prune(arch)
        edges = jnp.sum(pruned.matrix.astype(jnp.int32))
        return shape_ok & ops_ok & live[0] & (edges <= self.max_edges)

    def validate(self, arch: Any) -> None:
        """Raise `ValueError` naming what is wrong with `arch` (Python side)."""
        where = "NB101.validate"
        if not isinstance(arch, NB101Arch):
            raise bad(where, "arch", "an NB101Arch", type(arch).__name__)
        v = self.num_vertices
        self._check_host(
            where,
            concrete(where, "arch.matrix", arch.matrix, (v, v)),
            concrete(where, "arch.ops", arch.ops, (v - 2,)),
        )

    def _check_host(self, where: str, m: np.ndarray, ops: np.ndarray) -> None:
        """`validate` on host arrays (V x V matrix, V-2 op ids)."""
        if not np.isin(m, (0, 1)).all():
            raise bad(where, "arch.matrix", "0/1 entries", m.tolist())
        if np.any(np.tril(m) != 0):
            raise bad(
                where, "arch.matrix", "upper triangular (a DAG in topological order)", m.tolist()
            )
        if ops.min() < 0 or ops.max() >= self.num_ops:
            raise bad(where, "arch.ops", f"op indices in [0, {self.num_ops})", ops.tolist())
        pruned_m, live = self._prune_host(m, ops)
        if not live[0]:
            raise bad(
                where,
                "arch.matrix",
                "a graph with a path from input to output (it is disconnected)",
                m.tolist(),
            )
        edges = int(np.sum(pruned_m))
        if edges > self.max_edges:
            raise bad(where, "arch.matrix", f"at most {self.max_edges} edges after pruning", edges)

    # ------------------------------------------------------------------ sampling
    def sample(self, key: jax.Array) -> NB101Arch:
        """A uniformly random valid cell: random edges and ops, rejected until valid
        (the NB101 paper's random search)."""

        def draw(key):
            e_key, o_key = jax.random.split(key)
            bits = jax.random.bernoulli(e_key, 0.5, (self.num_vertices,) * 2)
            matrix = (bits & self._triu.astype(bool)).astype(jnp.int8)
            ops = jax.random.randint(o_key, (self.num_interior,), 0, self.num_ops, jnp.int8)
            return NB101Arch(matrix, ops)

        def cond(carry):
            return ~self.is_valid(carry[1])

        def body(carry):
            key, _ = carry
            key, sub = jax.random.split(key)
            return key, draw(sub)

        key, sub = jax.random.split(key)
        return jax.lax.while_loop(cond, body, (key, draw(sub)))[1]

    def neighbors(self, arch: NB101Arch) -> tuple[NB101Arch, jax.Array]:
        """Every single change (flip one edge, or change one op) and whether it is valid."""
        slots = self._edge_slots
        n_e = len(slots)
        flip = jnp.zeros((n_e, *arch.matrix.shape), jnp.int8)
        flip = flip.at[jnp.arange(n_e), slots[:, 0], slots[:, 1]].set(1)
        edge_m = jnp.bitwise_xor(arch.matrix[None].astype(jnp.int8), flip)
        edge_ops = jnp.tile(arch.ops[None], (n_e, 1))
        pos = np.repeat(np.arange(self.num_interior), self.num_ops - 1)
        shift = np.tile(np.arange(1, self.num_ops), self.num_interior)
        new = (arch.ops[pos].astype(jnp.int32) + shift) % self.num_ops
        op_ops = jnp.tile(arch.ops[None], (len(pos), 1))
        op_ops = op_ops.at[jnp.arange(len(pos)), pos].set(new.astype(jnp.int8))
        op_m = jnp.tile(arch.matrix[None], (len(pos), 1, 1))
        batch = NB101Arch(
            jnp.concatenate([edge_m, op_m.astype(jnp.int8)]),
            jnp.concatenate([edge_ops.astype(jnp.int8), op_ops]),
        )
        return batch, jax.vmap(self.is_valid)(batch)

    def mutate(self, key: jax.Array, arch: NB101Arch) -> NB101Arch:
        """Exactly one change (one edge flipped or one op changed), uniform among the
        changes that keep the cell valid. An op change is always valid, so one exists."""
        batch, mask = self.neighbors(arch)
        i = random_choice_masked(key, mask)
        return jax.tree.map(lambda x: x[i], batch)

    # -------------------------------------------------------------------- hashing
    def spec(self, arch: NB101Arch) -> tuple[np.ndarray, list[str]]:
        """The pruned cell as the release's `ModelSpec` holds it: (matrix, op names)."""
        self.validate(arch)
        return self._spec_host(np.asarray(arch.matrix), np.asarray(arch.ops))

    def _spec_host(self, matrix: np.ndarray, ops: np.ndarray) -> tuple[np.ndarray, list[str]]:
        pruned_m, live = self._prune_host(matrix, ops)
        m = pruned_m[np.ix_(live, live)].astype(np.int64)
        names = ["input"] + [
            self.ops[o] for o, a in zip(ops.tolist(), live[1:-1], strict=True) if a
        ]
        return m, [*names, "output"]

    def hash(self, arch: NB101Arch) -> str:
        """The NB101 release's fingerprint: equal for isomorphic cells (MD5, hex)."""
        self.validate(arch)
        return self.hash_arrays(np.asarray(arch.matrix), np.asarray(arch.ops))

    def hash_arrays(self, matrix: np.ndarray, ops: np.ndarray) -> str:
        """`hash` of a valid cell given as host arrays (`spec_arrays`' output), without a
        device round trip: the loaders hash every cell of a release this way."""
        spec_matrix, names = self._spec_host(np.asarray(matrix), np.asarray(ops))
        labels = (
            [-1]
            + [NB101_OPS.index(n) if n in NB101_OPS else self.ops.index(n) for n in names[1:-1]]
            + [-2]
        )
        return _hash_module(spec_matrix, labels)

    def fingerprint(self, arch: NB101Arch) -> jax.Array:
        """uint32[2]: a jittable graph-invariant key of the pruned cell.

        Weisfeiler-Lehman refinement like `hash`, with integer mixing (murmur3's
        finaliser) in place of MD5 and sums in place of sorted lists, run twice with
        different constants for 64 bits. Isomorphic cells share it; `jnas.bench` checks
        that a table's cells do not collide, so it can index tables inside `jit`.
        """
        pruned, live = self.prune(arch)
        return self._fingerprint(jnp, pruned.matrix, pruned.ops, live)

    def fingerprints_host(self, matrices: np.ndarray, ops: np.ndarray) -> np.ndarray:
        """uint32[N, 2]: `fingerprint` of N valid cells given as host arrays (int8[N, V, V],
        int8[N, V-2]), computed by NumPy in one vectorised pass: the same values, with no
        compile (a table of the whole release keys its 423k rows this way)."""
        m = (np.asarray(matrices) != 0).astype(np.int32) * self._triu
        v = self.num_vertices
        fwd = np.zeros(m.shape[:-1], bool)
        fwd[:, 0] = True
        bwd = np.zeros(m.shape[:-1], bool)
        bwd[:, v - 1] = True
        for _ in range(v - 1):
            fwd = fwd | (np.einsum("nv,nvw->nw", fwd.astype(np.int32), m) > 0)
            bwd = bwd | (np.einsum("nvw,nw->nv", m, bwd.astype(np.int32)) > 0)
        live = fwd & bwd
        pruned = np.where(live[:, :, None] & live[:, None, :], m, 0)
        pruned_ops = np.where(live[:, 1:-1], np.asarray(ops), 0)
        return self._fingerprint(np, pruned, pruned_ops, live)

    def _fingerprint(self, xp: Any, matrix: Any, ops: Any, live: Any) -> Any:
        """The fingerprint of pruned cells (any leading batch axes) with `xp` = jnp or np."""
        u32 = xp.uint32
        m = matrix.astype(u32)
        batch = ops.shape[:-1]
        labels = xp.concatenate(
            [
                xp.full((*batch, 1), self.num_ops, u32),
                ops.astype(u32),
                xp.full((*batch, 1), self.num_ops + 1, u32),
            ],
            axis=-1,
        )
        keys = []
        for salt in (0x9E3779B9, 0x85EBCA77):
            h = mix32(labels * u32(0x01000193) + u32(salt), xp)
            h = mix32(h ^ (xp.sum(m, axis=-2, dtype=u32) * u32(0x27D4EB2F)), xp)
            h = mix32(h + xp.sum(m, axis=-1, dtype=u32) * u32(0x165667B1), xp)
            for _ in range(self.num_vertices):
                g = mix32(h + u32(salt), xp)
                into = xp.sum(m * g[..., :, None], axis=-2, dtype=u32)
                out = xp.sum(m * g[..., None, :], axis=-1, dtype=u32)
                h = mix32(
                    h * u32(0xCC9E2D51)
                    + mix32(into ^ u32(0x1B873593), xp)
                    + mix32(out + u32(0xE6546B64), xp) * u32(3),
                    xp,
                )
            keys.append(xp.sum(xp.where(live, mix32(h, xp), u32(0)), axis=-1, dtype=u32))
        return xp.stack(keys, axis=-1)

    # -------------------------------------------------------------------- strings
    def to_string(self, arch: NB101Arch) -> str:
        """`'<row-major 0/1 adjacency>:input|op|...|output'` (the NASLib table's columns)."""
        self.validate(arch)
        bits = "".join(str(b) for b in np.asarray(arch.matrix).reshape(-1).tolist())
        names = ["input"] + [self.ops[o] for o in np.asarray(arch.ops).tolist()] + ["output"]
        return f"{bits}:{'|'.join(names)}"

    def from_string(self, string: str) -> NB101Arch:
        """Parse `to_string`'s form; an n x n cell (n <= V) is padded with dead vertices."""
        where = "NB101.from_string"
        if not isinstance(string, str):
            raise bad(where, "string", "a str", type(string).__name__)
        if string.count(":") != 1:
            raise bad(where, "string", "'<n*n 0/1 digits>:input|op|...|output'", string)
        bits, names = string.split(":")
        names = names.split("|")
        n = len(names)
        if len(bits) != n * n or set(bits) - {"0", "1"}:
            raise bad(where, "string", f"{n}*{n} = {n * n} 0/1 digits for {n} ops", bits)
        matrix = np.array([int(b) for b in bits], np.int64).reshape(n, n)
        return self.from_spec(matrix, names)

    def from_spec(
        self, matrix: Sequence[Sequence[int]] | np.ndarray, ops: Sequence[str]
    ) -> NB101Arch:
        """An arch from an NB101 `ModelSpec`-style (matrix, op names) of any size <= V.

        Op names may be the release's (`conv3x3-bn-relu`, ...) with `input`/`output` first
        and last. Smaller cells get dead padding vertices before the output.
        """
        full, op_ids = self.spec_arrays(matrix, ops, where="NB101.from_spec")
        return NB101Arch(jnp.asarray(full), jnp.asarray(op_ids))

    def spec_arrays(
        self,
        matrix: Sequence[Sequence[int]] | np.ndarray,
        ops: Sequence[str],
        *,
        where: str = "NB101.spec_arrays",
    ) -> tuple[np.ndarray, np.ndarray]:
        """`from_spec` on the host: the checked, padded (int8[V, V] matrix, int8[V-2] op
        ids), for building tables of many cells without a device transfer per cell."""
        m = np.asarray(matrix)
        n = len(ops)
        if m.ndim != 2 or m.shape != (n, n) or not 2 <= n <= self.num_vertices:
            raise bad(
                where,
                "matrix",
                f"a square n x n matrix with n = len(ops) in [2, {self.num_vertices}]",
                m.shape,
            )
        if list(ops[:1]) != ["input"] or list(ops[-1:]) != ["output"]:
            raise bad(where, "ops", "'input' first and 'output' last", list(ops))
        for op in ops[1:-1]:
            if op not in self.ops:
                raise bad(where, "ops", f"interior ops from {self.ops}", op)
        v = self.num_vertices
        full = np.zeros((v, v), np.int8)
        idx = [*range(n - 1), v - 1]  # pad between the last op and the output
        full[np.ix_(idx, idx)] = m
        op_ids = np.zeros(v - 2, np.int8)
        op_ids[: n - 2] = [self.ops.index(o) for o in ops[1:-1]]
        self._check_host(where, full, op_ids)
        return full, op_ids

    # ------------------------------------------------------------------ encodings
    def one_hot(self, arch: NB101Arch) -> jax.Array:
        """float32[E + (V-2) * K]: upper-triangle bits then one-hot interior ops."""
        slots = self._edge_slots
        bits = arch.matrix[slots[:, 0], slots[:, 1]].astype(jnp.float32)
        ops = jax.nn.one_hot(arch.ops, self.num_ops, dtype=jnp.float32).reshape(-1)
        return jnp.concatenate([bits, ops])

    def adjacency(self, arch: NB101Arch) -> AdjacencyEncoding:
        """The pruned cell; labels `0..K-1` for ops, `K` for input, `K+1` for output."""
        pruned, _ = self.prune(arch)
        labels = jnp.concatenate(
            [
                jnp.array([self.num_ops], jnp.int8),
                pruned.ops,
                jnp.array([self.num_ops + 1], jnp.int8),
            ]
        )
        return AdjacencyEncoding(pruned.matrix, labels)

    @property
    def path_dim(self) -> int:
        return sum(self.num_ops**n for n in range(self.num_interior + 1))

    def path(self, arch: NB101Arch) -> jax.Array:
        """float32[path_dim]: BANANAS path encoding (364 features for NB101)."""
        feats = jnp.zeros((self.path_dim,), jnp.float32)
        m = jnp.asarray(arch.matrix)
        ops = jnp.asarray(arch.ops).astype(jnp.int32)
        last = self.num_vertices - 1
        for r in range(self.num_interior + 1):
            offset = sum(self.num_ops**n for n in range(r))
            for mid in itertools.combinations(range(1, last), r):
                nodes = (0, *mid, last)
                alive = jnp.all(jnp.stack([m[a, b] == 1 for a, b in itertools.pairwise(nodes)]))
                seq = ops[jnp.asarray(mid, jnp.int32) - 1] if mid else jnp.zeros(0, jnp.int32)
                idx = offset + (seq @ (self.num_ops ** jnp.arange(r, dtype=jnp.int32)) if r else 0)
                feats = feats.at[idx].max(alive.astype(jnp.float32))
        return feats

    # ------------------------------------------------------------------- networks
    def build(
        self,
        arch: NB101Arch,
        *,
        stem_channels: int = 128,
        num_stacks: int = 3,
        cells_per_stack: int = 3,
        num_classes: int = 10,
        rngs: Any = None,
    ) -> Any:
        """The NB101 network (`jnas.nn.NB101Network`) of the pruned cell."""
        from jnas.nn import NB101Network

        matrix, names = self.spec(arch)
        return NB101Network(
            matrix,
            names,
            stem_channels=stem_channels,
            num_stacks=num_stacks,
            cells_per_stack=cells_per_stack,
            num_classes=num_classes,
            rngs=rngs,
        )


def _hash_module(matrix: np.ndarray, labeling: list[int]) -> str:
    """`nasbench.lib.graph_util.hash_module`, verbatim in behaviour."""
    vertices = np.shape(matrix)[0]
    in_edges = np.sum(matrix, axis=0).tolist()
    out_edges = np.sum(matrix, axis=1).tolist()
    hashes = [
        hashlib.md5(str(h).encode("utf-8")).hexdigest()
        for h in zip(out_edges, in_edges, labeling, strict=True)
    ]
    for _ in range(vertices):
        new_hashes = []
        for v in range(vertices):
            in_neighbors = sorted(hashes[w] for w in range(vertices) if matrix[w, v])
            out_neighbors = sorted(hashes[w] for w in range(vertices) if matrix[v, w])
            new_hashes.append(
                hashlib.md5(
                    ("".join(in_neighbors) + "|" + "".join(out_neighbors) + "|" + hashes[v]).encode(
                        "utf-8"
                    )
                ).hexdigest()
            )
        hashes = new_hashes
    return hashlib.md5(str(sorted(hashes)).encode("utf-8")).hexdigest()
