"""Relaxations: how a one-shot method turns its architecture parameters α into the op
weights of one forward pass, the part that tells DARTS, GDAS, SNAS, DrNAS and
ProxylessNAS apart (the rest of their step is `jnas.oneshot.relaxed_search`'s).

A `Relaxation` is a pair of pure functions, the optax way:
`sample(key, alpha, step) -> (weights float[E, K], index int32[E] | None)` and
`mean(alpha) -> float[E, K]`, the expected op weights a cell is derived from. `index` is
given when the weights are one-hot, so the supernet computes only the chosen op.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

Schedule = Callable[[jax.Array], jax.Array]  # step -> temperature
# (key, or None for a deterministic relaxation; alpha; step) -> (weights, index or None)
Sample = Callable[[Any, Any, jax.Array], tuple[jax.Array, jax.Array | None]]


class Relaxation(NamedTuple):
    """α -> op weights of one forward pass.

    sample: `(key, alpha, step) -> (weights, index or None)`.
    mean: `alpha -> float[E, K]`, the expected op weights (`derive` takes their argmax).
    temperature: `step -> tau` where the relaxation has one (reported as `tau`).
    stochastic: whether `sample` uses its key (a step splits its key only between
      relaxations that do).
    """

    sample: Sample
    mean: Callable[[jax.Array], jax.Array]
    temperature: Schedule | None = None
    stochastic: bool = True


def _softmax(alpha: jax.Array) -> jax.Array:
    return jax.nn.softmax(alpha, -1)


def linear_tau(
    step: jax.Array, steps_per_epoch: int, epochs: int, tau_max: float, tau_min: float
) -> jax.Array:
    """A temperature linear in the epoch from tau_max (first) to tau_min (last epoch)."""
    epoch = jnp.minimum(step // steps_per_epoch, epochs - 1)
    return tau_max - (tau_max - tau_min) * epoch / max(epochs - 1, 1)


gdas_tau = linear_tau  # GDAS: linear in the epoch from 10 to 0.1


def linear_tau_schedule(
    steps_per_epoch: int,
    epochs: int,
    tau_max: float,
    tau_min: float,
    where: str = "linear_tau_schedule",
) -> Schedule:
    """`linear_tau` as a schedule of the step (GDAS, SNAS); `where` names the caller in
    the error for a bad range."""
    if not 0 < tau_min <= tau_max:
        raise ValueError(f"{where}: need 0 < `tau_min` <= `tau_max`; got {tau_min}, {tau_max}")
    return lambda step: linear_tau(step, steps_per_epoch, epochs, tau_max, tau_min)


def hard_gumbel(
    key: jax.Array, alpha: jax.Array, tau: jax.Array | float
) -> tuple[jax.Array, jax.Array]:
    """(straight-through one-hot weights float[E, K], sampled index int32[E]): the forward
    uses the one-hot, the backward the relaxed probabilities (GDAS)."""
    gumbel = jax.random.gumbel(key, alpha.shape)
    probs = jax.nn.softmax((jax.nn.log_softmax(alpha, -1) + gumbel) / tau, -1)
    index = jnp.argmax(probs, -1)
    hard = jax.nn.one_hot(index, alpha.shape[-1], dtype=probs.dtype)
    return hard - jax.lax.stop_gradient(probs) + probs, index


def relaxed_gumbel(key: jax.Array, alpha: jax.Array, tau: jax.Array | float) -> jax.Array:
    """Concrete-distribution op weights float[E, K], differentiable in α (SNAS)."""
    gumbel = jax.random.gumbel(key, alpha.shape)
    return jax.nn.softmax((jax.nn.log_softmax(alpha, -1) + gumbel) / tau, -1)


def two_path_gates(key: jax.Array, alpha: jax.Array) -> jax.Array:
    """ProxylessNAS' binary gates float[E, K]: one-hot of the op chosen among two sampled
    candidates, with the two-op softmax's gradient
    (`dL/dα_i = sum_j dL/dg_j p_j (δ_ij - p_i)` over the two; zero on the other ops)."""
    k_pair, k_pick = jax.random.split(key)
    scores = jax.nn.log_softmax(alpha, -1) + jax.random.gumbel(k_pair, alpha.shape)
    pair = jax.lax.top_k(scores, 2)[1]  # two distinct ops by softmax(α), without replacement
    in_pair = jax.nn.one_hot(pair, alpha.shape[-1]).sum(-2)
    probs = jax.nn.softmax(jnp.where(in_pair > 0, alpha, -jnp.inf), -1)
    pick = jax.random.categorical(
        k_pick, jnp.log(jnp.maximum(jax.lax.stop_gradient(probs), 1e-30)), -1
    )
    hard = jax.nn.one_hot(pick, alpha.shape[-1], dtype=probs.dtype)
    return hard - jax.lax.stop_gradient(probs) + probs


def concentration(alpha: jax.Array) -> jax.Array:
    """DrNAS' Dirichlet concentration, positive: elu(α) + 1."""
    return jax.nn.elu(alpha) + 1.0


def softmax_relaxation() -> Relaxation:
    """softmax(α) on every edge: every op runs, weighted (DARTS, SETN's α step)."""
    return Relaxation(lambda key, alpha, step: (_softmax(alpha), None), _softmax, stochastic=False)


def gumbel_relaxation(temperature: Schedule, *, hard: bool) -> Relaxation:
    """Gumbel-softmax of α at `temperature(step)`: hard (one sampled op per edge,
    straight-through gradient; GDAS) or relaxed (the concrete distribution; SNAS)."""

    def sample(key: jax.Array, alpha: jax.Array, step: jax.Array):
        tau = temperature(step)
        if hard:
            return hard_gumbel(key, alpha, tau)
        return relaxed_gumbel(key, alpha, tau), None

    return Relaxation(sample, _softmax, temperature)


def dirichlet_relaxation() -> Relaxation:
    """Op weights drawn from Dir(elu(α) + 1) by the reparameterised sample (DrNAS); the
    mean is the normalised concentration."""

    def sample(key: jax.Array, alpha: jax.Array, step: jax.Array):
        return jax.random.dirichlet(key, concentration(alpha)), None

    def mean(alpha: jax.Array) -> jax.Array:
        beta = concentration(alpha)
        return beta / jnp.sum(beta, -1, keepdims=True)

    return Relaxation(sample, mean)


def path_relaxation() -> Relaxation:
    """One op per edge drawn from softmax(α), one-hot, no gradient to α (ProxylessNAS'
    weight step)."""

    def sample(key: jax.Array, alpha: jax.Array, step: jax.Array):
        index = jax.random.categorical(key, alpha, -1)
        return jax.nn.one_hot(index, alpha.shape[-1]), index

    return Relaxation(sample, _softmax)


def binary_gate_relaxation() -> Relaxation:
    """ProxylessNAS' binary gates (`two_path_gates`) for the α step."""
    return Relaxation(lambda key, alpha, step: (two_path_gates(key, alpha), None), _softmax)


def uniform_path_relaxation(space: Any) -> Relaxation:
    """One uniformly sampled cell of `space`, one-hot, α unused (RSWS, SPOS, SETN's
    weight step)."""

    def sample(key: jax.Array, alpha: Any, step: jax.Array):
        index = space.supernet_index(space.sample(key))
        return jax.nn.one_hot(index, tuple(space.supernet_shape)[1]), index

    return Relaxation(sample, _softmax)


def path_dropout_relaxation(space: Any, drop_rate: float) -> Relaxation:
    """Every op of `space`'s supernet kept with probability 1 - `drop_rate`, at least one
    per edge (One-Shot path dropout, Bender et al. 2018); α unused."""
    if not 0 <= drop_rate < 1:
        raise ValueError(f"path dropout: `drop_rate` must be in [0, 1); got {drop_rate}")

    def sample(key: jax.Array, alpha: Any, step: jax.Array):
        slots, k = tuple(space.supernet_shape)
        k_drop, k_keep = jax.random.split(key)
        keep = jax.random.bernoulli(k_drop, 1 - drop_rate, (slots, k))
        rescue = jax.nn.one_hot(jax.random.randint(k_keep, (slots,), 0, k), k)
        return jnp.where(keep.any(-1, keepdims=True), keep, rescue).astype(jnp.float32), None

    return Relaxation(sample, _softmax)
