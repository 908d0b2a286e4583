"""The DARTS recurrent cell space (Liu, Simonyan & Yang, ICLR 2019, Section 3 / rnn/).

A cell has `steps` = 8 nodes after the initial state s0 = h + c0 * (tanh-part - h) of the
input and the previous hidden state. Node i takes one earlier node `pred[i]` in [0, i]
and an activation among tanh / relu / sigmoid / identity: s_i = s_p + c * (f(h) - s_p)
with (c, h) = (sigmoid, f) of s_p @ W_i (a highway connection). The output is the mean of
nodes 1..8. Architectures: int8 `ops` (index into `ops`, never `none`) and `preds` per node.
Strings are DARTS' `Genotype(recurrent=[('sigmoid', 0), ...], concat=range(1, 9))`.

The supernet is DARTS' search cell: every node mixes all its predecessors and all ops
(`none` included) under weights float[steps (steps + 1) / 2, K]; `derive` is DARTS'
`genotype()`: per node the predecessor with the strongest non-`none` op, and that op.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jnas.spaces._common import (
    bad,
    categorical_neighbors,
    check_int,
    check_names,
    concrete,
    random_choice_masked,
)

RNN_PRIMITIVES = ("none", "tanh", "relu", "sigmoid", "identity")


class DARTSRecurrentArch(NamedTuple):
    """One DARTS recurrent cell; a batch has a leading axis."""

    ops: jax.Array  # int8[steps]: index into `ops` (never `none`)
    preds: jax.Array  # int8[steps]: node i's input, in [0, i] (0 = the initial state)


@dataclasses.dataclass(frozen=True)
class DARTSRecurrent:
    """The DARTS recurrent cell space: `steps` nodes, one input and one op each."""

    ops: tuple[str, ...] = RNN_PRIMITIVES
    steps: int = 8

    def __post_init__(self) -> None:
        check_names("DARTSRecurrent", "ops", self.ops)
        check_int("DARTSRecurrent", "steps", self.steps, 1, 32)
        if "none" not in self.ops or len(self.ops) < 2:
            raise bad("DARTSRecurrent", "ops", "'none' and at least one activation", self.ops)
        unknown = set(self.ops) - set(RNN_PRIMITIVES)
        if unknown:
            raise bad("DARTSRecurrent", "ops", f"names from {RNN_PRIMITIVES}", sorted(unknown))

    @property
    def _active(self) -> np.ndarray:
        """The op indices a derived cell may use (all but `none`)."""
        return np.array([i for i, o in enumerate(self.ops) if o != "none"], np.int32)

    @property
    def num_ops(self) -> int:
        return len(self.ops)

    @property
    def size(self) -> int:
        """(K - 1)^steps * steps!: 4^8 * 8! = 2.6e9 cells for DARTS' setting."""
        n = 1
        for i in range(self.steps):
            n *= (self.num_ops - 1) * (i + 1)
        return n

    # -------------------------------------------------------------- decisions
    @property
    def decision_sizes(self) -> tuple[int, ...]:
        """Per node: its op (among the non-`none` ops), then its input (i + 1 choices)."""
        k = self.num_ops - 1
        return tuple(s for i in range(self.steps) for s in (k, i + 1))

    def to_decisions(self, arch: DARTSRecurrentArch) -> jax.Array:
        ops = jnp.asarray(arch.ops).astype(jnp.int32)
        rank = jnp.argmax(ops[:, None] == jnp.asarray(self._active)[None, :], axis=1)
        return jnp.stack([rank, jnp.asarray(arch.preds).astype(jnp.int32)], 1).reshape(-1)

    def from_decisions(self, decisions: jax.Array) -> DARTSRecurrentArch:
        d = jnp.asarray(decisions).astype(jnp.int32).reshape(self.steps, 2)
        ops = jnp.asarray(self._active)[jnp.clip(d[:, 0], 0, self.num_ops - 2)]
        preds = jnp.clip(d[:, 1], 0, jnp.arange(self.steps))
        return DARTSRecurrentArch(ops.astype(jnp.int8), preds.astype(jnp.int8))

    # ------------------------------------------------------------------- space
    def is_valid(self, arch: DARTSRecurrentArch) -> jax.Array:
        ops = jnp.asarray(arch.ops).astype(jnp.int32)
        preds = jnp.asarray(arch.preds).astype(jnp.int32)
        active = jnp.any(ops[:, None] == jnp.asarray(self._active)[None, :], axis=1)
        return jnp.all(active) & jnp.all((preds >= 0) & (preds <= jnp.arange(self.steps)))

    def validate(self, arch: Any) -> None:
        where = "DARTSRecurrent.validate"
        if not isinstance(arch, DARTSRecurrentArch):
            raise bad(where, "arch", "a DARTSRecurrentArch", type(arch).__name__)
        ops = concrete(where, "arch.ops", arch.ops, (self.steps,))
        preds = concrete(where, "arch.preds", arch.preds, (self.steps,))
        if not np.isin(ops, self._active).all():
            raise bad(where, "arch.ops", f"indices of {self.ops} other than 'none'", ops.tolist())
        if np.any(preds < 0) or np.any(preds > np.arange(self.steps)):
            raise bad(where, "arch.preds", "node i's input in [0, i]", preds.tolist())

    def sample(self, key: jax.Array) -> DARTSRecurrentArch:
        """A uniformly random cell (each op and input uniform)."""
        sizes = jnp.asarray(self.decision_sizes)
        return self.from_decisions(jax.random.randint(key, sizes.shape, 0, sizes))

    def neighbors(self, arch: DARTSRecurrentArch) -> tuple[DARTSRecurrentArch, jax.Array]:
        """Every cell with one op or one input changed."""
        batch, mask = categorical_neighbors(
            self.to_decisions(arch), np.asarray(self.decision_sizes)
        )
        return jax.vmap(self.from_decisions)(batch), mask

    def mutate(self, key: jax.Array, arch: DARTSRecurrentArch) -> DARTSRecurrentArch:
        """One op or one input changed, uniformly among the possible changes."""
        batch, mask = self.neighbors(arch)
        return jax.tree.map(lambda x: x[random_choice_masked(key, mask)], batch)

    # ----------------------------------------------------------------- strings
    def genotype(self, arch: DARTSRecurrentArch) -> list[tuple[str, int]]:
        """DARTS' `recurrent` list: (op name, input node) per node."""
        self.validate(arch)
        return [
            (self.ops[o], p)
            for o, p in zip(
                np.asarray(arch.ops).tolist(), np.asarray(arch.preds).tolist(), strict=True
            )
        ]

    def to_string(self, arch: DARTSRecurrentArch) -> str:
        """DARTS' printed genotype, e.g. `Genotype(recurrent=[('sigmoid', 0), ...],
        concat=range(1, 9))`."""
        pairs = ", ".join(f"('{o}', {p})" for o, p in self.genotype(arch))
        return f"Genotype(recurrent=[{pairs}], concat=range(1, {self.steps + 1}))"

    def from_string(self, string: str) -> DARTSRecurrentArch:
        """Parse `to_string`'s form (also `recurrent = [...]` with spaces, as in
        `rnn/genotypes.py`); `concat` must be the last `steps` nodes."""
        where = "DARTSRecurrent.from_string"
        if not isinstance(string, str):
            raise bad(where, "string", "a str", type(string).__name__)
        pairs = re.findall(r"\(\s*'(\w+)'\s*,\s*(\d+)\s*\)", string)
        concat = re.search(r"concat\s*=\s*range\(\s*1\s*,\s*(\d+)\s*\)", string)
        if "recurrent" not in string or len(pairs) != self.steps:
            raise bad(where, "string", f"a Genotype with {self.steps} (op, input) pairs", string)
        if concat is None or int(concat.group(1)) != self.steps + 1:
            raise bad(where, "string", f"concat=range(1, {self.steps + 1})", string)
        return self.from_genotype([(o, int(p)) for o, p in pairs])

    def from_genotype(self, recurrent: list[tuple[str, int]]) -> DARTSRecurrentArch:
        """An arch from DARTS' `recurrent` list of (op name, input node)."""
        where = "DARTSRecurrent.from_genotype"
        if len(recurrent) != self.steps:
            raise bad(where, "recurrent", f"{self.steps} (op, input) pairs", recurrent)
        for op, _ in recurrent:
            if op not in self.ops or op == "none":
                raise bad(where, "recurrent", f"ops from {self.ops} other than 'none'", op)
        arch = DARTSRecurrentArch(
            jnp.asarray([self.ops.index(o) for o, _ in recurrent], jnp.int8),
            jnp.asarray([p for _, p in recurrent], jnp.int8),
        )
        self.validate(arch)
        return arch

    # --------------------------------------------------------------- encodings
    def one_hot(self, arch: DARTSRecurrentArch) -> jax.Array:
        """float32[steps * (K + steps)]: per node its op and its input, one-hot."""
        ops = jax.nn.one_hot(jnp.asarray(arch.ops).astype(jnp.int32), self.num_ops)
        preds = jax.nn.one_hot(jnp.asarray(arch.preds).astype(jnp.int32), self.steps)
        return jnp.concatenate([ops, preds], 1).reshape(-1).astype(jnp.float32)

    # ---------------------------------------------------------------- supernet
    @property
    def _offsets(self) -> np.ndarray:
        """Row of edge (node i, input 0) in the supernet weights: i (i + 1) / 2."""
        return np.array([i * (i + 1) // 2 for i in range(self.steps)], np.int32)

    @property
    def supernet_shape(self) -> tuple[int, int]:
        """(steps (steps + 1) / 2, K): one row per (node, input) edge, node-major."""
        return (self.steps * (self.steps + 1) // 2, self.num_ops)

    def supernet_index(self, arch: DARTSRecurrentArch) -> jax.Array:
        """int32[E]: each edge's op for the cell (`none` on the edges it does not use)."""
        none = self.ops.index("none")
        rows = jnp.asarray(self._offsets) + jnp.asarray(arch.preds).astype(jnp.int32)
        index = jnp.full((self.supernet_shape[0],), none, jnp.int32)
        return index.at[rows].set(jnp.asarray(arch.ops).astype(jnp.int32))

    def derive(self, weights: jax.Array) -> DARTSRecurrentArch:
        """DARTS' `genotype()`: per node the input whose strongest non-`none` weight is
        highest (ties to the lower input), with that op."""
        allowed = np.arange(self.num_ops) != self.ops.index("none")
        w = jnp.where(jnp.asarray(allowed)[None, :], jnp.asarray(weights), -jnp.inf)
        strength, best = w.max(-1), w.argmax(-1)
        ops, preds = [], []
        for i, offset in enumerate(self._offsets.tolist()):
            j = jnp.argmax(strength[offset : offset + i + 1])
            preds.append(j)
            ops.append(best[offset + j])
        return DARTSRecurrentArch(
            jnp.stack(ops).astype(jnp.int8), jnp.stack(preds).astype(jnp.int8)
        )

    def supernet(self, **config: Any) -> Any:
        """The DARTS recurrent search model as one-shot methods call a supernet
        (`jnas.nn.DARTSRecurrentSupernet`: `(tokens, weights, index) -> logits`; its
        `.lm` is the full `DARTSRecurrentLM`); `config` as for `build`."""
        from jnas.nn import DARTSRecurrentSupernet

        return DARTSRecurrentSupernet(ops=self.ops, steps=self.steps, **config)

    def build(self, arch: DARTSRecurrentArch, **config: Any) -> Any:
        """The language model of the cell (`jnas.nn.DARTSRecurrentLM`; DARTS' PTB setting
        by default: vocabulary 10,000, emsize = nhid = 850, tied)."""
        from jnas.nn import DARTSRecurrentLM

        return DARTSRecurrentLM(self.genotype(arch), ops=self.ops, steps=self.steps, **config)
