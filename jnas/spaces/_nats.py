"""The NATS-Bench size search space (Dong et al., TPAMI 2021).

The topology is fixed (the best NB201 cell); each of the five layers of the network
(stem cell, reduction block, cell, reduction block, cell) picks its channel count.
"""

from __future__ import annotations

import dataclasses
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
    concrete,
    mutate_categorical,
)

NATS_SSS_CELL = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"


def _cell_edges(cell: str) -> tuple[tuple[int, int, str], ...]:
    """The NB201 cell string `cell` as (from, to, op) edges (what `jnas.nn` takes)."""
    from jnas.spaces._nb201 import NB201

    space = NB201()
    with jax.ensure_compile_time_eval():  # concrete even inside nnx.eval_shape
        ops = np.asarray(space.from_string(cell).ops).tolist()
    return tuple((i, j, space.ops[op]) for (i, j), op in zip(space.edges, ops, strict=True))


class NATSSizeArch(NamedTuple):
    """Channel choice of each layer, as an index into `NATSSize.channels`."""

    channels: jax.Array  # int8[L]


@dataclasses.dataclass(frozen=True)
class NATSSize(DecisionSupernet):
    """Channel counts of the five layers of the NATS-Bench size-space network.

    `index` is the benchmark's row (the first layer most significant), and the
    string form is the benchmark's, e.g. `'8:16:32:64:64'`.

    >>> space = NATSSize()
    >>> space.to_string(space.from_index(32767))
    '64:64:64:64:64'
    """

    channels: tuple[int, ...] = (8, 16, 24, 32, 40, 48, 56, 64)
    num_layers: int = 5

    def __post_init__(self) -> None:
        if (
            not isinstance(self.channels, tuple)
            or not self.channels
            or any(not isinstance(c, int) or c < 1 for c in self.channels)
            or len(set(self.channels)) != len(self.channels)
        ):
            raise bad("NATSSize", "channels", "a tuple of unique positive ints", self.channels)
        check_int("NATSSize", "num_layers", self.num_layers, 2)
        if self.num_layers % 3 != 2:
            raise bad("NATSSize", "num_layers", "3 * N + 2 (N cells per stage)", self.num_layers)

    @property
    def num_choices(self) -> int:
        return len(self.channels)

    @property
    def size(self) -> int:
        return self.num_choices**self.num_layers

    @property
    def decision_sizes(self) -> tuple[int, ...]:
        """Choices of each categorical decision (what policy-based searchers sample)."""
        return (self.num_choices,) * self.num_layers

    def to_decisions(self, arch: NATSSizeArch) -> jax.Array:
        return jnp.asarray(arch.channels).astype(jnp.int32)

    def from_decisions(self, decisions: jax.Array) -> NATSSizeArch:
        return NATSSizeArch(jnp.asarray(decisions).astype(jnp.int8))

    def sample(self, key: jax.Array) -> NATSSizeArch:
        return NATSSizeArch(
            jax.random.randint(key, (self.num_layers,), 0, self.num_choices, jnp.int8)
        )

    def mutate(self, key: jax.Array, arch: NATSSizeArch) -> NATSSizeArch:
        """Change exactly one layer's channel count."""
        return NATSSizeArch(mutate_categorical(key, arch.channels, self.num_choices))

    def neighbors(self, arch: NATSSizeArch) -> tuple[NATSSizeArch, jax.Array]:
        batch, mask = categorical_neighbors(arch.channels, self.num_choices)
        return NATSSizeArch(batch), mask

    def is_valid(self, arch: NATSSizeArch) -> jax.Array:
        c = jnp.asarray(arch.channels)
        return jnp.all((c >= 0) & (c < self.num_choices))

    def validate(self, arch: Any) -> None:
        if not isinstance(arch, NATSSizeArch):
            raise bad("NATSSize.validate", "arch", "a NATSSizeArch", type(arch).__name__)
        c = concrete("NATSSize.validate", "arch.channels", arch.channels, (self.num_layers,))
        if c.min() < 0 or c.max() >= self.num_choices:
            raise bad(
                "NATSSize.validate",
                "arch.channels",
                f"choice indices in [0, {self.num_choices})",
                c.tolist(),
            )

    def index(self, arch: NATSSizeArch) -> jax.Array:
        radix = self.num_choices ** jnp.arange(self.num_layers - 1, -1, -1, dtype=jnp.int32)
        return arch.channels.astype(jnp.int32) @ radix

    def from_index(self, index: jax.Array | int) -> NATSSizeArch:
        if not isinstance(index, jax.core.Tracer):
            i = np.asarray(index)
            if not np.issubdtype(i.dtype, np.integer) or np.any((i < 0) | (i >= self.size)):
                raise bad("NATSSize.from_index", "index", f"integers in [0, {self.size})", index)
        index = jnp.asarray(index, jnp.int32)
        radix = self.num_choices ** jnp.arange(self.num_layers - 1, -1, -1, dtype=jnp.int32)
        radix = radix.reshape((1,) * index.ndim + (-1,))
        digits = (index[..., None] // radix) % self.num_choices
        return NATSSizeArch(digits.astype(jnp.int8))

    def enumerate(self) -> NATSSizeArch:
        return self.from_index(jnp.arange(self.size, dtype=jnp.int32))

    def widths(self, arch: NATSSizeArch) -> tuple[int, ...]:
        """The channel count of each layer (Python ints)."""
        self.validate(arch)
        return tuple(self.channels[c] for c in np.asarray(arch.channels).tolist())

    def to_string(self, arch: NATSSizeArch) -> str:
        return ":".join(str(c) for c in self.widths(arch))

    def from_string(self, string: str) -> NATSSizeArch:
        where = "NATSSize.from_string"
        if not isinstance(string, str):
            raise bad(where, "string", "a str", type(string).__name__)
        parts = string.split(":")
        if len(parts) != self.num_layers or not all(p.isdigit() for p in parts):
            raise bad(
                where,
                "string",
                f"{self.num_layers} ':'-separated channel counts like '8:16:32:64:64'",
                string,
            )
        values = [int(p) for p in parts]
        for v in values:
            if v not in self.channels:
                raise bad(where, "string", f"channel counts from {self.channels}", v)
        return NATSSizeArch(jnp.asarray([self.channels.index(v) for v in values], jnp.int8))

    def one_hot(self, arch: NATSSizeArch) -> jax.Array:
        """float32[L, C]: one row per layer."""
        return jax.nn.one_hot(arch.channels, self.num_choices, dtype=jnp.float32)

    def build(self, arch: NATSSizeArch, *, num_classes: int = 10, rngs: Any = None) -> Any:
        """The NATS-Bench size-space network (`jnas.nn.NATSSizeNetwork`)."""
        from jnas.nn import NATSSizeNetwork

        return NATSSizeNetwork(
            self.widths(arch), num_classes=num_classes, edges=_cell_edges(NATS_SSS_CELL), rngs=rngs
        )

    def supernet(
        self,
        *,
        num_classes: int = 10,
        in_channels: int = 3,
        cell: str | None = None,
        rngs: Any = None,
    ) -> Any:
        """The channel-masking supernet (`jnas.nn.NATSSizeSupernet`)."""
        from jnas.nn import NATSSizeSupernet

        return NATSSizeSupernet(
            self.channels,
            self.num_layers,
            num_classes=num_classes,
            in_channels=in_channels,
            edges=_cell_edges(cell or NATS_SSS_CELL),
            rngs=rngs,
        )
