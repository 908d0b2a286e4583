"""PNAS: progressive neural architecture search (Liu et al., ECCV 2018).

PNAS grows cells one block at a time: the `beam` cells with B blocks are expanded by
every choice of block B+1, a surrogate trained on the cells evaluated so far ranks the
expansions, the `beam` best are evaluated and become the next beam. In jnas a cell is a
space's sequence of categorical decisions (`decision_sizes`: NB201's six edges, NATSSize's
five widths, Chain's layers), so "B blocks" is a prefix of B decisions. A prefix is
evaluated as a complete architecture: its undecided positions filled with `fill` (one
choice for every position, or one per position), or drawn uniformly when `fill` is None.

The surrogate is PNAS's ensemble of MLPs (`jnas.predictors.ensemble_fit`, `members`
networks, retrained every round) on the prefix's encoding: each decided position one-hot,
undecided ones all zero, so one predictor serves every prefix length, as PNAS's MLP over
averaged block embeddings does. The first level's expansions, before any data, are
ranked at random. When the beam is complete (B = number of decisions) the search starts
again from empty prefixes with the surrogate's data kept, so a run of any length keeps
searching. Rounds with fewer than `beam` valid expansions (the first decision may have
fewer choices) fill the batch with uniform samples, which train the surrogate but do not
join the beam.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jnas._checks import check_positive
from jnas.predictors import ensemble_fit, ensemble_predict
from jnas.search._base import (
    Searcher,
    clean_fitness,
    update_incumbent,
)
from jnas.spaces import Decisions, DecisionSpace, Space, require


class PNASState(NamedTuple):
    beam: jax.Array  # int32[beam, D]: the current prefixes, -1 where undecided
    beam_ok: jax.Array  # bool[beam]
    level: jax.Array  # int32[]: decisions fixed in the beam's prefixes
    pending: jax.Array  # int32[beam, D]: the asked batch's prefixes
    pending_ok: jax.Array  # bool[beam]: which asked candidates are beam expansions
    x: jax.Array  # int32[max_points, D]: evaluated prefixes (ring buffer)
    y: jax.Array  # float32[max_points]: their fitness (NaN where failed)
    count: jax.Array  # int32[]
    best: Any
    best_fitness: jax.Array  # float32[]


def prefix_encoding(prefixes: jax.Array, sizes: Sequence[int]) -> jax.Array:
    """float32[..., D * K]: each decided position one-hot, undecided (-1) all zero."""
    k = int(max(sizes))
    return jax.nn.one_hot(prefixes, k, dtype=jnp.float32).reshape(*prefixes.shape[:-1], -1)


def pnas(
    space: DecisionSpace,
    beam: int = 10,
    *,
    fill: int | Sequence[int] | None = None,
    members: int = 5,
    train_steps: int = 200,
    max_points: int = 200,
) -> Searcher:
    """PNAS over the space's decisions (see the module docstring). One round, `beam`
    candidates, per `ask`."""
    where = "pnas"
    check_positive(
        where, beam=beam, members=members, train_steps=train_steps, max_points=max_points
    )
    require(where, space, Space, Decisions)
    sizes = tuple(int(s) for s in space.decision_sizes)
    n, k = len(sizes), max(sizes)
    if fill is not None:
        fills = (fill,) * n if isinstance(fill, int) else tuple(fill)
        if len(fills) != n or not all(
            isinstance(f, int) and 0 <= f < s for f, s in zip(fills, sizes, strict=True)
        ):
            raise ValueError(
                f"{where}: `fill` must be a choice valid at every decision "
                f"(sizes {sizes}), or one per decision; got {fill!r}"
            )
    size_arr = jnp.asarray(sizes, jnp.int32)
    empty_ok = jnp.arange(beam) == 0

    def init(key: jax.Array) -> PNASState:
        undecided = jnp.full((beam, n), -1, jnp.int32)
        return PNASState(
            undecided,
            empty_ok,
            jnp.zeros((), jnp.int32),
            undecided,
            jnp.zeros((beam,), bool),
            jnp.full((max_points, n), -1, jnp.int32),
            jnp.full((max_points,), jnp.nan, jnp.float32),
            jnp.zeros((), jnp.int32),
            space.sample(key),
            jnp.full((), -jnp.inf, jnp.float32),
        )

    def uniform(key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
        u = jax.random.uniform(key, (*shape, n))
        return jnp.floor(u * jnp.broadcast_to(size_arr, u.shape)).astype(jnp.int32)

    def ask(key: jax.Array, state: PNASState) -> tuple[Any, PNASState]:
        k_fit, k_tie, k_fill, k_rand = jax.random.split(key, 4)
        b = state.level
        values = jnp.arange(k, dtype=jnp.int32)
        expanded = jnp.where(
            (jnp.arange(n) == b)[None, None, :], values[None, :, None], state.beam[:, None, :]
        ).reshape(beam * k, n)
        ok = (state.beam_ok[:, None] & (values[None, :] < size_arr[b])).reshape(-1)
        mask = (jnp.arange(max_points) < state.count) & jnp.isfinite(state.y)
        model = ensemble_fit(
            k_fit,
            prefix_encoding(state.x, sizes),
            jnp.where(mask, state.y, 0.0),
            mask,
            members=members,
            steps=train_steps,
        )
        predicted = ensemble_predict(model, prefix_encoding(expanded, sizes)).mean(0)
        tie = jax.random.uniform(k_tie, predicted.shape)
        scores = jnp.where(jnp.any(mask), predicted, 0.0) + 1e-6 * tie
        chosen = jax.lax.top_k(jnp.where(ok, scores, -jnp.inf), beam)[1]
        prefixes, chosen_ok = expanded[chosen], ok[chosen]
        filler = (
            uniform(k_fill, (beam,))
            if fill is None
            else jnp.broadcast_to(jnp.asarray(fills, jnp.int32), (beam, n))
        )
        full = jnp.where(prefixes >= 0, prefixes, filler)
        full = jnp.where(chosen_ok[:, None], full, uniform(k_rand, (beam,)))
        prefixes = jnp.where(chosen_ok[:, None], prefixes, full)
        archs = jax.vmap(space.from_decisions)(full)
        return archs, state._replace(pending=prefixes, pending_ok=chosen_ok)

    def tell(state: PNASState, archs: Any, fitness: jax.Array) -> PNASState:
        fitness = jnp.asarray(fitness, jnp.float32)
        slots = (state.count + jnp.arange(beam)) % max_points
        level = state.level + 1
        restart = level >= n
        beam_ok = jnp.where(restart, empty_ok, state.pending_ok)
        beam_prefixes = jnp.where(restart, jnp.full_like(state.pending, -1), state.pending)
        best, best_fitness = update_incumbent(
            state.best, state.best_fitness, archs, clean_fitness(fitness)
        )
        return PNASState(
            beam_prefixes,
            beam_ok,
            jnp.where(restart, 0, level),
            state.pending,
            state.pending_ok,
            state.x.at[slots].set(state.pending),
            state.y.at[slots].set(fitness),
            state.count + beam,
            best,
            best_fitness,
        )

    return Searcher(init, ask, tell, beam)
