"""A layer-wise sequence space (MetaQNN, Baker et al. ICLR 2017; Zoph & Le, ICLR 2017).

A network is a sequence of at most `max_layers` layers, each a token: a convolution
(kernel, filters, stride), a pooling layer (kernel, stride), a fully-connected layer
(units), or `terminal`, which ends the network; every position after it is `terminal`
too, so the architecture is a fixed-shape int array. Token 0 is `terminal`.

Validity follows MetaQNN: the first layer is a convolution, no pooling directly after
pooling, no convolution or pooling after a fully-connected layer, at most `max_fc`
consecutive fully-connected layers, fully-connected layers only once the feature map is
at most `fc_max_size` wide, and pooling only while the map is at least as large as its
kernel (pooling is 'VALID', convolutions are 'SAME').
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jnas.spaces._common import bad, check_int, concrete, random_choice_masked

TERMINAL, CONV, POOL, FC = 0, 1, 2, 3
_KINDS = ("terminal", "conv", "pool", "fc")


class SequentialArch(NamedTuple):
    # int8[max_layers]: layer tokens, `terminal` (0) after the last layer
    tokens: jax.Array | np.ndarray


@dataclasses.dataclass(frozen=True)
class Sequential:
    """MetaQNN's layer-sequence space, padded to `max_layers`."""

    max_layers: int = 12
    conv_kernels: tuple[int, ...] = (1, 3, 5)
    conv_filters: tuple[int, ...] = (64, 128, 256, 512)
    conv_strides: tuple[int, ...] = (1,)
    pools: tuple[tuple[int, int], ...] = ((5, 3), (3, 2), (2, 2))
    fc_units: tuple[int, ...] = (512, 256, 128)
    max_fc: int = 2
    fc_max_size: int = 8
    input_size: int = 32

    def __post_init__(self) -> None:
        check_int("Sequential", "max_layers", self.max_layers, 1, 64)
        for name in ("conv_kernels", "conv_filters", "conv_strides", "fc_units"):
            v = getattr(self, name)
            if (
                not isinstance(v, tuple)
                or not v
                or len(set(v)) != len(v)
                or not all(isinstance(x, int) and x >= 1 for x in v)
            ):
                raise bad("Sequential", name, "a tuple of unique positive ints", v)
        if not isinstance(self.pools, tuple) or not all(
            isinstance(p, tuple) and len(p) == 2 and all(isinstance(x, int) and x >= 1 for x in p)
            for p in self.pools
        ):
            raise bad("Sequential", "pools", "a tuple of (kernel, stride) int pairs", self.pools)
        if len(self.conv_kernels) * len(self.conv_filters) < 2:
            raise bad(
                "Sequential",
                "conv_kernels/conv_filters",
                "at least two conv choices per stride (mutation needs one)",
                (self.conv_kernels, self.conv_filters),
            )
        check_int("Sequential", "max_fc", self.max_fc, 0)
        check_int("Sequential", "fc_max_size", self.fc_max_size, 1)
        check_int("Sequential", "input_size", self.input_size, 1)
        if len(self.tokens) > 127:
            raise bad(
                "Sequential",
                "conv_kernels/conv_filters/conv_strides/pools/fc_units",
                "at most 127 layer tokens in all (int8)",
                len(self.tokens),
            )

    @functools.cached_property
    def tokens(self) -> tuple[tuple, ...]:
        """All layer tokens: ('terminal',), ('conv', k, f, s), ('pool', k, s), ('fc', u)."""
        out: list[tuple] = [("terminal",)]
        out += [
            ("conv", k, f, s)
            for k in self.conv_kernels
            for f in self.conv_filters
            for s in self.conv_strides
        ]
        out += [("pool", k, s) for k, s in self.pools]
        out += [("fc", u) for u in self.fc_units]
        return tuple(out)

    @property
    def num_tokens(self) -> int:
        return len(self.tokens)

    @functools.cached_property
    def size(self) -> int:
        """Number of valid layer sequences (dynamic programming over the rules)."""
        table = self._table

        @functools.cache
        def count(depth: int, prev: int, size: int, fc_run: int, first: bool) -> int:
            if depth == self.max_layers:
                return 1
            total = 0 if first else 1  # stop here: terminal padding to the end
            for kind, kernel, stride in table[1:].tolist():
                if kind == CONV and prev != FC:
                    total += count(depth + 1, CONV, -(-size // stride), 0, False)
                elif kind == POOL and not first and prev not in (POOL, FC) and size >= kernel:
                    total += count(depth + 1, POOL, (size - kernel) // stride + 1, 0, False)
                elif kind == FC and not first and size <= self.fc_max_size and fc_run < self.max_fc:
                    total += count(depth + 1, FC, size, fc_run + 1, False)
            return total

        return count(0, TERMINAL, self.input_size, 0, True)

    @functools.cached_property
    def _table(self) -> np.ndarray:
        """int32[T, 3]: kind, kernel, stride of each token."""
        rows = []
        for t in self.tokens:
            kind = _KINDS.index(t[0])
            kernel = t[1] if t[0] in ("conv", "pool") else 1
            stride = t[3] if t[0] == "conv" else (t[2] if t[0] == "pool" else 1)
            rows.append((kind, kernel, stride))
        return np.asarray(rows, np.int32)

    def _step(self, carry, token):
        """One layer of the validity scan: (ok, ended, prev_kind, size, fc_run)."""
        ok, ended, prev, size, fc_run, first = carry
        in_range = (token >= 0) & (token < self.num_tokens)
        t = jnp.asarray(self._table)[jnp.clip(token, 0, self.num_tokens - 1)]
        kind, kernel, stride = t[0], t[1], t[2]
        conv_size = (size + stride - 1) // stride  # 'SAME'
        pool_size = (size - kernel) // stride + 1  # 'VALID'
        rules = jnp.select(
            [kind == TERMINAL, kind == CONV, kind == POOL, kind == FC],
            [
                ~first,
                ~ended & (prev != FC),
                ~ended & ~first & (prev != POOL) & (prev != FC) & (size >= kernel),
                ~ended & ~first & (size <= self.fc_max_size) & (fc_run < self.max_fc),
            ],
            False,
        )
        ok = ok & in_range & rules
        new_size = jnp.select([kind == CONV, kind == POOL], [conv_size, pool_size], size)
        new_fc = jnp.where(kind == FC, fc_run + 1, 0)
        live = kind != TERMINAL
        carry = (
            ok,
            ended | ~live,
            jnp.where(live, kind, prev),
            jnp.where(live, new_size, size),
            jnp.where(live, new_fc, fc_run),
            jnp.zeros((), bool),
        )
        return carry, None

    def _start(self) -> tuple:
        """The validity scan's carry before the first layer."""
        return (
            jnp.ones((), bool),
            jnp.zeros((), bool),
            jnp.full((), TERMINAL, jnp.int32),
            jnp.full((), self.input_size, jnp.int32),
            jnp.zeros((), jnp.int32),
            jnp.ones((), bool),
        )

    # The rules as a state machine, public for layer-by-layer agents (MetaQNN's states).
    def start_state(self) -> tuple:
        """The rules' state before the first layer (a tuple of int/bool scalars)."""
        return self._start()

    def next_state(self, state: tuple, token: jax.Array) -> tuple:
        """The state after appending layer `token`."""
        return self._step(state, jnp.asarray(token, jnp.int32))[0]

    def allowed_next(self, state: tuple) -> jax.Array:
        """bool[num_tokens]: the layers MetaQNN's rules allow after `state` (only
        `terminal` once the sequence ended)."""
        return self._allowed(state)

    def state_size(self, state: tuple) -> jax.Array:
        """int32[]: the representation size (height = width) after the layers so far."""
        return state[3]

    def is_valid(self, arch: SequentialArch) -> jax.Array:
        tokens = jnp.asarray(arch.tokens).astype(jnp.int32)
        init = self._start()
        (ok, *_), _ = jax.lax.scan(self._step, init, tokens)
        return ok

    def validate(self, arch: Any) -> None:
        where = "Sequential.validate"
        if not isinstance(arch, SequentialArch):
            raise bad(where, "arch", "a SequentialArch", type(arch).__name__)
        tokens = concrete(where, "arch.tokens", arch.tokens, (self.max_layers,))
        with jax.ensure_compile_time_eval():  # concrete even inside a trace
            ok = bool(_is_valid_compiled(self, jnp.asarray(tokens)))
        if not ok:
            raise bad(
                where,
                "arch.tokens",
                "a layer sequence obeying MetaQNN's rules (first "
                "layer conv; no pool after pool; no conv/pool after fc; at most "
                f"{self.max_fc} fc, only at size <= {self.fc_max_size}; terminal "
                "padding at the end)",
                [self.tokens[t] if 0 <= t < self.num_tokens else t for t in tokens.tolist()],
            )

    def _allowed(self, carry) -> jax.Array:
        """bool[T]: tokens that may come next after the layers scanned into `carry`."""
        steps = jax.vmap(lambda t: self._step(carry, t)[0][0])(
            jnp.arange(self.num_tokens, dtype=jnp.int32)
        )
        return steps

    def sample(self, key: jax.Array) -> SequentialArch:
        """Layer by layer, each token uniform among those the rules allow (MetaQNN's
        random exploration); once `terminal` is drawn the rest is padding."""
        init = self._start()

        def body(carry, k):
            allowed = self._allowed(carry)
            token = random_choice_masked(k, allowed).astype(jnp.int32)
            new, _ = self._step(carry, token)
            return new, token

        _, tokens = jax.lax.scan(body, init, jax.random.split(key, self.max_layers))
        return SequentialArch(tokens.astype(jnp.int8))

    # ---------------------------------------------------------------- decisions
    @property
    def decision_sizes(self) -> tuple[int, ...]:
        """One decision per layer position: its token (MetaQNN's action at each depth)."""
        return (self.num_tokens,) * self.max_layers

    def to_decisions(self, arch: SequentialArch) -> jax.Array:
        """int32[max_layers]: the layer tokens."""
        return jnp.asarray(arch.tokens).astype(jnp.int32)

    def from_decisions(self, decisions: jax.Array) -> SequentialArch:
        """The sequence of `decisions`, layer by layer, where a token the rules forbid
        after the layers before it becomes the next allowed token in token order
        (wrapping). Valid sequences come back unchanged; any decision vector (from a
        policy that samples each position independently) gives a valid network."""
        t = self.num_tokens
        init = self._start()

        def body(carry, d):
            order = (d % t + jnp.arange(t)) % t
            token = order[jnp.argmax(self._allowed(carry)[order])]
            new, _ = self._step(carry, token)
            return new, token

        _, tokens = jax.lax.scan(body, init, jnp.asarray(decisions).astype(jnp.int32))
        return SequentialArch(tokens.astype(jnp.int8))

    def neighbors(self, arch: SequentialArch) -> tuple[SequentialArch, jax.Array]:
        """Every single-token change and whether it is valid."""
        d, t = self.max_layers, self.num_tokens
        pos, val = np.repeat(np.arange(d), t), np.tile(np.arange(t), d)
        batch = (
            jnp.tile(arch.tokens[None], (d * t, 1))
            .at[np.arange(d * t), pos]
            .set(jnp.asarray(val, jnp.int8))
        )
        batch = SequentialArch(batch)
        mask = (arch.tokens[pos] != val) & jax.vmap(self.is_valid)(batch)
        return batch, mask

    def mutate(self, key: jax.Array, arch: SequentialArch) -> SequentialArch:
        """Change exactly one layer token, uniform among the changes that stay valid.

        The first layer is a conv, and swapping it for a conv of another kernel size or
        width (same stride) keeps every size, so a valid change always exists.
        """
        batch, mask = self.neighbors(arch)
        return SequentialArch(batch.tokens[random_choice_masked(key, mask)])

    def layers(self, arch: SequentialArch) -> list[tuple]:
        """The layer tokens before the first terminal (Python side)."""
        self.validate(arch)
        out = []
        for t in np.asarray(arch.tokens).tolist():
            if t == TERMINAL:
                break
            out.append(self.tokens[t])
        return out

    def to_string(self, arch: SequentialArch) -> str:
        """E.g. `C(3,64,1)-P(2,2)-FC(512)`."""
        parts = []
        for t in self.layers(arch):
            if t[0] == "conv":
                parts.append(f"C({t[1]},{t[2]},{t[3]})")
            elif t[0] == "pool":
                parts.append(f"P({t[1]},{t[2]})")
            else:
                parts.append(f"FC({t[1]})")
        return "-".join(parts)

    def from_string(self, string: str) -> SequentialArch:
        where = "Sequential.from_string"
        if not isinstance(string, str):
            raise bad(where, "string", "a str", type(string).__name__)
        if not string:
            raise bad(where, "string", "layers like 'C(3,64,1)-P(2,2)-FC(512)'", string)
        names = {}
        for i, t in enumerate(self.tokens[1:], start=1):
            key = {
                "conv": lambda t: f"C({t[1]},{t[2]},{t[3]})",
                "pool": lambda t: f"P({t[1]},{t[2]})",
                "fc": lambda t: f"FC({t[1]})",
            }[t[0]](t)
            names[key] = i
        parts = string.split("-")
        if len(parts) > self.max_layers:
            raise bad(where, "string", f"at most {self.max_layers} layers", len(parts))
        tokens = []
        for p in parts:
            if p not in names:
                raise bad(
                    where, "string", f"layers from this space's tokens, e.g. {list(names)[:3]}", p
                )
            tokens.append(names[p])
        tokens += [TERMINAL] * (self.max_layers - len(tokens))
        self.validate(SequentialArch(np.asarray(tokens, np.int8)))
        return SequentialArch(jnp.asarray(tokens, jnp.int8))

    def one_hot(self, arch: SequentialArch) -> jax.Array:
        """float32[max_layers, T]."""
        return jax.nn.one_hot(arch.tokens, self.num_tokens, dtype=jnp.float32)

    def build(
        self,
        arch: SequentialArch,
        *,
        num_classes: int = 10,
        batch_norm: bool = True,
        dropout: float = 0.0,
        rngs: Any = None,
    ) -> Any:
        """The layer sequence as a network (`jnas.nn.SequentialNetwork`)."""
        from jnas.nn import SequentialNetwork

        return SequentialNetwork(
            self.layers(arch),
            num_classes=num_classes,
            batch_norm=batch_norm,
            dropout=dropout,
            rngs=rngs,
        )


@functools.partial(jax.jit, static_argnums=0)
def _is_valid_compiled(space: Sequential, tokens: jax.Array) -> jax.Array:
    """`space.is_valid` compiled once per space: `validate` (and so `to_string`) runs it
    per architecture on the host, where op-by-op the rules' scan took 0.17 s a call."""
    return space.is_valid(SequentialArch(tokens))
