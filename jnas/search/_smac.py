"""SMAC (Hutter, Hoos & Leyton-Brown, LION 2011): a random-forest surrogate, expected
improvement, and local search over the acquisition, as one pure searcher.

Every `ask` after `num_init` random architectures fits `jnas.predictors.forest_fit` to the
one-hot encodings and fitness seen so far (inside the compiled protocol: fixed-depth
trees are plain arrays), scores expected improvement over the incumbent with the trees'
mean and spread, and proposes the best of `num_random` random architectures and of a
local search (`local_steps` best-improvement moves through `space.neighbors`) from each
of the `local_starts` best evaluated ones. With probability `random_fraction` the
proposal is a random architecture instead (SMAC's interleaved random configurations).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.scipy.stats import norm

from jnas._checks import check_positive
from jnas.predictors import forest_fit, forest_predict
from jnas.search._base import Searcher, clean_fitness, update_incumbent
from jnas.spaces import Encodable, Space, require


class SMACState(NamedTuple):
    archs: Any  # evaluated architectures, leading axis `memory`
    encodings: jax.Array  # float32[memory, E]: their one-hot encodings
    fitness: jax.Array  # float32[memory]
    stored: jax.Array  # int32[]: evaluations stored (NaN ones are not)
    best: Any
    best_fitness: jax.Array


def smac(
    space: Any,
    *,
    trees: int = 10,
    depth: int = 8,
    max_features: float = 5 / 6,
    num_init: int = 10,
    num_random: int = 100,
    local_starts: int = 10,
    local_steps: int = 5,
    random_fraction: float = 0.2,
    memory: int = 256,
) -> Searcher:
    """SMAC over `space.one_hot` (see the module docstring); SMAC's defaults where it
    has them (10 trees, 5/6 of the features per split, 10 local-search starts)."""
    where = "smac"
    require(where, space, Space, Encodable)
    check_positive(
        where,
        trees=trees,
        depth=depth,
        num_init=num_init,
        num_random=num_random,
        local_starts=local_starts,
        memory=memory,
    )
    if not 0 <= random_fraction <= 1:
        raise ValueError(f"{where}: `random_fraction` must be in [0, 1]; got {random_fraction!r}")
    if not 0 < max_features <= 1:
        raise ValueError(f"{where}: `max_features` must be in (0, 1]; got {max_features!r}")
    if local_steps < 0:
        raise ValueError(f"{where}: `local_steps` must be >= 0; got {local_steps!r}")
    starts = min(local_starts, memory)

    def encode(arch: Any) -> jax.Array:
        return space.one_hot(arch).reshape(-1)

    def init(key: jax.Array) -> SMACState:
        arch = space.sample(key)
        enc = space.one_hot(arch).reshape(-1)
        return SMACState(
            jax.tree.map(lambda a: jnp.zeros((memory, *a.shape), a.dtype), arch),
            jnp.zeros((memory, enc.shape[0]), jnp.float32),
            jnp.zeros((memory,), jnp.float32),
            jnp.zeros((), jnp.int32),
            arch,
            jnp.full((), -jnp.inf, jnp.float32),
        )

    def ask(key: jax.Array, state: SMACState) -> tuple[Any, SMACState]:
        k_fit, k_rand, k_coin, k_uniform = jax.random.split(key, 4)
        valid = jnp.arange(memory) < jnp.minimum(state.stored, memory)
        forest = forest_fit(
            k_fit,
            state.encodings,
            state.fitness,
            valid,
            trees=trees,
            depth=depth,
            max_features=max_features,
        )
        incumbent = jnp.max(jnp.where(valid, state.fitness, -jnp.inf))

        def ei(archs: Any) -> jax.Array:
            mean, var = forest_predict(forest, jax.vmap(encode)(archs))
            sigma = jnp.sqrt(var) + 1e-9
            z = (mean - incumbent) / sigma
            return (mean - incumbent) * norm.cdf(z) + sigma * norm.pdf(z)

        randoms = jax.vmap(space.sample)(jax.random.split(k_rand, num_random))
        top = jnp.argsort(jnp.where(valid, -state.fitness, jnp.inf))[:starts]
        current = jax.tree.map(lambda a: a[top], state.archs)
        current_ei = ei(current)

        def move(_: Any, carry: tuple[Any, jax.Array]) -> tuple[Any, jax.Array]:
            current, current_ei = carry  # best-improvement step of every local search
            neighbours, ok = jax.vmap(space.neighbors)(current)  # [starts, M, ...], [starts, M]
            m = ok.shape[1]
            flat = jax.tree.map(lambda a: a.reshape(starts * m, *a.shape[2:]), neighbours)
            scores = jnp.where(ok, ei(flat).reshape(starts, m), -jnp.inf)
            j = jnp.argmax(scores, axis=1)
            better = scores[jnp.arange(starts), j] > current_ei
            moved = jax.tree.map(lambda a: a[jnp.arange(starts), j], neighbours)
            current = jax.tree.map(
                lambda n, c: jnp.where(better.reshape(-1, *([1] * (n.ndim - 1))), n, c),
                moved,
                current,
            )
            return current, jnp.maximum(current_ei, scores[jnp.arange(starts), j])

        # a loop, not unrolled: one copy of the forest's prediction in the program
        current, current_ei = jax.lax.fori_loop(0, local_steps, move, (current, current_ei))
        started = jnp.arange(starts) < jnp.sum(valid)  # local searches from real points only
        pool = jax.tree.map(lambda a, b: jnp.concatenate([a, b]), randoms, current)
        scores = jnp.concatenate([ei(randoms), jnp.where(started, current_ei, -jnp.inf)])
        chosen = jax.tree.map(lambda a: a[jnp.argmax(scores)], pool)
        use_model = (state.stored >= num_init) & (jax.random.uniform(k_coin) >= random_fraction)
        arch = jax.tree.map(
            lambda a, b: jnp.where(use_model, a, b), chosen, space.sample(k_uniform)
        )
        return jax.tree.map(lambda a: a[None], arch), state

    def tell(state: SMACState, archs: Any, fitness: jax.Array) -> SMACState:
        fitness = jnp.asarray(fitness, jnp.float32)
        arch = jax.tree.map(lambda a: a[0], archs)
        ok = ~jnp.isnan(fitness[0])
        i = state.stored % memory

        def put(store: jax.Array, value: jax.Array) -> jax.Array:
            return jnp.where(ok, store.at[i].set(value), store)

        best, best_fitness = update_incumbent(
            state.best, state.best_fitness, archs, clean_fitness(fitness)
        )
        return SMACState(
            jax.tree.map(put, state.archs, arch),
            put(state.encodings, encode(arch)),
            put(state.fitness, fitness[0]),
            state.stored + ok.astype(jnp.int32),
            best,
            best_fitness,
        )

    return Searcher(init, ask, tell, 1)
