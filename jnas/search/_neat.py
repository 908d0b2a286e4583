"""NEAT-style evolution: speciation, fitness sharing and crossover (Stanley & Miikkulainen,
"Evolving Neural Networks through Augmenting Topologies", Evolutionary Computation 2002).

jnas genomes are fixed-shape architecture pytrees, so every gene has a fixed position and
all genes "match" in NEAT's sense; the historical markings NEAT needs to align genomes of
different lengths are the positions themselves. What NEAT adds over plain evolution is
kept:

- **speciation**: genomes closer than `compatibility_threshold` in NEAT's compatibility
  distance (here the fraction of differing topology genes, plus `weight_coefficient` times
  the mean absolute weight difference) share a species; each member joins the species of
  the first (fittest) representative it is close to, or founds a new one;
- **explicit fitness sharing**: offspring are allotted to species in proportion to the
  species' mean (shifted) fitness, so a new topology is not outcompeted by a crowded niche;
- **intra-species crossover**: two parents from the top `survival` fraction of one species;
  a child takes each gene from either parent (uniform or one-point crossover, by a fair
  coin: `crossover`), and a child the space rejects (`is_valid`) is replaced by one of up
  to `crossover_tries` others, or by the fitter parent; then one structural mutation
  (`space.mutate`) with probability `mutation_rate` (always when there was no crossover);
- **weights** (`weight_dim > 0`): every genome also carries float32 weight genes, evolved
  as NEAT does: each perturbed by N(0, `weight_sigma`) with probability 0.8, redrawn from
  N(0, 1) with probability 0.1. Candidates are then `NeatGenome(arch, weights)` and the
  objective receives both (topology+weight evolution); with `weight_dim=0` (the default,
  for tabular benchmarks, where weights are trained by the objective) candidates are plain
  architectures.
- **elitism**: the `elitism` fittest genomes survive unchanged (and are not re-evaluated).

Each `ask` returns one generation of `population_size - elitism` offspring; the first is
random. Works on any space with `sample`, `mutate` and `is_valid` (the `Sequential` and
`Hierarchical` spaces included).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jnas._checks import check_positive
from jnas.search._base import Searcher, clean_fitness
from jnas.spaces import Space, require


class NeatGenome(NamedTuple):
    arch: Any
    weights: jax.Array  # float32[weight_dim]


class NeatState(NamedTuple):
    population: Any  # candidates (archs or NeatGenomes), leading axis population_size
    fitness: jax.Array  # float32[population_size]; -inf where unevaluated or failed
    generation: jax.Array  # int32[]
    best: Any
    best_fitness: jax.Array  # float32[]


def _flat_genes(tree: Any) -> jax.Array:
    """int32[N, G]: the topology genes of a batch of architectures, flattened."""
    leaves = jax.tree.leaves(tree)
    n = leaves[0].shape[0]
    return jnp.concatenate([jnp.reshape(x, (n, -1)).astype(jnp.int32) for x in leaves], 1)


def compatibility(archs: Any, weights: jax.Array, weight_coefficient: float) -> jax.Array:
    """float32[N, N]: NEAT's compatibility distance between every pair of genomes."""
    genes = _flat_genes(archs)
    d = jnp.mean(genes[:, None, :] != genes[None, :, :], axis=-1, dtype=jnp.float32)
    if weights.shape[-1]:
        d = d + weight_coefficient * jnp.mean(
            jnp.abs(weights[:, None, :] - weights[None, :, :]), axis=-1
        )
    return d


def speciate(distance: jax.Array, fitness: jax.Array, threshold: float) -> jax.Array:
    """int32[N]: species ids. Members are visited fittest first; each joins the species of
    the first representative closer than `threshold`, or founds one (ids 0, 1, ...)."""
    n = fitness.shape[0]
    order = jnp.argsort(-fitness, stable=True)

    def visit(carry, m):
        reps, count, species = carry  # reps[s]: the member representing species s
        close = (jnp.arange(n) < count) & (distance[m, jnp.maximum(reps, 0)] < threshold)
        found = jnp.any(close)
        s = jnp.where(found, jnp.argmax(close), count)
        reps = jnp.where(found, reps, reps.at[count].set(m))
        return (reps, count + jnp.where(found, 0, 1), species.at[m].set(s)), None

    init = (jnp.full((n,), -1, jnp.int32), jnp.zeros((), jnp.int32), jnp.zeros((n,), jnp.int32))
    (_, _, species), _ = jax.lax.scan(visit, init, order)
    return species


def crossover(
    key: jax.Array, space: Any, a1: Any, w1: jax.Array, a2: Any, w2: jax.Array, tries: int
) -> tuple[Any, jax.Array]:
    """A child of parents `a1` (the fitter) and `a2`: each of `tries` candidates is, by a
    fair coin, a uniform crossover (each gene from either parent) or a one-point crossover
    (a prefix of `a1`'s genes in flattening order, cut after 1 to all-but-one genes, then
    `a2`'s); the first candidate the space accepts (`is_valid`) is the child, or `a1` if
    none is. Weight genes: uniform crossover."""
    k_mask, k_cut, k_kind, k_w = jax.random.split(key, 4)
    leaves1, treedef = jax.tree.flatten(a1)
    leaves2 = jax.tree.leaves(a2)
    sizes = [x.size for x in leaves1]
    total = sum(sizes)
    uniform = jax.random.bernoulli(k_mask, 0.5, (tries, total))
    cut = jax.random.randint(k_cut, (tries, 1), 1, max(total, 2))
    one_point = jnp.arange(total)[None, :] < cut
    take1 = jnp.where(jax.random.bernoulli(k_kind, 0.5, (tries, 1)), uniform, one_point)
    children, start = [], 0
    for x1, x2, size in zip(leaves1, leaves2, sizes, strict=True):
        m = take1[:, start : start + size].reshape((tries, *x1.shape))
        children.append(jnp.where(m, x1[None], x2[None]))
        start += size
    children = jax.tree.unflatten(treedef, children)
    ok = jax.vmap(space.is_valid)(children)
    child = jax.tree.map(lambda c, p: jnp.where(jnp.any(ok), c[jnp.argmax(ok)], p), children, a1)
    w = jnp.where(jax.random.bernoulli(k_w, 0.5, w1.shape), w1, w2)
    return child, w


def neat(
    space: Space,
    population_size: int = 20,
    *,
    elitism: int = 2,
    compatibility_threshold: float = 0.3,
    survival: float = 0.5,
    crossover_rate: float = 0.75,
    mutation_rate: float = 0.8,
    crossover_tries: int = 8,
    weight_dim: int = 0,
    weight_sigma: float = 0.5,
    weight_coefficient: float = 0.4,
) -> Searcher:
    """NEAT-style generational evolution over `space` (see the module docstring)."""
    where = "neat"
    check_positive(where, population_size=population_size, crossover_tries=crossover_tries)
    if not isinstance(elitism, int) or not 0 <= elitism < population_size:
        raise ValueError(
            f"{where}: `elitism` must be an integer in [0, population_size="
            f"{population_size}); got {elitism!r}"
        )
    for name, v in (
        ("survival", survival),
        ("crossover_rate", crossover_rate),
        ("mutation_rate", mutation_rate),
    ):
        if not 0.0 <= v <= 1.0:
            raise ValueError(f"{where}: `{name}` must be in [0, 1]; got {v!r}")
    if survival == 0.0:
        raise ValueError(f"{where}: `survival` must be > 0; got 0")
    if compatibility_threshold <= 0:
        raise ValueError(
            f"{where}: `compatibility_threshold` must be > 0; got {compatibility_threshold!r}"
        )
    if not isinstance(weight_dim, int) or weight_dim < 0:
        raise ValueError(f"{where}: `weight_dim` must be an integer >= 0; got {weight_dim!r}")
    require(where, space, Space)
    batch = population_size - elitism
    split = lambda c: (
        (c.arch, c.weights)
        if weight_dim
        else (c, jnp.zeros((*jax.tree.leaves(c)[0].shape[:1], 0), jnp.float32))
    )
    join = lambda a, w: NeatGenome(a, w) if weight_dim else a

    def init(key: jax.Array) -> NeatState:
        k_arch, k_w = jax.random.split(key)
        archs = jax.vmap(space.sample)(jax.random.split(k_arch, population_size))
        weights = jax.random.normal(k_w, (population_size, weight_dim), jnp.float32)
        best = jax.tree.map(lambda x: x[0], join(archs, weights))
        return NeatState(
            join(archs, weights),
            jnp.full((population_size,), -jnp.inf, jnp.float32),
            jnp.zeros((), jnp.int32),
            best,
            jnp.full((), -jnp.inf, jnp.float32),
        )

    def offspring(key, archs, weights, fitness, species, parent_ok):
        k_s, k_p1, k_p2, k_x, k_cx, k_mut, k_m, k_wp, k_wr, k_wn, k_wu = jax.random.split(key, 11)
        onehot = species[None, :] == jnp.arange(population_size)[:, None]  # [S, N]
        finite = jnp.isfinite(fitness)
        low = jnp.min(jnp.where(parent_ok & finite, fitness, jnp.inf))
        low = jnp.where(jnp.isfinite(low), low, 0.0)
        shifted = jnp.where(parent_ok, jnp.where(finite, fitness - low, 0.0) + 1e-3, 0.0)
        size = jnp.sum(onehot & parent_ok[None], axis=1)
        share = jnp.sum(jnp.where(onehot, shifted[None], 0.0), axis=1) / jnp.maximum(size, 1)
        s = jax.random.categorical(k_s, jnp.where(size > 0, jnp.log(share), -jnp.inf))
        members = onehot[s] & parent_ok
        p1 = jax.random.categorical(k_p1, jnp.where(members, 0.0, -jnp.inf))
        p2 = jax.random.categorical(k_p2, jnp.where(members, 0.0, -jnp.inf))
        first, second = (
            jnp.where(fitness[p1] >= fitness[p2], p1, p2),
            jnp.where(fitness[p1] >= fitness[p2], p2, p1),
        )
        take = lambda i: jax.tree.map(lambda x: x[i], archs)
        crossed, w_crossed = crossover(
            k_x, space, take(first), weights[first], take(second), weights[second], crossover_tries
        )
        do_cross = jax.random.bernoulli(k_cx, crossover_rate)
        arch = jax.tree.map(lambda c, p: jnp.where(do_cross, c, p), crossed, take(first))
        w = jnp.where(do_cross, w_crossed, weights[first])
        mutated = space.mutate(k_mut, arch)
        do_mut = ~do_cross | jax.random.bernoulli(k_m, mutation_rate)
        arch = jax.tree.map(lambda m, a: jnp.where(do_mut, m, a), mutated, arch)
        perturb = jax.random.bernoulli(k_wp, 0.8, w.shape)
        redraw = ~perturb & jax.random.bernoulli(k_wr, 0.5, w.shape)  # 0.1 of all
        w = jnp.where(perturb, w + weight_sigma * jax.random.normal(k_wn, w.shape), w)
        w = jnp.where(redraw, jax.random.normal(k_wu, w.shape), w)
        return arch, w

    def ask(key: jax.Array, state: NeatState) -> tuple[Any, NeatState]:
        archs, weights = split(state.population)
        fitness = state.fitness
        evaluated = jnp.isfinite(fitness)
        species = speciate(
            compatibility(archs, weights, weight_coefficient),
            jnp.where(evaluated, fitness, -jnp.inf),
            compatibility_threshold,
        )
        # survivors: the top `survival` fraction of each species (at least one member)
        same = species[:, None] == species[None, :]
        ahead = same & (
            (fitness[None, :] > fitness[:, None])
            | (
                (fitness[None, :] == fitness[:, None])
                & (jnp.arange(population_size)[None, :] < jnp.arange(population_size)[:, None])
            )
        )
        rank = jnp.sum(ahead & evaluated[None, :], axis=1)
        keep = jnp.maximum(1, jnp.ceil(survival * jnp.sum(same & evaluated[None], 1)))
        parent_ok = evaluated & (rank < keep)
        parent_ok = jnp.where(jnp.any(parent_ok), parent_ok, True)
        children, child_w = jax.vmap(offspring, (0, None, None, None, None, None))(
            jax.random.split(key, batch), archs, weights, fitness, species, parent_ok
        )
        fresh = state.generation == 0
        first_archs = jax.tree.map(lambda x: x[elitism:], archs)
        out_archs = jax.tree.map(lambda f, c: jnp.where(fresh, f, c), first_archs, children)
        out_w = jnp.where(fresh, weights[elitism:], child_w)
        return join(out_archs, out_w), state

    def tell(state: NeatState, candidates: Any, fitness: jax.Array) -> NeatState:
        fitness = clean_fitness(fitness)
        elite = jnp.argsort(-state.fitness, stable=True)[:elitism]
        population = jax.tree.map(
            lambda old, new: jnp.concatenate([old[elite], new]), state.population, candidates
        )
        pop_fitness = jnp.concatenate([state.fitness[elite], fitness])
        i = jnp.argmax(fitness)
        better = fitness[i] > state.best_fitness
        best = jax.tree.map(lambda c, o: jnp.where(better, c[i], o), candidates, state.best)
        return NeatState(
            population,
            pop_fitness,
            state.generation + 1,
            best,
            jnp.maximum(state.best_fitness, fitness[i]),
        )

    return Searcher(init, ask, tell, batch)
