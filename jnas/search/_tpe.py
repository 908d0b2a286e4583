"""TPE as a single-fidelity searcher (Bergstra, Bardenet, Bengio & Kegl, NeurIPS 2011), with
the categorical kernels BOHB uses (`tpe_proposer`): the model BOHB fits per fidelity, fitted
to every evaluation."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jnas._checks import check_positive
from jnas.search._base import Searcher, clean_fitness, update_incumbent
from jnas.search._hyperband import check_tpe, tpe_proposer
from jnas.spaces import Decisions, DecisionSpace, Space, require


class TPEState(NamedTuple):
    decisions: jax.Array  # int32[memory, D]: observed architectures
    fitness: jax.Array  # float32[memory]
    stored: jax.Array  # int32[]: observations ever stored (NaN ones are not)
    best: Any
    best_fitness: jax.Array


def tpe(
    space: DecisionSpace,
    *,
    top_fraction: float = 0.15,
    random_fraction: float = 1 / 3,
    num_samples: int = 64,
    bandwidth: float = 0.2,
    bandwidth_factor: float = 3.0,
    min_points: int | None = None,
    memory: int = 512,
) -> Searcher:
    """TPE over the space's decisions: uniform architectures until `min_points` (default:
    decisions + 1) evaluations, then the best of `num_samples` candidates by l(x) / g(x)
    (a uniform one with probability `random_fraction`), over the last `memory`."""
    where = "tpe"
    require(where, space, Space, Decisions)
    check_positive(where, memory=memory)
    min_points = check_tpe(
        where,
        space,
        top_fraction,
        random_fraction,
        num_samples,
        bandwidth,
        bandwidth_factor,
        min_points,
    )
    propose = tpe_proposer(
        space, top_fraction, random_fraction, num_samples, bandwidth, bandwidth_factor, min_points
    )
    num_decisions = len(space.decision_sizes)

    def init(key: jax.Array) -> TPEState:
        return TPEState(
            jnp.zeros((memory, num_decisions), jnp.int32),
            jnp.zeros((memory,), jnp.float32),
            jnp.zeros((), jnp.int32),
            space.sample(key),
            jnp.full((), -jnp.inf, jnp.float32),
        )

    def ask(key: jax.Array, state: TPEState) -> tuple[Any, TPEState]:
        valid = jnp.arange(memory) < jnp.minimum(state.stored, memory)
        d = propose(key, state.decisions, state.fitness, valid, state.stored >= min_points)
        return jax.tree.map(lambda a: a[None], space.from_decisions(d)), state

    def tell(state: TPEState, archs: Any, fitness: jax.Array) -> TPEState:
        fitness = jnp.asarray(fitness, jnp.float32)
        arch = jax.tree.map(lambda a: a[0], archs)
        ok = ~jnp.isnan(fitness[0])
        i = state.stored % memory
        decisions = jnp.where(
            ok,
            state.decisions.at[i].set(space.to_decisions(arch).astype(jnp.int32)),
            state.decisions,
        )
        told = jnp.where(ok, state.fitness.at[i].set(fitness[0]), state.fitness)
        best, best_fitness = update_incumbent(
            state.best, state.best_fitness, archs, clean_fitness(fitness)
        )
        return TPEState(decisions, told, state.stored + ok.astype(jnp.int32), best, best_fitness)

    return Searcher(init, ask, tell, 1)
