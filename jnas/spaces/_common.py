"""Helpers shared by the search spaces: errors, categorical mutation, neighbour batches."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import jax
import jax.core
import jax.numpy as jnp
import numpy as np


def bad(where: str, arg: str, expected: str, got: Any) -> ValueError:
    """A `ValueError` that names the argument, what was expected and what was given."""
    return ValueError(f"{where}: `{arg}` must be {expected}; got {got!r}")


def check_names(where: str, arg: str, names: tuple[str, ...]) -> None:
    """Raise unless `names` is a non-empty tuple of unique strings."""
    if (
        not isinstance(names, tuple)
        or not names
        or not all(isinstance(n, str) and n for n in names)
        or len(set(names)) != len(names)
    ):
        raise bad(where, arg, "a non-empty tuple of unique, non-empty strings", names)


def check_int(where: str, arg: str, value: Any, low: int, high: int | None = None) -> None:
    """Raise unless `value` is a Python int in [low, high]."""
    ok = isinstance(value, int | np.integer) and not isinstance(value, bool)
    if not ok or value < low or (high is not None and value > high):
        span = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise bad(where, arg, f"an integer {span}", value)


def concrete(where: str, arg: str, value: Any, shape: tuple[int, ...]) -> np.ndarray:
    """Return `value` as a host int64 array of `shape`, or raise naming `arg`.

    Used by the Python-side functions (strings, hashing, `build`), which need
    concrete values: they raise a clear error when handed a tracer.
    """
    if isinstance(value, jax.core.Tracer):
        raise bad(
            where, arg, "a concrete array (this function does not run under jit)", "a traced value"
        )
    try:
        array = np.asarray(value)
    except Exception as err:
        raise bad(where, arg, f"an integer array of shape {shape}", type(value)) from err
    if array.shape != shape or not np.issubdtype(array.dtype, np.integer):
        raise bad(
            where, arg, f"an integer array of shape {shape}", f"{array.dtype}{list(array.shape)}"
        )
    return array.astype(np.int64)


def random_choice_masked(key: jax.Array, mask: jax.Array) -> jax.Array:
    """Uniform index among the True entries of a 1-D `mask` (jittable).

    Every space guarantees at least one True entry where it calls this.
    """
    logits = jnp.where(mask, 0.0, -jnp.inf)
    return jax.random.categorical(key, logits)


def categorical_neighbors(
    values: jax.Array, num_choices: np.ndarray | jax.Array | int
) -> tuple[jax.Array, jax.Array]:
    """All arrays that differ from the 1-D `values` in exactly one position.

    Args:
      values: int[L], each in [0, num_choices) (or [0, num_choices[i])).
      num_choices: the number of choices at every position, or an int[L].

    Returns:
      `(batch, mask)`: int[L * (K - 1), L] candidates, K the largest choice count, and
      bool[L * (K - 1)], False where the candidate is out of range for its position.
    """
    length = values.shape[0]
    counts = jnp.broadcast_to(jnp.asarray(num_choices), (length,))
    max_k = int(np.max(num_choices))
    pos = jnp.repeat(jnp.arange(length), max_k - 1)
    shift = jnp.tile(jnp.arange(1, max_k), length)
    new = (values[pos].astype(jnp.int32) + shift) % max_k
    mask = new < counts[pos]
    batch = jnp.tile(values[None], (pos.shape[0], 1))
    batch = batch.at[jnp.arange(pos.shape[0]), pos].set(new.astype(values.dtype))
    return batch, mask


def mutate_categorical(key: jax.Array, values: jax.Array, num_choices: int) -> jax.Array:
    """Change exactly one entry of the 1-D `values` to a different value in range."""
    values = jnp.asarray(values)  # host arrays too
    pos_key, shift_key = jax.random.split(key)
    pos = jax.random.randint(pos_key, (), 0, values.shape[0])
    shift = jax.random.randint(shift_key, (), 1, num_choices)
    new = (values[pos].astype(jnp.int32) + shift) % num_choices
    return values.at[pos].set(new.astype(values.dtype))


class DecisionSupernet:
    """Supernet slots for spaces whose supernet has one mixed slot per decision.

    A supernet's architecture weights are float[E, K]: E slots (edges, blocks, layers)
    of K candidates each. Here slot e is decision e (`decision_sizes[e] <= K`); a
    candidate beyond a decision's size (Chain's skip on a block that cannot be skipped)
    is a zero op the derivation never picks.
    """

    if TYPE_CHECKING:  # what a space using it defines

        @property
        def decision_sizes(self) -> tuple[int, ...]: ...

        def to_decisions(self, arch: Any) -> jax.Array: ...

        def from_decisions(self, decisions: jax.Array) -> Any: ...

    @property
    def supernet_shape(self) -> tuple[int, int]:
        """(E, K): the shape of the supernet's architecture weights."""
        sizes = self.decision_sizes
        return (len(sizes), max(sizes))

    def supernet_index(self, arch: Any) -> jax.Array:
        """int32[E]: the candidate each supernet slot runs for the discrete `arch`."""
        return self.to_decisions(arch).astype(jnp.int32)

    def derive(self, weights: jax.Array) -> Any:
        """The architecture taking the highest-weighted allowed candidate in every slot."""
        sizes = np.asarray(self.decision_sizes)
        allowed = np.arange(self.supernet_shape[1])[None] < sizes[:, None]
        return self.from_decisions(jnp.argmax(jnp.where(allowed, weights, -jnp.inf), -1))
