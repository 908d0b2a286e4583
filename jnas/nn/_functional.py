"""An NNX module as a pair of pure functions, the one wrapper one-shot search and
meta-learning share: `init(key) -> params` and `apply(params, *args) -> out`, with optional
mixed precision.

Differentiating through parameter updates (MAML) and carrying weights through `lax.scan`
(one-shot epochs) both want parameters as a plain pytree and the network as a static
graph: `nnx.split` once (traced with `nnx.eval_shape`, so nothing is allocated), then
`nnx.merge` inside every call. Modules here hold no mutable state besides their
parameters (BN uses batch statistics).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from flax import nnx

from jnas.nn._rngs import init_rngs


class Functional(NamedTuple):
    """`init(key) -> params` and `apply(params, *args) -> out`, both pure."""

    init: Callable[[jax.Array], Any]
    apply: Callable[..., Any]


def _cast(tree: Any, dtype: Any) -> Any:
    return jax.tree.map(
        lambda a: (
            a.astype(dtype) if hasattr(a, "dtype") and jnp.issubdtype(a.dtype, jnp.floating) else a
        ),
        tree,
    )


def functional(make: Callable[[nnx.Rngs], nnx.Module], compute_dtype: Any = None) -> Functional:
    """`make(rngs) -> module` as pure `init` / `apply`.

    `compute_dtype` (e.g. `jnp.bfloat16`): mixed precision. The parameters stay float32
    (the optimiser's master copy) and are cast, with every floating argument, for the
    forward and backward pass; floating outputs come back float32.
    """
    if compute_dtype is not None and not jnp.issubdtype(compute_dtype, jnp.floating):
        raise ValueError(
            f"`compute_dtype` must be a floating dtype (e.g. jnp.bfloat16); got {compute_dtype!r}"
        )
    graphdef, _ = nnx.split(nnx.eval_shape(lambda: make(init_rngs(0))))

    def init(key: jax.Array) -> Any:
        return nnx.split(make(init_rngs(key)))[1]

    def apply(params: Any, *args: Any) -> Any:
        if compute_dtype is None:
            return nnx.merge(graphdef, params)(*args)
        out = nnx.merge(graphdef, _cast(params, compute_dtype))(*_cast(args, compute_dtype))
        return _cast(out, jnp.float32)

    return Functional(init, apply)
