"""The DARTS cell space (Liu et al., ICLR 2019), as in NAS-Bench-301.

A normal and a reduction cell; each has 4 intermediate nodes and each node picks two
distinct inputs among the two cell inputs and the earlier nodes, with one op per input.
Node k's inputs are indices in [0, k + 2): 0 is c_{k-2}, 1 is c_{k-1}, 2.. are nodes.
"""

from __future__ import annotations

import ast
import dataclasses
import itertools
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

DARTS_OPS = (
    "none",
    "max_pool_3x3",
    "avg_pool_3x3",
    "skip_connect",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "dil_conv_3x3",
    "dil_conv_5x5",
)

DARTS_V1 = (
    "Genotype(normal=[('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 0), "
    "('sep_conv_3x3', 1), ('skip_connect', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), "
    "('skip_connect', 2)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), "
    "('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 0), ('max_pool_3x3', 0), "
    "('skip_connect', 2), ('skip_connect', 2), ('avg_pool_3x3', 0)], "
    "reduce_concat=[2, 3, 4, 5])"
)
DARTS_V2 = (
    "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), "
    "('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), "
    "('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), "
    "('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), "
    "('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], "
    "reduce_concat=[2, 3, 4, 5])"
)


class DARTSArch(NamedTuple):
    """A genotype; index 0 of each leading pair is the normal cell, 1 the reduction cell."""

    # int8[2, 2 * nodes]: op index (into DARTS.ops) of each chosen input edge
    ops: jax.Array | np.ndarray
    # int8[2, 2 * nodes]: source of each edge, node k's pair at 2k, 2k+1
    inputs: jax.Array | np.ndarray


@dataclasses.dataclass(frozen=True)
class DARTS:
    """The DARTS space: two cells, `num_nodes` intermediate nodes with two inputs each.

    `ops` lists the supernet's candidates; a discrete genotype never uses `none`.

    >>> space = DARTS()
    >>> arch = space.from_string(DARTS_V2)
    >>> space.to_string(arch) == DARTS_V2
    True
    """

    ops: tuple[str, ...] = DARTS_OPS
    num_nodes: int = 4

    def __post_init__(self) -> None:
        check_names("DARTS", "ops", self.ops)
        check_int("DARTS", "num_nodes", self.num_nodes, 1, 8)

    @property
    def num_ops(self) -> int:
        return len(self.ops)

    @property
    def num_edges(self) -> int:
        return 2 * self.num_nodes

    @property
    def size(self) -> int:
        """Distinct genotypes (a node's two inputs are unordered): about 1e18 for DARTS."""
        k = int(self._allowed_ops.sum())
        per_cell = 1
        for node in range(self.num_nodes):
            sources = node + 2
            per_cell *= sources * (sources - 1) // 2 * k * k
        return per_cell**2

    @property
    def _allowed_ops(self) -> np.ndarray:
        return np.array([o != "none" for o in self.ops])

    @property
    def _num_sources(self) -> np.ndarray:
        """int[E]: how many sources edge e may read (node k: k + 2)."""
        return np.repeat(np.arange(self.num_nodes) + 2, 2)

    # ---------------------------------------------------------------- decisions
    @property
    def _pairs(self) -> list[np.ndarray]:
        """Per node k: int[C(k+2, 2), 2], its possible input pairs (lo < hi) in order."""
        return [
            np.array(list(itertools.combinations(range(k + 2), 2))) for k in range(self.num_nodes)
        ]

    @property
    def decision_sizes(self) -> tuple[int, ...]:
        """Per cell (normal, then reduction) and node: its input pair, then the op on the
        lower and on the higher input (ops other than `none`): what policy searchers
        (REINFORCE, Q-learning, PNAS, NAO, ENAS) sample."""
        k = int(self._allowed_ops.sum())
        return tuple(v for _ in range(2) for pairs in self._pairs for v in (len(pairs), k, k))

    def to_decisions(self, arch: DARTSArch) -> jax.Array:
        """int32[2 * 3 * nodes]; each node's inputs in increasing order (a node's two
        inputs are unordered, so `from_decisions` returns this canonical order)."""
        ops = jnp.asarray(arch.ops).astype(jnp.int32).reshape(2, self.num_nodes, 2)
        src = jnp.asarray(arch.inputs).astype(jnp.int32).reshape(2, self.num_nodes, 2)
        swap = src[..., 0] > src[..., 1]
        lo, hi = jnp.minimum(src[..., 0], src[..., 1]), jnp.maximum(src[..., 0], src[..., 1])
        op_lo = jnp.where(swap, ops[..., 1], ops[..., 0])
        op_hi = jnp.where(swap, ops[..., 0], ops[..., 1])
        pair = lo * (2 * np.arange(self.num_nodes)[None] + 3 - lo) // 2 + hi - lo - 1
        rank = jnp.asarray(np.cumsum(self._allowed_ops) - 1)  # op index -> choice
        return jnp.stack([pair, rank[op_lo], rank[op_hi]], -1).reshape(-1)

    def from_decisions(self, decisions: jax.Array) -> DARTSArch:
        """The genotype of `to_decisions` output (inputs of each node in increasing order)."""
        d = jnp.asarray(decisions).astype(jnp.int32).reshape(2, self.num_nodes, 3)
        allowed = jnp.asarray(np.flatnonzero(self._allowed_ops), jnp.int32)
        src = jnp.stack(
            [jnp.asarray(p, jnp.int32)[d[:, k, 0]] for k, p in enumerate(self._pairs)], 1
        )  # [2, nodes, 2]
        ops = allowed[d[..., 1:]]
        return DARTSArch(ops.reshape(2, -1).astype(jnp.int8), src.reshape(2, -1).astype(jnp.int8))

    # ----------------------------------------------------------------- validity
    def is_valid(self, arch: DARTSArch) -> jax.Array:
        ops = jnp.asarray(arch.ops).astype(jnp.int32)
        src = jnp.asarray(arch.inputs).astype(jnp.int32)
        ops_ok = jnp.all((ops >= 0) & (ops < self.num_ops))
        ops_ok &= jnp.all(jnp.asarray(self._allowed_ops)[jnp.clip(ops, 0, self.num_ops - 1)])
        src_ok = jnp.all((src >= 0) & (src < self._num_sources[None]))
        distinct = jnp.all(src[:, 0::2] != src[:, 1::2])
        return ops_ok & src_ok & distinct

    def validate(self, arch: Any) -> None:
        where = "DARTS.validate"
        if not isinstance(arch, DARTSArch):
            raise bad(where, "arch", "a DARTSArch", type(arch).__name__)
        shape = (2, self.num_edges)
        ops = concrete(where, "arch.ops", arch.ops, shape)
        src = concrete(where, "arch.inputs", arch.inputs, shape)
        if ops.min() < 0 or ops.max() >= self.num_ops or not self._allowed_ops[ops].all():
            raise bad(
                where, "arch.ops", f"indices of ops other than 'none' in {self.ops}", ops.tolist()
            )
        if np.any(src < 0) or np.any(src >= self._num_sources):
            raise bad(where, "arch.inputs", "node k's inputs in [0, k + 2)", src.tolist())
        if np.any(src[:, 0::2] == src[:, 1::2]):
            raise bad(where, "arch.inputs", "two distinct inputs per node", src.tolist())

    # ------------------------------------------------------------------ sampling
    def sample(self, key: jax.Array) -> DARTSArch:
        """Uniform: each node draws two distinct inputs and an op (not `none`) for each."""
        o_key, s_key = jax.random.split(key)
        allowed = jnp.asarray(np.flatnonzero(self._allowed_ops), jnp.int8)
        ops = allowed[jax.random.randint(o_key, (2, self.num_edges), 0, allowed.shape[0])]
        keys = jax.random.split(s_key, (2, self.num_nodes))
        pairs = []
        for k in range(self.num_nodes):
            pick = jax.vmap(lambda kk, k=k: jax.random.choice(kk, k + 2, (2,), replace=False))
            pairs.append(pick(keys[:, k]))
        inputs = jnp.concatenate(pairs, axis=1).astype(jnp.int8)
        return DARTSArch(ops, inputs)

    def neighbors(self, arch: DARTSArch) -> tuple[DARTSArch, jax.Array]:
        """Every single change (one edge's op, or one edge's input) and whether it is valid."""
        cells, edges = 2, self.num_edges
        c, e, v = np.meshgrid(
            np.arange(cells), np.arange(edges), np.arange(self.num_ops), indexing="ij"
        )
        c, e, v = c.ravel(), e.ravel(), v.ravel()
        op_batch = (
            jnp.tile(arch.ops[None], (len(c), 1, 1))
            .at[np.arange(len(c)), c, e]
            .set(jnp.asarray(v, jnp.int8))
        )
        op_mask = (arch.ops[c, e] != v) & jnp.asarray(self._allowed_ops[v])
        max_src = self.num_nodes + 1
        c2, e2, s2 = np.meshgrid(
            np.arange(cells), np.arange(edges), np.arange(max_src), indexing="ij"
        )
        c2, e2, s2 = c2.ravel(), e2.ravel(), s2.ravel()
        in_batch = (
            jnp.tile(arch.inputs[None], (len(c2), 1, 1))
            .at[np.arange(len(c2)), c2, e2]
            .set(jnp.asarray(s2, jnp.int8))
        )
        partner = arch.inputs[c2, e2 ^ 1]
        in_mask = (arch.inputs[c2, e2] != s2) & (s2 < self._num_sources[e2]) & (partner != s2)
        batch = DARTSArch(
            jnp.concatenate([op_batch, jnp.tile(arch.ops[None], (len(c2), 1, 1))]),
            jnp.concatenate([jnp.tile(arch.inputs[None], (len(c), 1, 1)), in_batch]),
        )
        return batch, jnp.concatenate([op_mask, in_mask])

    def mutate(self, key: jax.Array, arch: DARTSArch) -> DARTSArch:
        """Exactly one change: one edge's op or one edge's input, uniform among valid ones."""
        batch, mask = self.neighbors(arch)
        i = random_choice_masked(key, mask)
        return jax.tree.map(lambda x: x[i], batch)

    # -------------------------------------------------------------------- hashing
    def fingerprint(self, arch: DARTSArch) -> jax.Array:
        """uint32[2]: a jittable key of the genotype that ignores the order of a node's two
        edges (the same cell written either way: NAS-Bench-301's genotypes and DARTS'
        own). Each edge is coded (input, op); a node's two codes are sorted; the codes of
        both cells are folded with murmur3's finaliser, twice with different seeds for 64
        bits. `jnas.bench.load_nb301` finds its rows by it inside `jit`."""
        ops = jnp.asarray(arch.ops).astype(jnp.uint32)
        src = jnp.asarray(arch.inputs).astype(jnp.uint32)
        code = src * jnp.uint32(self.num_ops) + ops + jnp.uint32(1)  # [2, E], never 0
        lo = jnp.minimum(code[:, 0::2], code[:, 1::2])
        hi = jnp.maximum(code[:, 0::2], code[:, 1::2])
        seq = jnp.stack([lo, hi], -1).reshape(-1)
        out = []
        for seed in (0x9E3779B9, 0x7F4A7C15):
            h = jnp.uint32(seed)
            for i in range(seq.shape[0]):  # static length: 4 x nodes
                h = mix32(h ^ (seq[i] + jnp.uint32(i) * jnp.uint32(0x01000193)))
            out.append(h)
        return jnp.stack(out)

    # -------------------------------------------------------------------- strings
    def to_string(self, arch: DARTSArch) -> str:
        """`Genotype(normal=[('sep_conv_3x3', 0), ...], normal_concat=[2, 3, 4, 5], ...)`."""
        self.validate(arch)
        ops, src = np.asarray(arch.ops).tolist(), np.asarray(arch.inputs).tolist()
        concat = list(range(2, 2 + self.num_nodes))
        parts = []
        for c, name in enumerate(("normal", "reduce")):
            pairs = [(self.ops[o], s) for o, s in zip(ops[c], src[c], strict=True)]
            parts.append(f"{name}={pairs!r}, {name}_concat={concat!r}")
        return f"Genotype({', '.join(parts)})"

    def from_string(self, string: str) -> DARTSArch:
        """Parse a DARTS genotype string (`Genotype(normal=[...], normal_concat=..., ...)`).

        `*_concat` may be a list or `range(2, 6)` and must be all intermediate nodes.
        """
        where = "DARTS.from_string"
        form = "'Genotype(normal=[(op, input), ...], normal_concat=[2, 3, 4, 5], reduce=..., reduce_concat=...)'"
        if not isinstance(string, str):
            raise bad(where, "string", "a str", type(string).__name__)
        try:
            call = ast.parse(string.strip(), mode="eval").body
        except SyntaxError as err:
            raise bad(where, "string", form, string) from err
        if (
            not isinstance(call, ast.Call)
            or not isinstance(call.func, ast.Name)
            or call.func.id != "Genotype"
            or call.args
        ):
            raise bad(where, "string", form, string)
        fields = {}
        for kw in call.keywords:
            node = kw.value
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "range"
            ):
                try:
                    fields[kw.arg] = list(range(*[ast.literal_eval(a) for a in node.args]))
                except (ValueError, TypeError) as err:
                    raise bad(where, "string", form, ast.unparse(node)) from err
                continue
            try:
                fields[kw.arg] = ast.literal_eval(node)
            except ValueError as err:
                raise bad(where, "string", form, ast.unparse(node)) from err
        expected = {"normal", "normal_concat", "reduce", "reduce_concat"}
        if set(fields) != expected:
            raise bad(where, "string", f"exactly the fields {sorted(expected)}", sorted(fields))
        ops, src = [], []
        for name in ("normal", "reduce"):
            edges = fields[name]
            if (
                not isinstance(edges, list | tuple)
                or len(edges) != self.num_edges
                or not all(isinstance(p, list | tuple) and len(p) == 2 for p in edges)
            ):
                raise bad(where, name, f"{self.num_edges} (op, input) pairs", edges)
            for op, s in edges:
                if op not in self.ops or op == "none":
                    raise bad(
                        where, name, f"ops from {tuple(o for o in self.ops if o != 'none')}", op
                    )
                if not isinstance(s, int) or isinstance(s, bool):
                    raise bad(where, name, "integer inputs", s)
            if list(fields[f"{name}_concat"]) != list(range(2, 2 + self.num_nodes)):
                raise bad(
                    where,
                    f"{name}_concat",
                    f"{list(range(2, 2 + self.num_nodes))}",
                    fields[f"{name}_concat"],
                )
            ops.append([self.ops.index(op) for op, _ in edges])
            src.append([s for _, s in edges])
        self.validate(DARTSArch(np.asarray(ops, np.int8), np.asarray(src, np.int8)))
        return DARTSArch(jnp.asarray(ops, jnp.int8), jnp.asarray(src, jnp.int8))

    # ------------------------------------------------------------------ encodings
    def one_hot(self, arch: DARTSArch) -> jax.Array:
        """float32[2, E, K + num_nodes + 1]: each edge's op one-hot, then its input one-hot."""
        ops = jax.nn.one_hot(arch.ops, self.num_ops, dtype=jnp.float32)
        src = jax.nn.one_hot(arch.inputs, self.num_nodes + 1, dtype=jnp.float32)
        return jnp.concatenate([ops, src], axis=-1)

    def edge_matrix(self, arch: DARTSArch) -> jax.Array:
        """int8[2, N + 2, N + 2]: `A[c, i, j]` = op index on edge i -> j of cell c, else 0
        (inputs of a node are distinct, so an edge is unique; 0 is `none`). Ops sit on
        edges here, so this is not `HasAdjacency`'s node-labelled graph (the WL kernel's
        input), which DARTS does not offer."""
        n = self.num_nodes + 2
        dst = np.repeat(np.arange(self.num_nodes) + 2, 2)
        cells = np.repeat(np.arange(2), self.num_edges)
        a = jnp.zeros((2, n, n), jnp.int8)
        return a.at[cells, arch.inputs.reshape(-1), np.tile(dst, 2)].set(arch.ops.reshape(-1))

    # ------------------------------------------------------------------- networks
    def build(
        self,
        arch: DARTSArch,
        *,
        channels: int = 36,
        num_cells: int = 20,
        num_classes: int = 10,
        auxiliary: bool = False,
        drop_path: float = 0.0,
        rngs: Any = None,
    ) -> Any:
        """The DARTS CIFAR evaluation network (`jnas.nn.DARTSNetwork`).

        The defaults give the published 20-cell, C=36 network; `channels=16, num_cells=8`
        gives the search-phase depth with this genotype.
        """
        from jnas.nn import DARTSNetwork

        self.validate(arch)
        ops, src = np.asarray(arch.ops).tolist(), np.asarray(arch.inputs).tolist()
        genotype = tuple(
            tuple((self.ops[o], s) for o, s in zip(ops[c], src[c], strict=True)) for c in range(2)
        )
        return DARTSNetwork(
            genotype,
            channels=channels,
            num_cells=num_cells,
            num_classes=num_classes,
            auxiliary=auxiliary,
            drop_path=drop_path,
            rngs=rngs,
        )

    # ------------------------------------------------------------------ supernet
    @property
    def _cell_edges(self) -> int:
        """Edges of a search cell: node j reads the two inputs and the j earlier nodes."""
        return sum(j + 2 for j in range(self.num_nodes))

    @property
    def _offsets(self) -> np.ndarray:
        """Row of edge (node j, input 0) in a search cell's op weights: j (j + 3) / 2."""
        return np.array([j * (j + 3) // 2 for j in range(self.num_nodes)])

    @property
    def supernet_shape(self) -> tuple[int, int]:
        """(2E, K): op weights of every edge of the normal, then the reduction search cell
        (edge (node j, input i) is row j (j + 3) / 2 + i of its cell; E = 14 for 4 nodes)."""
        return (2 * self._cell_edges, self.num_ops)

    def _none_index(self) -> int:
        if "none" not in self.ops:
            raise bad(
                "DARTS supernet",
                "ops",
                "a tuple containing 'none' (the search cells' edges the genotype does not use)",
                self.ops,
            )
        return self.ops.index("none")

    def supernet_index(self, arch: DARTSArch) -> jax.Array:
        """int32[2E]: the op each search-cell edge runs for the genotype (`none` where the
        genotype has no such edge)."""
        ids = np.repeat(self._offsets, 2)[None] + jnp.asarray(arch.inputs).astype(jnp.int32)
        index = jnp.full((2, self._cell_edges), self._none_index(), jnp.int32)
        index = index.at[np.arange(2)[:, None], ids].set(jnp.asarray(arch.ops).astype(jnp.int32))
        return index.reshape(-1)

    def derive(self, weights: jax.Array) -> DARTSArch:
        """DARTS' `genotype()`: each node keeps the two inputs whose strongest non-`none` op
        weight is highest (strongest first, ties to the lower input), each with that op."""
        e, k = self._cell_edges, self.num_ops
        w = jnp.where(jnp.asarray(self._allowed_ops), jnp.reshape(weights, (2, e, k)), -jnp.inf)
        strength, best = w.max(-1), w.argmax(-1)
        ops, inputs = [], []
        for j, offset in enumerate(self._offsets.tolist()):
            _, src = jax.lax.top_k(strength[:, offset : offset + j + 2], 2)
            inputs.append(src)
            ops.append(jnp.take_along_axis(best[:, offset : offset + j + 2], src, axis=1))
        return DARTSArch(
            jnp.concatenate(ops, 1).astype(jnp.int8), jnp.concatenate(inputs, 1).astype(jnp.int8)
        )

    def supernet(
        self,
        *,
        channels: int = 16,
        num_cells: int = 8,
        num_classes: int = 10,
        in_channels: int = 3,
        stem_multiplier: int = 3,
        rngs: Any = None,
    ) -> Any:
        """The DARTS search network (`jnas.nn.DARTSSupernet`: C=16, 8 cells by default)."""
        from jnas.nn import DARTSSupernet

        self._none_index()
        return DARTSSupernet(
            self,
            channels=channels,
            num_cells=num_cells,
            num_classes=num_classes,
            in_channels=in_channels,
            stem_multiplier=stem_multiplier,
            rngs=rngs,
        )
