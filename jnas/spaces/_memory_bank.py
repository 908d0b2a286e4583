"""SMASH's memory-bank view of a network (Brock et al., "SMASH: One-Shot Model Architecture
Search through HyperNetworks", ICLR 2018, §3.1).

A network is a few stages; each stage holds `banks` memory banks (feature maps of the
stage's width, bank 0 starting as the stage's input, the others at zero) and a fixed
number of blocks run in order. A block **reads** a non-empty subset of the banks (a 1x1
convolution of their concatenation), applies an **op** (one or two BN-ReLU-conv layers of a
kernel size and dilation) and **writes** (adds) its output to a non-empty subset of the
banks. A stage ends by reading every bank (a transition to the next stage's width at half
the resolution, or the classifier). Reading and writing patterns express ResNet-like,
DenseNet-like and FractalNet-like connectivity in one fixed-shape encoding, which is what
SMASH's hypernetwork conditions on.

The architecture stores three int8[stages, blocks] arrays: `reads` and `writes` as subset
codes (code c means the banks whose bit is set in c + 1, bank 0 the lowest bit) and `ops`
(kernel x dilation x depth, in that order). Every decision is independent, so sampling is
uniform over the space and every decision vector is valid.
"""

from __future__ import annotations

import dataclasses
import re
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


class MemoryBankArch(NamedTuple):
    reads: jax.Array  # int8[S, N]: subset code of the banks each block reads
    writes: jax.Array  # int8[S, N]: subset code of the banks each block writes to
    ops: jax.Array  # int8[S, N]: kernel x dilation x depth choice


def _unique_positive(where: str, name: str, values: Any) -> None:
    if (
        not isinstance(values, tuple)
        or not values
        or len(set(values)) != len(values)
        or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in values)
    ):
        raise bad(where, name, "a non-empty tuple of unique positive ints", values)


@dataclasses.dataclass(frozen=True)
class MemoryBank(DecisionSupernet):
    """SMASH's memory-bank space.

    Args:
      stages: number of stages (each after the first halves the resolution and doubles
        the width).
      blocks: blocks per stage.
      banks: memory banks per stage (a block reads / writes any non-empty subset).
      kernels, dilations, depths: the op choices (odd kernel sizes; 1 or more conv layers).
    """

    stages: int = 3
    blocks: int = 4
    banks: int = 3
    kernels: tuple[int, ...] = (3, 5)
    dilations: tuple[int, ...] = (1, 2)
    depths: tuple[int, ...] = (1, 2)

    def __post_init__(self) -> None:
        check_int("MemoryBank", "stages", self.stages, 1, 4)
        check_int("MemoryBank", "blocks", self.blocks, 1)
        check_int("MemoryBank", "banks", self.banks, 1, 6)
        for name in ("kernels", "dilations", "depths"):
            _unique_positive("MemoryBank", name, getattr(self, name))
        if any(k % 2 == 0 for k in self.kernels):
            raise bad("MemoryBank", "kernels", "odd kernel sizes", self.kernels)

    # -- decisions --------------------------------------------------------------------
    @property
    def num_subsets(self) -> int:
        """Non-empty subsets of the banks: the choices of a read or a write."""
        return 2**self.banks - 1

    @property
    def num_ops(self) -> int:
        return len(self.kernels) * len(self.dilations) * len(self.depths)

    @property
    def decision_sizes(self) -> tuple[int, ...]:
        """Per stage, per block: (read subset, write subset, op)."""
        per_block = (self.num_subsets, self.num_subsets, self.num_ops)
        return per_block * (self.stages * self.blocks)

    @property
    def size(self) -> int:
        return (self.num_subsets**2 * self.num_ops) ** (self.stages * self.blocks)

    def subset_masks(self) -> np.ndarray:
        """float32[K, banks]: row c is the bank mask of subset code c (zero rows past the
        last code, so the rows line up with the supernet's K candidates)."""
        k = self.supernet_shape[1]
        codes = np.arange(k) + 1
        masks = (codes[:, None] >> np.arange(self.banks)[None]) & 1
        masks[self.num_subsets :] = 0
        return masks.astype(np.float32)

    def op(self, choice: int) -> tuple[int, int, int]:
        """(kernel, dilation, depth) of an op choice."""
        nd, nl = len(self.dilations), len(self.depths)
        return (
            self.kernels[choice // (nd * nl)],
            self.dilations[(choice // nl) % nd],
            self.depths[choice % nl],
        )

    def to_decisions(self, arch: MemoryBankArch) -> jax.Array:
        stacked = jnp.stack([arch.reads, arch.writes, arch.ops], -1)
        return stacked.reshape(-1).astype(jnp.int32)

    def from_decisions(self, decisions: jax.Array) -> MemoryBankArch:
        d = jnp.asarray(decisions).astype(jnp.int8).reshape(self.stages, self.blocks, 3)
        return MemoryBankArch(d[..., 0], d[..., 1], d[..., 2])

    def _counts(self) -> jax.Array:
        return jnp.asarray(self.decision_sizes, jnp.int32)

    # -- Space --------------------------------------------------------------------------
    def sample(self, key: jax.Array) -> MemoryBankArch:
        """Uniform: every decision independently."""
        u = jax.random.uniform(key, (len(self.decision_sizes),))
        return self.from_decisions(jnp.floor(u * self._counts()))

    def is_valid(self, arch: MemoryBankArch) -> jax.Array:
        d = self.to_decisions(arch)
        return jnp.all((d >= 0) & (d < self._counts()))

    def validate(self, arch: Any) -> None:
        where = "MemoryBank.validate"
        if not isinstance(arch, MemoryBankArch):
            raise bad(where, "arch", "a MemoryBankArch", type(arch).__name__)
        shape = (self.stages, self.blocks)
        for name, high in (
            ("reads", self.num_subsets),
            ("writes", self.num_subsets),
            ("ops", self.num_ops),
        ):
            values = concrete(where, f"arch.{name}", getattr(arch, name), shape)
            if np.any(values < 0) or np.any(values >= high):
                raise bad(where, f"arch.{name}", f"codes in [0, {high})", values.tolist())

    def neighbors(self, arch: MemoryBankArch) -> tuple[MemoryBankArch, jax.Array]:
        """Every single-decision change, and whether it is in range."""
        d = self.to_decisions(arch)
        n, k = d.shape[0], self.supernet_shape[1]
        pos = np.repeat(np.arange(n), k)
        val = np.tile(np.arange(k), n)
        batch = jnp.tile(d[None], (n * k, 1)).at[np.arange(n * k), pos].set(val)
        mask = (d[pos] != val) & (val < self._counts()[pos])
        return jax.vmap(self.from_decisions)(batch), mask

    def mutate(self, key: jax.Array, arch: MemoryBankArch) -> MemoryBankArch:
        """Change exactly one decision (a read set, a write set or an op), uniformly over
        the single changes."""
        batch, mask = self.neighbors(arch)
        pick = random_choice_masked(key, mask)
        return jax.tree.map(lambda x: x[pick], batch)

    # -- strings and encodings ------------------------------------------------------------
    def _bits(self, code: int) -> str:
        return "".join(str(((code + 1) >> b) & 1) for b in range(self.banks))

    def to_string(self, arch: MemoryBankArch) -> str:
        """Blocks as `r100w011k3d1x2` (banks read, banks written, bank 0 first; kernel,
        dilation, depth) joined by `-`, stages by `/`."""
        self.validate(arch)
        reads, writes, ops = (np.asarray(a) for a in arch)
        stages = []
        for s in range(self.stages):
            parts = []
            for i in range(self.blocks):
                k, d, x = self.op(int(ops[s, i]))
                parts.append(
                    f"r{self._bits(int(reads[s, i]))}w{self._bits(int(writes[s, i]))}k{k}d{d}x{x}"
                )
            stages.append("-".join(parts))
        return "/".join(stages)

    def from_string(self, string: str) -> MemoryBankArch:
        where = "MemoryBank.from_string"
        if not isinstance(string, str):
            raise bad(where, "string", "a str", type(string).__name__)
        stages = string.split("/")
        if len(stages) != self.stages:
            raise bad(where, "string", f"{self.stages} '/'-separated stages", string)
        pattern = re.compile(r"r([01]+)w([01]+)k(\d+)d(\d+)x(\d+)")
        ops = {self.op(c): c for c in range(self.num_ops)}
        out = np.zeros((3, self.stages, self.blocks), np.int8)
        for s, stage in enumerate(stages):
            blocks = stage.split("-")
            if len(blocks) != self.blocks:
                raise bad(where, "string", f"{self.blocks} '-'-separated blocks per stage", stage)
            for i, block in enumerate(blocks):
                m = pattern.fullmatch(block)
                if m is None:
                    raise bad(where, "string", "blocks like 'r100w011k3d1x2'", block)
                codes = []
                for bits in m.group(1, 2):
                    value = sum(int(c) << b for b, c in enumerate(bits))
                    if len(bits) != self.banks or value == 0:
                        raise bad(
                            where,
                            "string",
                            f"read/write sets of {self.banks} bits with at least one set",
                            block,
                        )
                    codes.append(value - 1)
                op = (int(m.group(3)), int(m.group(4)), int(m.group(5)))
                if op not in ops:
                    raise bad(where, "string", f"ops (kernel, dilation, depth) in {list(ops)}", op)
                out[:, s, i] = (*codes, ops[op])
        return MemoryBankArch(*(jnp.asarray(a) for a in out))

    def one_hot(self, arch: MemoryBankArch) -> jax.Array:
        """float32[S * N * 3, K]: every decision one-hot (SMASH's embedding of the
        architecture, flattened: what its hypernetwork reads)."""
        return jax.nn.one_hot(self.to_decisions(arch), self.supernet_shape[1], dtype=jnp.float32)

    # -- networks -----------------------------------------------------------------------
    def supernet(
        self,
        *,
        channels: int = 16,
        num_classes: int = 10,
        in_channels: int = 3,
        rngs: Any = None,
    ) -> Any:
        """Every read, write and op of the space mixed by op weights
        (`jnas.nn.MemoryBankSupernet`)."""
        from jnas.nn import MemoryBankSupernet

        return MemoryBankSupernet(
            self, channels=channels, num_classes=num_classes, in_channels=in_channels, rngs=rngs
        )

    def build(
        self,
        arch: MemoryBankArch,
        *,
        channels: int = 16,
        num_classes: int = 10,
        in_channels: int = 3,
        rngs: Any = None,
    ) -> Any:
        """The network of `arch` (`jnas.nn.MemoryBankNetwork`)."""
        from jnas.nn import MemoryBankNetwork

        self.validate(arch)
        return MemoryBankNetwork(
            self,
            arch,
            channels=channels,
            num_classes=num_classes,
            in_channels=in_channels,
            rngs=rngs,
        )
