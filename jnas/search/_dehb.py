"""DEHB: differential evolution inside Hyperband (Awad, Mallik & Hutter, IJCAI 2021).

Hyperband's brackets, but every fidelity keeps a subpopulation of DE vectors in
[0, 1]^D (one coordinate per decision, decoded as `floor(u * size)`), sized the most
architectures any bracket runs there. Each evaluation at fidelity f takes the next
*target* of f's subpopulation in turn and evaluates a *trial*: a rand/1 mutant
`r1 + F (r2 - r3)` of three distinct parents, binomial crossover with the target
(probability `crossover_prob`, at least one coordinate from the mutant), coordinates
outside [0, 1] redrawn uniformly. The parents come from the *parent pool*: the best
`n` vectors of the fidelity below (n: how many this rung runs) — so good low-fidelity
architectures steer the higher ones — or, in a bracket's first rung, the best `n` of f's
own subpopulation; a pool of fewer than 3 is filled with rand/1 mutants of the union of
all subpopulations. The trial replaces the target when it is at least as fit (DE's
selection, per fidelity). Only the first Hyperband iteration differs: its later rungs
promote, as successive halving does, the best vectors of the fidelity below that the
higher subpopulation does not already hold (the best of the fidelity below again when
none is left). Bracket sizes follow the authors' code (`n0 = floor((s_max + 1) / (s + 1))
* eta^s`). As everywhere in jnas, only evaluations at the highest fidelity become the
incumbent (the authors' code also takes lower ones).

The schedule is unrolled once, in Python, into a cycle of single evaluations (as
`hyperband`); `ask` stores the trial's vector and target in the state for `tell`.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jnas.search._base import Searcher, clean_fitness, update_incumbent
from jnas.search._hyperband import _check
from jnas.spaces import DecisionSpace


class DEHBState(NamedTuple):
    step: jax.Array  # int32[]: evaluations told
    vectors: jax.Array  # float32[fidelities, pop, D]: the subpopulations
    vector_fitness: jax.Array  # float32[fidelities, pop]: -inf until evaluated
    counter: jax.Array  # int32[fidelities]: the next target of each subpopulation
    promotions: jax.Array  # float32[pop, D]: the first iteration's rung to promote
    promotable: jax.Array  # int32[]: how many of `promotions` are distinct candidates
    trial: jax.Array  # float32[D]: the vector `ask` returned
    target: jax.Array  # int32[]: the slot its fitness competes for
    best: Any
    best_fitness: jax.Array  # float32[]: best at the highest fidelity


def dehb_schedule(fidelities: int, eta: int) -> dict[str, np.ndarray]:
    """One Hyperband iteration of DEHB's brackets as per-evaluation tables: `fidelity`,
    `slot` (place in the rung), `rung` (0: the bracket's first), `rung_size`."""
    s_max = fidelities - 1
    rows = []
    for s in range(s_max, -1, -1):
        n0 = ((s_max + 1) // (s + 1)) * eta**s
        for i in range(s + 1):
            size = max(int(n0 * eta**-i), 1)
            rows += [(s_max - s + i, j, i, size) for j in range(size)]
    cols = list(zip(*rows, strict=True))
    names = ("fidelity", "slot", "rung", "rung_size")
    return {k: np.asarray(v, np.int32) for k, v in zip(names, cols, strict=True)}


def dehb(
    space: DecisionSpace,
    fidelities: int = 2,
    eta: int = 3,
    *,
    mutation_factor: float = 0.5,
    crossover_prob: float = 0.5,
) -> Searcher:
    """DEHB over the space's decisions (see the module docstring); evaluate with a
    multi-fidelity objective, e.g. `bench.objective(table, ..., epochs=(12, 200))`.
    Defaults are the authors' (F = 0.5, CR = 0.5, rand/1/bin, eta = 3)."""
    where = "dehb"
    _check(where, space, fidelities, eta, 1)
    if not 0 < mutation_factor <= 2:
        raise ValueError(f"{where}: `mutation_factor` must be in (0, 2]; got {mutation_factor!r}")
    if not 0 <= crossover_prob <= 1:
        raise ValueError(f"{where}: `crossover_prob` must be in [0, 1]; got {crossover_prob!r}")
    schedule = dehb_schedule(fidelities, eta)
    cycle = int(schedule["slot"].shape[0])
    pop_sizes = np.zeros(fidelities, np.int32)
    np.maximum.at(pop_sizes, schedule["fidelity"], schedule["rung_size"])
    pop = int(pop_sizes.max())
    table = {k: jnp.asarray(v) for k, v in schedule.items()}
    sizes = jnp.asarray(space.decision_sizes, jnp.int32)
    dims = len(space.decision_sizes)
    valid = jnp.arange(pop)[None, :] < jnp.asarray(pop_sizes)[:, None]  # [fidelities, pop]
    top = fidelities - 1

    def decode(u: jax.Array) -> jax.Array:
        return jnp.clip(jnp.floor(u * sizes).astype(jnp.int32), 0, sizes - 1)

    def encode(key: jax.Array, decisions: jax.Array) -> jax.Array:
        """A vector decoding to `decisions`, uniform within its cell."""
        u = jax.random.uniform(key, decisions.shape)
        return (decisions.astype(jnp.float32) + u) / sizes.reshape((1,) * (u.ndim - 1) + (-1,))

    def init(key: jax.Array) -> DEHBState:
        k_arch, k_enc, k_best = jax.random.split(key, 3)
        archs = jax.vmap(space.sample)(jax.random.split(k_arch, fidelities * pop))
        decisions = jax.vmap(space.to_decisions)(archs).reshape(fidelities, pop, dims)
        vectors = encode(k_enc, decisions)
        return DEHBState(
            jnp.zeros((), jnp.int32),
            vectors,
            jnp.full((fidelities, pop), -jnp.inf, jnp.float32),
            jnp.zeros((fidelities,), jnp.int32),
            jnp.zeros((pop, dims), jnp.float32),
            jnp.zeros((), jnp.int32),
            jnp.zeros((dims,), jnp.float32),
            jnp.zeros((), jnp.int32),
            space.sample(k_best),
            jnp.full((), -jnp.inf, jnp.float32),
        )

    def ranked(state: DEHBState, f: jax.Array) -> jax.Array:
        """Slots of subpopulation f, best first (unevaluated, then padding, last; stable)."""
        return jnp.argsort(jnp.where(valid[f], -state.vector_fitness[f], jnp.inf), stable=True)

    def three(key: jax.Array, vectors: jax.Array, mask: jax.Array) -> jax.Array:
        """rand/1: r1 + F (r2 - r3), three distinct vectors drawn where `mask`."""
        i = jax.random.choice(key, vectors.shape[0], (3,), replace=False, p=mask / mask.sum())
        r = vectors[i]
        return r[0] + mutation_factor * (r[1] - r[2])

    def evolve(key: jax.Array, state: DEHBState, f, lower, order, n, target) -> jax.Array:
        """A rand/1/bin trial against `target` of f; `order`: `lower`'s slots, best first."""
        k_fill, k_pick, k_cross, k_j, k_fix = jax.random.split(key, 5)
        rank = jnp.zeros((pop,), jnp.int32).at[order].set(jnp.arange(pop))
        in_pool = valid[lower] & (rank < n)
        count = jnp.sum(in_pool)
        # fewer than 3 parents: fill with rand/1 mutants of every subpopulation
        everyone = state.vectors.reshape(fidelities * pop, dims)
        fillers = jax.vmap(lambda k: three(k, everyone, valid.reshape(-1).astype(jnp.float32)))(
            jax.random.split(k_fill, 3)
        )
        need = jnp.where(count < 3, 3 - count + 1, 0)
        pool = jnp.concatenate([state.vectors[lower], fillers])
        mask = jnp.concatenate([in_pool, jnp.arange(3) < need]).astype(jnp.float32)
        mutant = three(k_pick, pool, mask)
        cross = jax.random.uniform(k_cross, (dims,)) < crossover_prob
        forced = jnp.arange(dims) == jax.random.randint(k_j, (), 0, dims)
        cross = jnp.where(jnp.any(cross), cross, forced)
        trial = jnp.where(cross, mutant, state.vectors[f, target])
        outside = (trial < 0) | (trial > 1)
        return jnp.where(outside, jax.random.uniform(k_fix, (dims,)), trial)

    def promotion_list(state: DEHBState, f, lower, order) -> tuple[jax.Array, jax.Array]:
        """The evaluated vectors of `lower`, best first, less those f already holds."""
        cand = state.vectors[lower][order]
        held = jnp.any(
            jnp.all(cand[:, None, :] == state.vectors[f][None, :, :], axis=-1) & valid[f][None],
            axis=1,
        )
        evaluated = valid[lower][order] & (state.vector_fitness[lower][order] > -jnp.inf)
        keep = evaluated & ~held
        # kept ones first, in rank order (stable)
        order2 = jnp.argsort(~keep, stable=True)
        return cand[order2], jnp.sum(keep).astype(jnp.int32)

    def ask(key: jax.Array, state: DEHBState) -> tuple[Any, DEHBState]:
        row = state.step % cycle
        f, slot, rung, n = (table[k][row] for k in ("fidelity", "slot", "rung", "rung_size"))
        lower = jnp.where(rung > 0, f - 1, f)
        target = state.counter[f]
        promote = (state.step < cycle) & (rung > 0)
        order = ranked(state, lower)
        fresh_list = promotion_list(state, f, lower, order)
        new_list = promote & (slot == 0)
        promotions = jnp.where(new_list, fresh_list[0], state.promotions)
        promotable = jnp.where(new_list, fresh_list[1], state.promotable)
        best_lower = state.vectors[lower][order[0]]
        promoted = jnp.where(slot < promotable, promotions[jnp.minimum(slot, pop - 1)], best_lower)
        trial = jnp.where(promote, promoted, evolve(key, state, f, lower, order, n, target))
        arch = space.from_decisions(decode(trial))
        state = state._replace(
            counter=state.counter.at[f].set((target + 1) % jnp.asarray(pop_sizes)[f]),
            promotions=promotions,
            promotable=promotable,
            trial=trial,
            target=target,
        )
        return jax.tree.map(lambda a: a[None], arch), state

    def fidelity(state: DEHBState) -> jax.Array:
        return table["fidelity"][state.step % cycle][None]

    def tell(state: DEHBState, archs: Any, fitness: jax.Array) -> DEHBState:
        fit = clean_fitness(fitness)
        f = table["fidelity"][state.step % cycle]
        better = fit[0] >= state.vector_fitness[f, state.target]
        vectors = state.vectors.at[f, state.target].set(
            jnp.where(better, state.trial, state.vectors[f, state.target])
        )
        vector_fitness = state.vector_fitness.at[f, state.target].max(fit[0])
        at_top = jnp.where(f == top, fit, -jnp.inf)
        best, best_fitness = update_incumbent(state.best, state.best_fitness, archs, at_top)
        return state._replace(
            step=state.step + 1,
            vectors=vectors,
            vector_fitness=vector_fitness,
            best=best,
            best_fitness=best_fitness,
        )

    return Searcher(init, ask, tell, 1, fidelity, fidelities)
