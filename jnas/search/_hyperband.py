"""Multi-fidelity search: Hyperband (Li et al., JMLR 2018) and BOHB (Falkner, Klein &
Hutter, ICML 2018), over the fidelities of a table (e.g. NB201's 12 and 200 epochs).

Hyperband loops over brackets s = s_max .. 0 (s_max = fidelities - 1). Bracket s starts
`ceil((s_max + 1) / (s + 1) * eta^s)` new architectures at fidelity `s_max - s` and runs
successive halving: after each rung the best `1 / eta` move up one fidelity. The schedule
is unrolled once, in Python, into a cycle of single evaluations, so `ask` and `tell` are
table lookups and the state has fixed shapes. BOHB replaces the uniform draws that start a
bracket by the TPE model of BOHB: kernel densities of the good (top `top_fraction`) and the
bad observations at the highest fidelity with enough of them, candidates drawn around good
points with a widened bandwidth, the best ratio l(x) / g(x) chosen; a `random_fraction` of
the draws stay uniform. Each `ask` returns one architecture; `fidelity(state)` says where
to evaluate it, and only evaluations at the highest fidelity can become the incumbent.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jnas._checks import check_positive
from jnas.search._base import (
    Searcher,
    clean_fitness,
    update_incumbent,
)
from jnas.spaces import Decisions, DecisionSpace, Space, require


class HyperbandState(NamedTuple):
    step: jax.Array  # int32[]: evaluations told (the position in the schedule's cycle)
    pool: Any  # the current rung's architectures, leading axis max_rung
    pool_fitness: jax.Array  # float32[max_rung]: their fitness at this rung (-inf: none yet)
    decisions: jax.Array  # int32[memory, D]: observed architectures (BOHB's model data)
    fitness: jax.Array  # float32[memory]
    fidelity_of: jax.Array  # int32[memory]: the fidelity each was evaluated at
    stored: jax.Array  # int32[]: observations ever stored
    best: Any
    best_fitness: jax.Array  # float32[]: best at the highest fidelity


def hyperband_schedule(fidelities: int, eta: int) -> dict[str, np.ndarray]:
    """One Hyperband cycle as per-evaluation tables: `fresh` (a new architecture starts),
    `slot` (its place in the rung), `fidelity`, `rung_size`, `promote` (the rung ends
    here and its best `next_size` move up)."""
    s_max = fidelities - 1
    rows = []
    for s in range(s_max, -1, -1):
        n = math.ceil((s_max + 1) / (s + 1) * eta**s)
        sizes = [max(1, math.floor(n * eta**-i)) for i in range(s + 1)]
        for i, size in enumerate(sizes):
            for j in range(size):
                rows.append(
                    (
                        i == 0,
                        j,
                        s_max - s + i,
                        size,
                        j == size - 1 and i < s,
                        sizes[i + 1] if i < s else 0,
                    )
                )
    cols = list(zip(*rows, strict=True))
    names = ("fresh", "slot", "fidelity", "rung_size", "promote", "next_size")
    return {
        k: np.asarray(v, bool if k in ("fresh", "promote") else np.int32)
        for k, v in zip(names, cols, strict=True)
    }


Proposer = Callable[[jax.Array, Any], jax.Array]  # -> int32[D] decisions


def _multi_fidelity(
    space: DecisionSpace, fidelities: int, eta: int, memory: int, propose: Proposer
) -> Searcher:
    table = {k: jnp.asarray(v) for k, v in hyperband_schedule(fidelities, eta).items()}
    cycle = int(table["slot"].shape[0])
    max_rung = int(np.max(np.asarray(table["rung_size"])))
    top = fidelities - 1
    num_decisions = len(space.decision_sizes)

    def init(key: jax.Array) -> HyperbandState:
        pool = jax.vmap(space.sample)(jax.random.split(key, max_rung))
        return HyperbandState(
            jnp.zeros((), jnp.int32),
            pool,
            jnp.full((max_rung,), -jnp.inf, jnp.float32),
            jnp.zeros((memory, num_decisions), jnp.int32),
            jnp.zeros((memory,), jnp.float32),
            jnp.zeros((memory,), jnp.int32),
            jnp.zeros((), jnp.int32),
            space.sample(key),
            jnp.full((), -jnp.inf, jnp.float32),
        )

    def at(state: HyperbandState, name: str) -> jax.Array:
        return table[name][state.step % cycle]

    def ask(key: jax.Array, state: HyperbandState) -> tuple[Any, HyperbandState]:
        new = space.from_decisions(propose(key, state))
        old = jax.tree.map(lambda a: a[at(state, "slot")], state.pool)
        arch = jax.tree.map(lambda n, o: jnp.where(at(state, "fresh"), n, o), new, old)
        return jax.tree.map(lambda a: a[None], arch), state

    def fidelity(state: HyperbandState) -> jax.Array:
        return at(state, "fidelity")[None]

    def tell(state: HyperbandState, archs: Any, fitness: jax.Array) -> HyperbandState:
        fitness = jnp.asarray(fitness, jnp.float32)
        arch = jax.tree.map(lambda a: a[0], archs)
        f, slot, fid = clean_fitness(fitness)[0], at(state, "slot"), at(state, "fidelity")
        pool = jax.tree.map(lambda p, a: p.at[slot].set(a), state.pool, arch)
        pool_fitness = state.pool_fitness.at[slot].set(f)
        # the rung is complete: its best move to the front, the next rung re-evaluates them
        ranked = jnp.argsort(
            -jnp.where(jnp.arange(max_rung) < at(state, "rung_size"), pool_fitness, -jnp.inf)
        )
        promote = at(state, "promote")
        pool = jax.tree.map(lambda p: jnp.where(promote, p[ranked], p), pool)
        pool_fitness = jnp.where(promote, -jnp.inf, pool_fitness)
        ok = ~jnp.isnan(fitness[0])
        i = state.stored % memory
        decisions = jnp.where(
            ok,
            state.decisions.at[i].set(space.to_decisions(arch).astype(jnp.int32)),
            state.decisions,
        )
        told = jnp.where(ok, state.fitness.at[i].set(fitness[0]), state.fitness)
        fid_of = jnp.where(ok, state.fidelity_of.at[i].set(fid), state.fidelity_of)
        at_top = jnp.where(fid == top, clean_fitness(fitness), -jnp.inf)
        best, best_fitness = update_incumbent(state.best, state.best_fitness, archs, at_top)
        return HyperbandState(
            state.step + 1,
            pool,
            pool_fitness,
            decisions,
            told,
            fid_of,
            state.stored + ok.astype(jnp.int32),
            best,
            best_fitness,
        )

    return Searcher(init, ask, tell, 1, fidelity, fidelities)


def _check(where: str, space: Any, fidelities: int, eta: int, memory: int) -> None:
    check_positive(where, fidelities=fidelities, memory=memory)
    if fidelities < 2:
        raise ValueError(
            f"{where}: `fidelities` must be >= 2 (e.g. 2 for NB201's 12 and "
            f"200 epochs); got {fidelities!r}"
        )
    if not isinstance(eta, int) or eta < 2:
        raise ValueError(f"{where}: `eta` must be an integer >= 2; got {eta!r}")
    require(where, space, Space, Decisions)


def _uniform(space: DecisionSpace) -> Proposer:
    """The space's own random architecture as decisions: uniform decisions where every
    combination is a cell (NB201), a uniform table row for a `TableSubset` (whose
    `from_decisions` snaps uniform decisions to the nearest row, which is not uniform)."""

    def propose(key: jax.Array, state: HyperbandState) -> jax.Array:
        return space.to_decisions(space.sample(key)).astype(jnp.int32)

    return propose


def check_tpe(
    where: str,
    space: DecisionSpace,
    top_fraction: float,
    random_fraction: float,
    num_samples: int,
    bandwidth: float,
    bandwidth_factor: float,
    min_points: int | None,
) -> int:
    """Check TPE's settings (BOHB's and the single-fidelity searcher's); return
    `min_points` (default: decisions + 1)."""
    check_positive(where, num_samples=num_samples)
    for name, value in (("top_fraction", top_fraction), ("bandwidth", bandwidth)):
        if not 0 < value < 1:
            raise ValueError(f"{where}: `{name}` must be in (0, 1); got {value!r}")
    if not 0 <= random_fraction <= 1:
        raise ValueError(f"{where}: `random_fraction` must be in [0, 1]; got {random_fraction!r}")
    if not bandwidth_factor >= 1:
        raise ValueError(f"{where}: `bandwidth_factor` must be >= 1; got {bandwidth_factor!r}")
    min_points = len(space.decision_sizes) + 1 if min_points is None else min_points
    check_positive(where, min_points=min_points)
    return min_points


def tpe_proposer(
    space: DecisionSpace,
    top_fraction: float,
    random_fraction: float,
    num_samples: int,
    bandwidth: float,
    bandwidth_factor: float,
    min_points: int,
) -> Callable[[jax.Array, jax.Array, jax.Array, jax.Array, jax.Array], jax.Array]:
    """TPE's proposal (Bergstra et al. 2011, as BOHB uses it): `propose(key, decisions,
    fitness, mine, use_model) -> decisions`. Of the observations `mine`, the best
    `top_fraction` (at least `min_points`) are "good", the rest (at least `min_points`)
    "bad"; `num_samples` candidates drawn around good points (each decision redrawn with
    probability `bandwidth * bandwidth_factor`) are ranked by l(x) / g(x), categorical
    Aitchison-Aitken kernel densities of the good and bad points; a uniform architecture
    instead with probability `random_fraction` or while `use_model` is False."""
    sizes = jnp.asarray(space.decision_sizes)
    uniform = _uniform(space)
    other = jnp.maximum(sizes - 1, 1).astype(jnp.float32)

    def density(x: jax.Array, points: jax.Array, weight: jax.Array, bw: float) -> jax.Array:
        k = jnp.where(
            points == x[None, :], 1.0 - bw, jnp.where(sizes > 1, bw / other, 0.0)[None, :]
        )
        return jnp.sum(jnp.prod(k, axis=1) * weight) / jnp.maximum(jnp.sum(weight), 1.0)

    def propose(
        key: jax.Array,
        decisions: jax.Array,
        fitness: jax.Array,
        mine: jax.Array,
        use_model: jax.Array,
    ) -> jax.Array:
        memory = decisions.shape[0]
        k_uniform, k_coin, k_base, k_keep, k_shift = jax.random.split(key, 5)
        n = jnp.sum(mine)
        rank = jnp.argsort(jnp.argsort(jnp.where(mine, -fitness, jnp.inf)))
        n_good = jnp.maximum(min_points, jnp.floor(top_fraction * n).astype(jnp.int32))
        n_bad = jnp.maximum(min_points, n - n_good)
        good = mine & (rank < n_good)
        bad = mine & (rank >= n - n_bad)
        # candidates around good points, the bandwidth widened by `bandwidth_factor`
        wide = min(bandwidth * bandwidth_factor, 1.0)
        bases = decisions[
            jax.random.choice(
                k_base, memory, (num_samples,), p=good / jnp.maximum(jnp.sum(good), 1)
            )
        ]
        keep = jax.random.uniform(k_keep, bases.shape) >= wide
        shift = jax.random.randint(k_shift, bases.shape, 1, jnp.maximum(sizes, 2)[None, :])
        candidates = jnp.where(
            keep | (sizes == 1)[None, :], bases, (bases + shift) % sizes[None, :]
        )
        score = jax.vmap(
            lambda x: (
                jnp.log(density(x, decisions, good, bandwidth) + 1e-32)
                - jnp.log(density(x, decisions, bad, bandwidth) + 1e-32)
            )
        )(candidates)
        modelled = candidates[jnp.argmax(score)]
        model = use_model & (jax.random.uniform(k_coin) >= random_fraction)
        return jnp.where(model, modelled, uniform(k_uniform, None))

    return propose


def hyperband(space: DecisionSpace, fidelities: int = 2, eta: int = 3) -> Searcher:
    """Hyperband with uniform random architectures starting each bracket; evaluate with a
    multi-fidelity objective, e.g. `bench.objective(table, ..., epochs=(12, 200))`."""
    _check("hyperband", space, fidelities, eta, 1)
    return _multi_fidelity(space, fidelities, eta, 1, _uniform(space))


def bohb(
    space: DecisionSpace,
    fidelities: int = 2,
    eta: int = 3,
    *,
    top_fraction: float = 0.15,
    random_fraction: float = 1 / 3,
    num_samples: int = 64,
    bandwidth: float = 0.2,
    bandwidth_factor: float = 3.0,
    min_points: int | None = None,
    memory: int = 512,
) -> Searcher:
    """BOHB: Hyperband whose new architectures come from a TPE model (categorical
    Aitchison-Aitken kernels with `bandwidth`, product over decisions) fitted to the
    highest fidelity with at least `min_points` (default: decisions + 1) observations among
    the last `memory`."""
    where = "bohb"
    _check(where, space, fidelities, eta, memory)
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
    tpe = tpe_proposer(
        space, top_fraction, random_fraction, num_samples, bandwidth, bandwidth_factor, min_points
    )

    def propose(key: jax.Array, state: HyperbandState) -> jax.Array:
        valid = jnp.arange(memory) < jnp.minimum(state.stored, memory)
        counts = jnp.asarray([jnp.sum(valid & (state.fidelity_of == f)) for f in range(fidelities)])
        usable = counts >= min_points
        level = jnp.max(jnp.where(usable, jnp.arange(fidelities), -1))
        mine = valid & (state.fidelity_of == level)
        return tpe(key, state.decisions, state.fitness, mine, level >= 0)

    return _multi_fidelity(space, fidelities, eta, memory, propose)
