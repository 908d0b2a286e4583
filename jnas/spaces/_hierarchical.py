"""Hierarchical motifs (Liu et al., "Hierarchical Representations for Efficient
Architecture Search", ICLR 2018).

Level 1 are primitive ops. A level-l motif is a DAG on `num_nodes[l]` nodes whose edge
i -> j (i < j) carries 0 (`none`: no edge) or a level-(l-1) motif / primitive, 1-based.
The architecture is one int8[num_motifs[l], num_edges(l)] array per level; the single
motif of the top level is the cell.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jnas._hash import mix32
from jnas.spaces._common import bad, check_names, concrete, random_choice_masked

HNAS_PRIMITIVES = (
    "identity",
    "conv_1x1",
    "dw_conv_3x3",
    "sep_conv_3x3",
    "max_pool_3x3",
    "avg_pool_3x3",
)


class HierarchicalArch(NamedTuple):
    levels: tuple[jax.Array, ...]  # per level >= 2: int8[num_motifs, num_edges], 0 = none


@dataclasses.dataclass(frozen=True)
class Hierarchical:
    """HNAS's space: `num_nodes` and `num_motifs` per level above the primitives.

    The defaults are the paper's: 6 primitives, 6 level-2 motifs of 4 nodes, one
    level-3 motif of 5 nodes.
    """

    primitives: tuple[str, ...] = HNAS_PRIMITIVES
    num_nodes: tuple[int, ...] = (4, 5)
    num_motifs: tuple[int, ...] = (6, 1)

    def __post_init__(self) -> None:
        check_names("Hierarchical", "primitives", self.primitives)
        for name in ("num_nodes", "num_motifs"):
            v = getattr(self, name)
            if (
                not isinstance(v, tuple)
                or not v
                or not all(isinstance(x, int) and x >= (2 if name == "num_nodes" else 1) for x in v)
            ):
                raise bad(
                    "Hierarchical", name, "a non-empty tuple of ints (nodes >= 2, motifs >= 1)", v
                )
        if len(self.num_nodes) != len(self.num_motifs):
            raise bad(
                "Hierarchical",
                "num_motifs",
                f"{len(self.num_nodes)} entries, one per level like `num_nodes`",
                self.num_motifs,
            )
        if self.num_motifs[-1] != 1:
            raise bad("Hierarchical", "num_motifs", "1 motif at the top level", self.num_motifs)
        if max(len(self.primitives), *self.num_motifs) > 126:
            raise bad(
                "Hierarchical", "num_motifs", "at most 126 choices per edge (int8)", self.num_motifs
            )

    @property
    def num_levels(self) -> int:
        return len(self.num_nodes)

    def num_edges(self, level: int) -> int:
        n = self.num_nodes[level]
        return n * (n - 1) // 2

    def num_choices(self, level: int) -> int:
        """Choices per edge at a level, `none` included."""
        below = len(self.primitives) if level == 0 else self.num_motifs[level - 1]
        return below + 1

    def edges(self, level: int) -> tuple[tuple[int, int], ...]:
        n = self.num_nodes[level]
        return tuple((i, j) for j in range(1, n) for i in range(j))

    @functools.cached_property
    def size(self) -> int:
        """Number of valid architectures: connected motifs per level, to the power of the
        number of motifs, multiplied over levels."""
        total = 1
        for level in range(self.num_levels):
            edges, n = self.edges(level), self.num_nodes[level]
            per_motif = 0
            for subset in range(2 ** len(edges)):
                reach = {0}
                for e, (i, j) in enumerate(edges):
                    if subset >> e & 1 and i in reach:
                        reach.add(j)
                if n - 1 in reach:
                    per_motif += (self.num_choices(level) - 1) ** bin(subset).count("1")
            total *= per_motif ** self.num_motifs[level]
        return total

    def _shape(self, level: int) -> tuple[int, int]:
        return (self.num_motifs[level], self.num_edges(level))

    # ----------------------------------------------------------------- validity
    def _motif_ok(self, level: int, edges: jax.Array) -> jax.Array:
        """A path from the motif's input to its output over non-`none` edges."""
        n = self.num_nodes[level]
        m = jnp.zeros((n, n), jnp.int32)
        src = np.array([i for i, _ in self.edges(level)])
        dst = np.array([j for _, j in self.edges(level)])
        m = m.at[src, dst].set((edges != 0).astype(jnp.int32))
        reach = jnp.zeros(n, bool).at[0].set(True)
        for _ in range(n - 1):
            reach = reach | ((reach.astype(jnp.int32) @ m) > 0)
        return reach[n - 1]

    def is_valid(self, arch: HierarchicalArch) -> jax.Array:
        ok = jnp.ones((), bool)
        for level, values in enumerate(arch.levels):
            v = jnp.asarray(values).astype(jnp.int32)
            ok &= jnp.all((v >= 0) & (v < self.num_choices(level)))
            ok &= jnp.all(jax.vmap(functools.partial(self._motif_ok, level))(v))
        return ok

    def validate(self, arch: Any) -> None:
        where = "Hierarchical.validate"
        if (
            not isinstance(arch, HierarchicalArch)
            or not isinstance(arch.levels, tuple)
            or len(arch.levels) != self.num_levels
        ):
            raise bad(
                where,
                "arch",
                f"a HierarchicalArch with {self.num_levels} levels",
                type(arch).__name__,
            )
        for level, values in enumerate(arch.levels):
            v = concrete(where, f"arch.levels[{level}]", values, self._shape(level))
            if v.min() < 0 or v.max() >= self.num_choices(level):
                raise bad(
                    where,
                    f"arch.levels[{level}]",
                    f"choices in [0, {self.num_choices(level)})",
                    v.tolist(),
                )
            with jax.ensure_compile_time_eval():  # concrete even inside a trace
                ok = np.asarray(_motifs_ok_compiled(self, level, jnp.asarray(v)))
            if not ok.all():
                raise bad(
                    where,
                    f"arch.levels[{level}]",
                    "motifs with a path from input to "
                    f"output (motifs {np.flatnonzero(~ok).tolist()} have none)",
                    v.tolist(),
                )

    # ---------------------------------------------------------------- decisions
    @property
    def decision_sizes(self) -> tuple[int, ...]:
        """One decision per edge of every motif, level by level (`none` included)."""
        return tuple(
            self.num_choices(level)
            for level in range(self.num_levels)
            for _ in range(self.num_motifs[level] * self.num_edges(level))
        )

    def to_decisions(self, arch: HierarchicalArch) -> jax.Array:
        """int32[sum of motifs x edges]: every level's edges, flattened in order."""
        return jnp.concatenate([jnp.asarray(v).astype(jnp.int32).reshape(-1) for v in arch.levels])

    def from_decisions(self, decisions: jax.Array) -> HierarchicalArch:
        """The architecture of `decisions` (each clipped to its range). A motif left
        without an input -> output path gets its direct input -> output edge set to a
        non-`none` choice picked by a hash of the motif's decisions (no choice favoured),
        so every decision vector gives a valid architecture and valid ones come back
        unchanged."""
        d = jnp.asarray(decisions).astype(jnp.int32)
        levels, start = [], 0
        for level in range(self.num_levels):
            m, e = self._shape(level)
            k = self.num_choices(level)
            v = jnp.clip(d[start : start + m * e].reshape(m, e), 0, k - 1)
            start += m * e
            direct = self.edges(level).index((0, self.num_nodes[level] - 1))

            def fix(
                edges: jax.Array, level: int = level, k: int = k, direct: int = direct
            ) -> jax.Array:
                h = jnp.zeros((), jnp.uint32)
                for i in range(edges.shape[0]):  # static: a hash of the motif
                    h = mix32(h ^ edges[i].astype(jnp.uint32) + jnp.uint32(i))
                pick = (1 + h % jnp.uint32(k - 1)).astype(jnp.int32)
                ok = self._motif_ok(level, edges)
                return edges.at[direct].set(jnp.where(ok, edges[direct], pick))

            levels.append(jax.vmap(fix)(v).astype(jnp.int8))
        return HierarchicalArch(tuple(levels))

    # ------------------------------------------------------------------ sampling
    def sample(self, key: jax.Array) -> HierarchicalArch:
        """Every edge uniform over `none` and the level below; each motif redrawn until it
        has an input -> output path."""
        levels = []
        for level, k in enumerate(jax.random.split(key, self.num_levels)):

            def draw(key, level=level):
                return jax.random.randint(
                    key, (self.num_edges(level),), 0, self.num_choices(level), jnp.int8
                )

            def one(key, level=level, draw=draw):
                def cond(c):
                    return ~self._motif_ok(level, c[1])

                def body(c):
                    k, sub = jax.random.split(c[0])
                    return k, draw(sub)

                k0, sub = jax.random.split(key)
                return jax.lax.while_loop(cond, body, (k0, draw(sub)))[1]

            levels.append(jax.vmap(one)(jax.random.split(k, self.num_motifs[level])))
        return HierarchicalArch(tuple(levels))

    def neighbors(self, arch: HierarchicalArch) -> tuple[HierarchicalArch, jax.Array]:
        """Every single-edge change (any level, motif, edge) and whether it is valid."""
        batches, masks = [], []
        for level in range(self.num_levels):
            m, e = self._shape(level)
            k = self.num_choices(level)
            mi, ei, vi = (
                a.ravel()
                for a in np.meshgrid(np.arange(m), np.arange(e), np.arange(k), indexing="ij")
            )
            n = len(mi)
            levels = tuple(jnp.tile(x[None], (n, 1, 1)) for x in arch.levels)
            changed = levels[level].at[np.arange(n), mi, ei].set(jnp.asarray(vi, jnp.int8))
            levels = (*levels[:level], changed, *levels[level + 1 :])
            batch = HierarchicalArch(levels)
            same = arch.levels[level][mi, ei] == vi
            masks.append(~same & jax.vmap(self.is_valid)(batch))
            batches.append(batch)
        batch = jax.tree.map(lambda *xs: jnp.concatenate(xs), *batches)
        return batch, jnp.concatenate(masks)

    def mutate(self, key: jax.Array, arch: HierarchicalArch) -> HierarchicalArch:
        """HNAS's mutation: one edge of one motif of one level gets a different op,
        uniform among the changes that keep every motif connected. A non-`none` edge
        can always become another non-`none` choice, so a change exists."""
        batch, mask = self.neighbors(arch)
        i = random_choice_masked(key, mask)
        return jax.tree.map(lambda x: x[i], batch)

    # -------------------------------------------------------------------- strings
    def to_string(self, arch: HierarchicalArch) -> str:
        """Levels joined by `/`, motifs by `;`, edge choices by `,` (0 = none)."""
        self.validate(arch)
        return "/".join(
            ";".join(",".join(str(c) for c in motif) for motif in level)
            for level in (np.asarray(v).tolist() for v in arch.levels)
        )

    def from_string(self, string: str) -> HierarchicalArch:
        where = "Hierarchical.from_string"
        form = "levels joined by '/', motifs by ';', edge choices by ','"
        if not isinstance(string, str):
            raise bad(where, "string", "a str", type(string).__name__)
        levels = string.split("/")
        if len(levels) != self.num_levels:
            raise bad(where, "string", f"{self.num_levels} levels ({form})", string)
        out = []
        for level, text in enumerate(levels):
            motifs = text.split(";")
            try:
                values = [[int(c) for c in m.split(",")] for m in motifs]
            except ValueError as err:
                raise bad(where, "string", f"integers ({form})", text) from err
            m, e = self._shape(level)
            if len(values) != m or any(len(v) != e for v in values):
                raise bad(
                    where,
                    "string",
                    f"level {level + 2}: {self.num_motifs[level]} "
                    f"motifs of {self.num_edges(level)} edges",
                    text,
                )
            out.append(np.asarray(values, np.int8))
        self.validate(HierarchicalArch(tuple(out)))
        return HierarchicalArch(tuple(jnp.asarray(v) for v in out))

    def one_hot(self, arch: HierarchicalArch) -> jax.Array:
        """float32[D]: every level's edge choices one-hot, flattened and concatenated."""
        return jnp.concatenate(
            [
                jax.nn.one_hot(v, self.num_choices(level), dtype=jnp.float32).reshape(-1)
                for level, v in enumerate(arch.levels)
            ]
        )

    def build(
        self,
        arch: HierarchicalArch,
        *,
        channels: int = 16,
        num_classes: int = 10,
        cells_per_stage: int = 1,
        rngs: Any = None,
    ) -> Any:
        """The HNAS CIFAR network (`jnas.nn.HierarchicalNetwork`)."""
        from jnas.nn import HierarchicalNetwork

        self.validate(arch)
        levels = tuple(np.asarray(v).tolist() for v in arch.levels)
        return HierarchicalNetwork(
            self,
            levels,
            channels=channels,
            num_classes=num_classes,
            cells_per_stage=cells_per_stage,
            rngs=rngs,
        )


@functools.partial(jax.jit, static_argnums=(0, 1))
def _motifs_ok_compiled(space: Hierarchical, level: int, motifs: jax.Array) -> jax.Array:
    """`space._motif_ok` of every motif of a level, compiled once per space and level:
    `validate` runs it per architecture on the host (op by op it dominated `to_string`)."""
    return jax.vmap(functools.partial(space._motif_ok, level))(motifs)
