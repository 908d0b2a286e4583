"""A MobileNetV2-style chain of inverted-residual blocks (ProxylessNAS, FBNet).

Each searchable block picks a kernel size, an expansion ratio, or to be skipped
(ProxylessNAS' `zero` op, allowed only where the block has a residual path: not the
first block of a stage). The architecture stores one choice per block:
`kernel_index * len(expansions) + expansion_index`, or `skip` = the last choice.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jnas.spaces._common import (
    DecisionSupernet,
    bad,
    check_int,
    concrete,
    random_choice_masked,
)

# (width, blocks, stride) of ProxylessNAS' searchable stages (ImageNet, mobile/GPU settings).
PROXYLESS_STAGES = ((24, 4, 2), (40, 4, 2), (80, 4, 2), (96, 4, 1), (192, 4, 2), (320, 1, 1))
# MobileNetV2 (Sandler et al. 2018) with its stage depths: all blocks k3 e6 is MobileNetV2.
MOBILENET_V2_STAGES = ((24, 2, 2), (32, 3, 2), (64, 4, 2), (96, 3, 1), (160, 3, 2), (320, 1, 1))


class ChainArch(NamedTuple):
    # int8[B]: per block, kernel x expansion choice, or the skip choice
    ops: jax.Array | np.ndarray


@dataclasses.dataclass(frozen=True)
class Chain(DecisionSupernet):
    """A chain of MBConv blocks: per block kernel x expansion, or skip.

    Args:
      stages: (width, blocks, stride) per stage; the first block of a stage applies its
        stride and width change and cannot be skipped.
      kernels, expansions: the candidate depthwise kernel sizes and expansion ratios.
      stem_channels, first_block_channels, head_channels: the fixed layers around the
        searchable blocks (3x3 stride-2 stem, an expansion-1 MBConv, a 1x1 feature mix).
    """

    stages: tuple[tuple[int, int, int], ...] = PROXYLESS_STAGES
    kernels: tuple[int, ...] = (3, 5, 7)
    expansions: tuple[int, ...] = (3, 6)
    stem_channels: int = 32
    first_block_channels: int = 16
    head_channels: int = 1280

    def __post_init__(self) -> None:
        if (
            not isinstance(self.stages, tuple)
            or not self.stages
            or not all(
                isinstance(s, tuple)
                and len(s) == 3
                and all(isinstance(v, int) and v >= 1 for v in s)
                and s[2] in (1, 2)
                for s in self.stages
            )
        ):
            raise bad(
                "Chain",
                "stages",
                "a non-empty tuple of (width, blocks, stride) with positive ints and stride 1 or 2",
                self.stages,
            )
        for name in ("kernels", "expansions"):
            values = getattr(self, name)
            if (
                not isinstance(values, tuple)
                or not values
                or len(set(values)) != len(values)
                or not all(isinstance(v, int) and v >= 1 for v in values)
            ):
                raise bad("Chain", name, "a tuple of unique positive ints", values)
        if any(k % 2 == 0 for k in self.kernels):
            raise bad("Chain", "kernels", "odd kernel sizes", self.kernels)
        for name in ("stem_channels", "first_block_channels", "head_channels"):
            check_int("Chain", name, getattr(self, name), 1)

    @property
    def num_blocks(self) -> int:
        return sum(n for _, n, _ in self.stages)

    @property
    def skip(self) -> int:
        """The choice index that means "skip this block"."""
        return len(self.kernels) * len(self.expansions)

    @property
    def num_choices(self) -> int:
        return self.skip + 1

    @property
    def skippable(self) -> np.ndarray:
        """bool[B]: which blocks may be skipped (all but the first of each stage)."""
        return np.concatenate([np.arange(n) > 0 for _, n, _ in self.stages])

    @property
    def size(self) -> int:
        """Number of distinct networks."""
        return int(np.prod([self.skip + int(s) for s in self.skippable], dtype=object))

    def _counts(self) -> jax.Array:
        return jnp.asarray(self.skip + self.skippable.astype(np.int32))

    @property
    def decision_sizes(self) -> tuple[int, ...]:
        """Choices of each block: kernel x expansion, plus skip where allowed."""
        return tuple(int(self.skip + s) for s in self.skippable)

    def to_decisions(self, arch: ChainArch) -> jax.Array:
        return jnp.asarray(arch.ops).astype(jnp.int32)

    def from_decisions(self, decisions: jax.Array) -> ChainArch:
        return ChainArch(jnp.asarray(decisions).astype(jnp.int8))

    def sample(self, key: jax.Array) -> ChainArch:
        """Uniform over each block's allowed choices."""
        u = jax.random.uniform(key, (self.num_blocks,))
        return ChainArch(jnp.floor(u * self._counts()).astype(jnp.int8))

    def is_valid(self, arch: ChainArch) -> jax.Array:
        ops = jnp.asarray(arch.ops).astype(jnp.int32)
        return jnp.all((ops >= 0) & (ops < self._counts()))

    def validate(self, arch: Any) -> None:
        if not isinstance(arch, ChainArch):
            raise bad("Chain.validate", "arch", "a ChainArch", type(arch).__name__)
        ops = concrete("Chain.validate", "arch.ops", arch.ops, (self.num_blocks,))
        counts = self.skip + self.skippable
        if np.any(ops < 0) or np.any(ops >= counts):
            raise bad(
                "Chain.validate",
                "arch.ops",
                f"choices in [0, {self.skip}) and "
                f"{self.skip} (skip) only for blocks {np.flatnonzero(self.skippable)}",
                ops.tolist(),
            )

    def neighbors(self, arch: ChainArch) -> tuple[ChainArch, jax.Array]:
        """Every single-block change, and whether it is allowed."""
        b, k = self.num_blocks, self.num_choices
        pos = np.repeat(np.arange(b), k)
        val = np.tile(np.arange(k), b)
        batch = (
            jnp.tile(arch.ops[None], (b * k, 1))
            .at[np.arange(b * k), pos]
            .set(jnp.asarray(val, jnp.int8))
        )
        mask = (arch.ops[pos] != val) & (val < self._counts()[pos])
        return ChainArch(batch), mask

    def mutate(self, key: jax.Array, arch: ChainArch) -> ChainArch:
        """Change exactly one block's choice."""
        batch, mask = self.neighbors(arch)
        return ChainArch(batch.ops[random_choice_masked(key, mask)])

    def blocks(self, arch: ChainArch) -> list[tuple[int, int] | None]:
        """Per block (kernel, expansion), or None where skipped (Python side)."""
        self.validate(arch)
        out = []
        for c in np.asarray(arch.ops).tolist():
            out.append(
                None
                if c == self.skip
                else (
                    self.kernels[c // len(self.expansions)],
                    self.expansions[c % len(self.expansions)],
                )
            )
        return out

    def to_string(self, arch: ChainArch) -> str:
        """Blocks as `k3e6`, `skip`, joined by `-` (e.g. `k3e3-skip-k7e6-...`)."""
        return "-".join("skip" if b is None else f"k{b[0]}e{b[1]}" for b in self.blocks(arch))

    def from_string(self, string: str) -> ChainArch:
        where = "Chain.from_string"
        if not isinstance(string, str):
            raise bad(where, "string", "a str", type(string).__name__)
        parts = string.split("-")
        if len(parts) != self.num_blocks:
            raise bad(where, "string", f"{self.num_blocks} '-'-separated blocks", string)
        names = {
            f"k{k}e{e}": i * len(self.expansions) + j
            for i, k in enumerate(self.kernels)
            for j, e in enumerate(self.expansions)
        }
        names["skip"] = self.skip
        ops = []
        for p in parts:
            if p not in names:
                raise bad(where, "string", f"blocks from {sorted(names)}", p)
            ops.append(names[p])
        arch = ChainArch(np.asarray(ops, np.int8))
        self.validate(arch)
        return ChainArch(jnp.asarray(ops, jnp.int8))

    def one_hot(self, arch: ChainArch) -> jax.Array:
        """float32[B, K * E + 1]."""
        return jax.nn.one_hot(arch.ops, self.num_choices, dtype=jnp.float32)

    def op_flops(self, image_size: int = 224, stem_stride: int = 2) -> np.ndarray:
        """float32[B, K]: multiply-accumulates (millions) of every block's every choice on
        `image_size` inputs (the skip choice costs 0): ProxylessNAS' cost lookup table for
        FLOPs, e.g. `costs` of `jnas.oneshot.proxyless`. A network's total is this table's
        sum over its choices plus its fixed layers' (`jnas.nn.count_flops`)."""
        check_int("Chain.op_flops", "image_size", image_size, 1)
        if stem_stride not in (1, 2):
            raise bad("Chain.op_flops", "stem_stride", "1 or 2", stem_stride)
        size = -(-image_size // stem_stride)
        table = np.zeros((self.num_blocks, self.num_choices))
        c, b = self.first_block_channels, 0
        for width, n, stride in self.stages:
            for i in range(n):
                s = stride if i == 0 else 1
                out = -(-size // s)
                for k_i, kernel in enumerate(self.kernels):
                    for e_i, expansion in enumerate(self.expansions):
                        hidden = c * expansion
                        expand = size * size * c * hidden if expansion != 1 else 0
                        table[b, k_i * len(self.expansions) + e_i] = expand + out * out * hidden * (
                            kernel * kernel + width
                        )
                c, size, b = width, out, b + 1
        return (table / 1e6).astype(np.float32)

    def supernet(
        self,
        *,
        num_classes: int = 1000,
        in_channels: int = 3,
        stem_stride: int = 2,
        rngs: Any = None,
    ) -> Any:
        """The ProxylessNAS over-parameterised network (`jnas.nn.ChainSupernet`)."""
        from jnas.nn import ChainSupernet

        return ChainSupernet(
            self,
            num_classes=num_classes,
            in_channels=in_channels,
            stem_stride=stem_stride,
            rngs=rngs,
        )

    def build(
        self,
        arch: ChainArch,
        *,
        num_classes: int = 1000,
        dropout: float = 0.0,
        stem_stride: int = 2,
        rngs: Any = None,
    ) -> Any:
        """The chain network (`jnas.nn.ChainNetwork`); `stem_stride=1` suits 32x32 inputs."""
        from jnas.nn import ChainNetwork

        return ChainNetwork(
            self,
            self.blocks(arch),
            num_classes=num_classes,
            dropout=dropout,
            stem_stride=stem_stride,
            rngs=rngs,
        )
