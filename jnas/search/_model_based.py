"""What model-based searchers share: a fixed-size history of evaluated architectures with
their encodings, and candidates made by mutating the best of them (the SMBO loop of BO
and BANANAS). A searcher supplies `score(key, x, y, mask, candidates) -> float[C]`, or an
`Incremental` surrogate whose state is brought up to date point by point as results are
told (BO's inverse Cholesky factors: O(P^2) a point where a refit every ask is O(P^3))."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jnas._checks import check_positive
from jnas.predictors import wl_features
from jnas.search._base import (
    Searcher,
    clean_fitness,
    update_incumbent,
)
from jnas.spaces import Encodable, HasAdjacency, HasPath, Space, offers, require

Score = Callable[[jax.Array, jax.Array, jax.Array, jax.Array, jax.Array], jax.Array]


class ModelBasedState(NamedTuple):
    archs: Any  # the history's architectures, leading axis max_points (a ring buffer)
    x: jax.Array  # float32[max_points, D]: their encodings
    y: jax.Array  # float32[max_points]: their fitness (NaN where failed)
    count: jax.Array  # int32[]: evaluations told
    best: Any
    best_fitness: jax.Array  # float32[]
    model: Any = None  # the `Incremental` surrogate's state (None without one)


class Incremental(NamedTuple):
    """A surrogate updated as points are told rather than refitted at every ask. Its
    functions see the history in the order it was told (`chronological`): the oldest
    point held first, the newest last, masked rows (not yet told, or failed) anywhere.

    - `init(max_points) -> m`;
    - `add(m, x_view, mask_view, position, drop_first) -> m`: one new point at `position`
      of the view, after the oldest left the full buffer when `drop_first`;
    - `score(key, m, x_view, y_view, mask_view, candidates) -> float[C]`.
    """

    init: Callable[[int], Any]
    add: Callable[[Any, jax.Array, jax.Array, jax.Array, jax.Array], Any]
    score: Callable[[jax.Array, Any, jax.Array, jax.Array, jax.Array, jax.Array], jax.Array]


def chronological(count: jax.Array, max_points: int) -> jax.Array:
    """int32[P]: the ring-buffer slots in the order their points were told (`count`
    evaluations told; before the buffer fills, slot i is the i-th point)."""
    start = jnp.maximum(count - max_points, 0) % max_points
    return (start + jnp.arange(max_points)) % max_points


ENCODINGS = ("auto", "path", "one_hot", "wl")


def encoder(space: Any, encoding: str, where: str) -> Callable[[Any], jax.Array]:
    """`encode(arch) -> float32[D]`: the BANANAS path encoding, the one-hot cell, or the
    cell's Weisfeiler-Lehman labels (`"wl"`, from `space.adjacency`); `"auto"` takes the
    path encoding where the space has one."""
    if encoding not in ENCODINGS:
        raise ValueError(f"{where}: `encoding` must be one of {ENCODINGS}; got {encoding!r}")
    space_: Any = space  # checked below, capability by capability
    if encoding == "auto":
        encoding = "path" if offers(space, HasPath) else "one_hot"
    if encoding == "wl":
        require(where, space, HasAdjacency)
        return lambda arch: wl_features(*space_.adjacency(arch))
    if encoding == "path":
        require(where, space, HasPath)
        return lambda arch: space_.path(arch).astype(jnp.float32).ravel()
    require(where, space, Encodable)
    return lambda arch: space_.one_hot(arch).astype(jnp.float32).ravel()


def _with_features(
    encode: Callable[[Any], jax.Array], features: Callable[[Any], jax.Array] | None
) -> Callable[[Any], jax.Array]:
    """The encoding with `features(arch)` appended (non-finite values as 0)."""
    if features is None:
        return encode

    def both(arch: Any) -> jax.Array:
        more = jnp.atleast_1d(jnp.asarray(features(arch), jnp.float32))
        return jnp.concatenate([encode(arch), jnp.where(jnp.isfinite(more), more, 0.0)])

    return both


def num_cell_nodes(space: Any) -> int:
    """V, the node count of `space.adjacency`'s cells."""
    shape = jax.eval_shape(lambda k: space.adjacency(space.sample(k)), jax.random.key(0))
    return int(shape.matrix.shape[0])


def model_based(
    space: Any,
    score: Score | Incremental,
    *,
    encoding: str,
    batch_size: int,
    num_init: int,
    num_candidates: int,
    num_parents: int,
    max_points: int,
    where: str,
    features: Callable[[Any], jax.Array] | None = None,
) -> Searcher:
    """An SMBO searcher: random cells until `num_init` are told, then each `ask` scores
    `num_candidates` candidates (mutations of the `num_parents` best cells, a quarter fresh
    samples) and returns the `batch_size` best-scoring ones. `features(arch) -> float32[F]`
    appends extra inputs to the encoding (e.g. standardised zero-cost proxy scores, White et
    al.'s "proxies as predictor features"). `score` may be an `Incremental` surrogate."""
    check_positive(
        where,
        batch_size=batch_size,
        num_init=num_init,
        num_candidates=num_candidates,
        num_parents=num_parents,
        max_points=max_points,
    )
    if batch_size > num_candidates:
        raise ValueError(
            f"{where}: `batch_size` {batch_size} exceeds `num_candidates` {num_candidates}"
        )
    if batch_size > max_points:
        raise ValueError(
            f"{where}: `batch_size` {batch_size} exceeds `max_points` {max_points} (the history)"
        )
    require(where, space, Space)
    encode = _with_features(encoder(space, encoding, where), features)
    num_random = max(num_candidates // 4, 1)
    num_mutants = num_candidates - num_random

    def init(key: jax.Array) -> ModelBasedState:
        archs = jax.vmap(space.sample)(jax.random.split(key, max_points))
        x = jax.vmap(encode)(archs)
        return ModelBasedState(
            archs,
            x,
            jnp.full((max_points,), jnp.nan, jnp.float32),
            jnp.zeros((), jnp.int32),
            space.sample(key),
            jnp.full((), -jnp.inf, jnp.float32),
            score.init(max_points) if isinstance(score, Incremental) else None,
        )

    def ask(key: jax.Array, state: ModelBasedState) -> tuple[Any, ModelBasedState]:
        k_rand, k_par, k_mut, k_fresh, k_score = jax.random.split(key, 5)
        random_batch = jax.vmap(space.sample)(jax.random.split(k_rand, batch_size))
        mask = (jnp.arange(max_points) < state.count) & jnp.isfinite(state.y)
        ranked = jnp.argsort(jnp.where(mask, -state.y, jnp.inf))[:num_parents]
        parents = jax.random.choice(k_par, ranked, (num_mutants,))
        parent_archs = jax.tree.map(lambda a: a[parents], state.archs)
        mutants = jax.vmap(space.mutate)(jax.random.split(k_mut, num_mutants), parent_archs)
        fresh = jax.vmap(space.sample)(jax.random.split(k_fresh, num_random))
        candidates = jax.tree.map(lambda a, b: jnp.concatenate([a, b]), mutants, fresh)
        encoded = jax.vmap(encode)(candidates)
        if isinstance(score, Incremental):
            order = chronological(state.count, max_points)
            scores = score.score(
                k_score, state.model, state.x[order], state.y[order], mask[order], encoded
            )
        else:
            scores = score(k_score, state.x, state.y, mask, encoded)
        chosen = jax.lax.top_k(scores, batch_size)[1]
        model_batch = jax.tree.map(lambda a: a[chosen], candidates)
        use_model = state.count >= num_init
        archs = jax.tree.map(lambda m, r: jnp.where(use_model, m, r), model_batch, random_batch)
        return archs, state

    def tell(state: ModelBasedState, archs: Any, fitness: jax.Array) -> ModelBasedState:
        fitness = jnp.asarray(fitness, jnp.float32)
        slots = (state.count + jnp.arange(batch_size)) % max_points
        put = lambda buf, new: buf.at[slots].set(new)
        best, best_fitness = update_incumbent(
            state.best, state.best_fitness, archs, clean_fitness(fitness)
        )
        new_x = jax.vmap(encode)(archs)
        x, y, model = state.x, state.y, state.model
        for q in range(batch_size):  # one point at a time, in the order told
            told = state.count + q  # points told before this one
            x, y = x.at[slots[q]].set(new_x[q]), y.at[slots[q]].set(fitness[q])
            if isinstance(score, Incremental):
                held = (jnp.arange(max_points) <= told) & jnp.isfinite(y)
                order = chronological(told + 1, max_points)
                model = score.add(
                    model,
                    x[order],
                    held[order],
                    jnp.minimum(told, max_points - 1),
                    told >= max_points,
                )
        return ModelBasedState(
            jax.tree.map(put, state.archs, archs),
            x,
            y,
            state.count + batch_size,
            best,
            best_fitness,
            model,
        )

    return Searcher(init, ask, tell, batch_size)
