"""Penalties on α added to a one-shot method's architecture loss, and the per-op cost
tables they read: SNAS' resource constraint and ProxylessNAS' latency loss (the
expected cost under softmax(α)), DrNAS' Dirichlet anchor.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import digamma, gammaln

from jnas.oneshot._relaxations import concentration

# Relative multiply-accumulates of the NB201 ops at equal channels (3x3 conv = 1).
NB201_OP_COST = {
    "none": 0.0,
    "skip_connect": 0.0,
    "nor_conv_1x1": 1 / 9,
    "nor_conv_3x3": 1.0,
    "avg_pool_3x3": 0.0,
}

# Relative multiply-accumulates of the DARTS ops at C = 16 (sep_conv_3x3 = 1).
DARTS_OP_COST = {
    "none": 0.0,
    "max_pool_3x3": 0.0,
    "avg_pool_3x3": 0.0,
    "skip_connect": 0.0,
    "sep_conv_3x3": 1.0,
    "sep_conv_5x5": 1.64,
    "sep_conv_7x7": 2.6,
    "dil_conv_3x3": 0.5,
    "dil_conv_5x5": 0.82,
}


# DARTS' recurrent ops: every kept edge multiplies by its node's W_i (nhid x 2 nhid);
# the activation itself is negligible
RNN_OP_COST = {"tanh": 1.0, "relu": 1.0, "sigmoid": 1.0, "identity": 1.0}


class Penalty(NamedTuple):
    """`weight * value(alpha)` added to the architecture loss; `value` is reported under
    `name` in the step's metrics."""

    name: str
    value: Callable[[jax.Array], jax.Array]
    weight: float


def _check_weight(where: str, name: str, weight: float) -> None:
    if not weight >= 0:
        raise ValueError(f"{where}: `{name}` must be >= 0; got {weight}")


def default_op_costs(space: Any) -> Any:
    """A space's own cost table: Chain's per-block MFLOPs (224 px), the NATS size space's
    relative widths, else the relative MACs of the NB201 / DARTS (convolutional and
    recurrent) ops."""
    if callable(getattr(space, "op_flops", None)):
        return space.op_flops()
    if callable(getattr(space, "widths", None)) and hasattr(space, "channels"):
        return np.asarray(space.channels, np.float32) / max(space.channels)
    return NB201_OP_COST | DARTS_OP_COST | RNN_OP_COST


def op_costs(space: Any, costs: Any = None) -> jax.Array:
    """float32[E, K] cost of each op on each edge: `costs` as given (a dict op -> cost or an
    [E, K] / [K] array), else `default_op_costs(space)`."""
    if costs is None:
        costs = default_op_costs(space)
    if isinstance(costs, dict):
        missing = [op for op in space.ops if op not in costs]
        if missing:
            raise ValueError(f"op costs: no cost for ops {missing}")
        costs = [costs[op] for op in space.ops]
    costs = np.broadcast_to(np.asarray(costs, np.float32), tuple(space.supernet_shape))
    return jnp.asarray(costs)


def linear_op_costs(space: Any, values: Any) -> np.ndarray:
    """float32[E, K] per-op costs whose sums best fit a per-cell cost (least squares).

    `values[i]` is the cost (latency, FLOPs, ...) of cell `space.from_index(i)`, e.g. a
    column of `jnas.bench.load_latency()`; the constant is spread evenly over the edges.
    """
    values = np.asarray(values, np.float64)
    if values.shape != (space.size,):
        raise ValueError(
            f"linear_op_costs: `values` must have one entry per cell "
            f"({space.size},); got {values.shape}"
        )
    slots, k = space.supernet_shape
    ops = np.asarray(jax.vmap(space.supernet_index)(space.enumerate()))
    design = np.zeros((space.size, slots * k + 1))
    for e in range(slots):
        design[np.arange(space.size), e * k + ops[:, e]] = 1.0
    design[:, -1] = 1.0
    ok = np.isfinite(values)
    coef, *_ = np.linalg.lstsq(design[ok], values[ok], rcond=None)
    costs = coef[:-1].reshape(slots, k)
    costs -= costs.min(-1, keepdims=True)  # per edge only differences matter
    return costs.astype(np.float32)


def expected_cost_penalty(
    space: Any,
    weight: float,
    costs: Any = None,
    name: str = "expected_cost",
    where: tuple[str, str] = ("expected_cost_penalty", "weight"),
) -> Penalty:
    """`weight * sum_e sum_k softmax(α)_ek cost_ek` (`costs`: see `op_costs`): SNAS'
    resource constraint, ProxylessNAS' differentiable latency loss. `where`: (caller,
    argument) named by the error for a negative weight."""
    _check_weight(*where, weight)
    cost = op_costs(space, costs)
    return Penalty(name, lambda alpha: jnp.sum(jax.nn.softmax(alpha, -1) * cost), weight)


def dirichlet_kl_to_uniform(beta: jax.Array) -> jax.Array:
    """KL(Dir(β) || Dir(1, ..., 1)) summed over the leading (edge) axis."""
    k = beta.shape[-1]
    b0 = jnp.sum(beta, -1)
    kl = (
        gammaln(b0)
        - jnp.sum(gammaln(beta), -1)
        - gammaln(float(k))
        + jnp.sum((beta - 1.0) * (digamma(beta) - digamma(b0)[..., None]), -1)
    )
    return jnp.sum(kl)


def dirichlet_anchor_penalty(
    weight: float, where: tuple[str, str] = ("dirichlet_anchor_penalty", "weight")
) -> Penalty:
    """`weight * KL(Dir(elu(α) + 1) || Dir(1))`: DrNAS' anchor, which keeps the
    concentration from exploding. `where`: (caller, argument) named by the error for a
    negative weight."""
    _check_weight(*where, weight)
    return Penalty("anchor", lambda alpha: dirichlet_kl_to_uniform(concentration(alpha)), weight)
