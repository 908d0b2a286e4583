"""NEAT with complexification: evolving network topologies and weights from minimal genomes
(Stanley & Miikkulainen, "Evolving Neural Networks through Augmenting Topologies",
Evolutionary Computation 10(2), 2002).

A genome is a padded list of connection genes (in node, out node, weight, enabled,
innovation number; innovation -1 is an unused slot) over at most `max_nodes` nodes: inputs,
a bias, outputs, then hidden nodes. Every genome starts minimal (inputs and bias fully
connected to the outputs, no hidden node) and grows by two structural mutations:

- **add connection** between two unconnected nodes (feed-forward only: each node has an
  order in [0, 1], inputs 0, outputs 1, a hidden node halfway between the endpoints of the
  connection it split; a connection runs from lower to higher order);
- **add node**: an enabled connection a -> b is disabled and replaced by a -> new (weight
  1) and new -> b (the old weight), which leaves the function almost unchanged.

**Innovation numbers** (the historical markings): the searcher state holds one table of
the number given to each (in, out) connection and one of the node made by splitting each
innovation, so the same structural change gets the same number (and the same node id) in
every genome and generation; crossover aligns genes by these numbers: matching genes take
either parent's weight, disjoint and excess genes come from the fitter parent, and a gene
disabled in either parent stays disabled with probability 0.75. **Speciation**: the
compatibility distance `c1 E / N + c2 D / N + c3 W` (excess, disjoint genes, mean weight
difference of matching genes) sorts genomes into species against representatives, so a
new structure competes within its niche. Species persist: their representatives are
random members from the previous generation (the paper's §3.3), and a species whose best
has not improved for `stagnation` (15) generations does not reproduce, unless it holds the
best genome; and when the population's best has not improved for `refocus` (20)
generations, only the two best species reproduce, half the population each, from their
champions (the paper's parameter settings: "refocusing the search into the most promising
spaces"; the authors' C++ calls it delta coding). **Explicit fitness sharing**: each
genome's fitness is divided by its species' size, and offspring are allotted to species in
proportion to their summed shared fitness. Species of five or more keep their champion.

Genomes are fixed-shape pytrees (`Genome`), so a population is a batch, `activate` runs
under `vmap`, and `neat_networks(...)` is a `Searcher` (pure init / ask / tell) whose
candidates are genomes. `xor_fitness` is the paper's first benchmark.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jnas._checks import check_positive
from jnas.search._base import Searcher, clean_fitness, update_incumbent


class Genome(NamedTuple):
    """Connection genes in padded slots and the genome's active nodes."""

    conn_in: jax.Array  # int32[C]
    conn_out: jax.Array  # int32[C]
    weight: jax.Array  # float32[C]
    enabled: jax.Array  # bool[C]
    innovation: jax.Array  # int32[C]: -1 where the slot is unused
    node_active: jax.Array  # bool[N]


class NeatNetworksState(NamedTuple):
    population: Genome  # leading axis population_size
    fitness: jax.Array  # float32[P]: -inf before the first tell
    innovation_of: jax.Array  # int32[N, N]: the number of connection (in, out); -1 unseen
    next_innovation: jax.Array  # int32[]
    split_node: jax.Array  # int32[N * N]: the node made by splitting innovation i; -1
    next_node: jax.Array  # int32[]
    node_order: jax.Array  # float32[N]: inputs and bias 0, outputs 1, hidden in between
    generation: jax.Array  # int32[]
    best: Genome
    best_fitness: jax.Array  # float32[]
    species: Species  # the previous generation's species (their representatives, ages)
    since_record: jax.Array  # int32[]: generations since the population's best improved


class Species(NamedTuple):
    """Species that persist across generations (slots of a fixed maximum)."""

    reps: Genome  # leading axis max_species: a random member of the previous generation
    alive: jax.Array  # bool[S]
    best: jax.Array  # float32[S]: the species' best fitness so far
    stale: jax.Array  # int32[S]: generations since that best improved


class Settings(NamedTuple):
    num_inputs: int
    num_outputs: int
    max_nodes: int
    max_connections: int
    population_size: int
    c1: float = 1.0
    c2: float = 1.0
    c3: float = 0.4
    threshold: float = 3.0
    add_node_rate: float = 0.03
    add_connection_rate: float = 0.05
    weight_mutation_rate: float = 0.8
    weight_sigma: float = 0.5
    weight_reset_rate: float = 0.1
    crossover_rate: float = 0.75
    survival: float = 0.2
    champion_size: int = 5
    stagnation: int = 15
    refocus: int = 20
    max_species: int = 32

    @property
    def first_hidden(self) -> int:
        return self.num_inputs + 1 + self.num_outputs


# -- genomes ------------------------------------------------------------------------------


def minimal_genome(key: jax.Array, s: Settings) -> Genome:
    """Inputs and the bias connected to every output, weights N(0, 1), no hidden node;
    innovation numbers 0 .. (inputs + 1) * outputs - 1 in (input, output) order."""
    sources = jnp.arange(s.num_inputs + 1)
    outputs = s.num_inputs + 1 + jnp.arange(s.num_outputs)
    n = (s.num_inputs + 1) * s.num_outputs
    pad = s.max_connections - n
    conn_in = jnp.concatenate([jnp.repeat(sources, s.num_outputs), jnp.zeros(pad, jnp.int32)])
    conn_out = jnp.concatenate([jnp.tile(outputs, s.num_inputs + 1), jnp.zeros(pad, jnp.int32)])
    used = jnp.arange(s.max_connections) < n
    return Genome(
        conn_in.astype(jnp.int32),
        conn_out.astype(jnp.int32),
        jnp.where(used, jax.random.normal(key, (s.max_connections,)), 0.0),
        used,
        jnp.where(used, jnp.arange(s.max_connections), -1).astype(jnp.int32),
        jnp.arange(s.max_nodes) < s.first_hidden,
    )


def activate(genome: Genome, node_order: jax.Array, x: jax.Array, num_outputs: int) -> jax.Array:
    """The network's outputs for inputs `x` float[I]: nodes in order, each the steepened
    sigmoid `1 / (1 + exp(-4.9 s))` of its enabled inputs' weighted sum (the paper's)."""
    n = node_order.shape[0]
    num_inputs = x.shape[0]
    values = jnp.zeros(n).at[:num_inputs].set(x).at[num_inputs].set(1.0)
    live = genome.enabled & (genome.innovation >= 0)
    sequence = jnp.argsort(jnp.where(genome.node_active, node_order, 2.0), stable=True)

    def step(p, values):
        node = sequence[p]
        into = live & (genome.conn_out == node)
        total = jnp.sum(jnp.where(into, genome.weight * values[genome.conn_in], 0.0))
        compute = genome.node_active[node] & (node > num_inputs)
        return values.at[node].set(jnp.where(compute, jax.nn.sigmoid(4.9 * total), values[node]))

    values = jax.lax.fori_loop(0, n, step, values)
    return jax.lax.dynamic_slice_in_dim(values, num_inputs + 1, num_outputs)


def compatibility(a: Genome, b: Genome, s: Settings) -> jax.Array:
    """NEAT's distance `c1 E / N + c2 D / N + c3 W` (N = the larger genome's gene count,
    1 below 20 genes, as in the paper)."""
    ua, ub = a.innovation >= 0, b.innovation >= 0
    match = (a.innovation[:, None] == b.innovation[None, :]) & ua[:, None] & ub[None, :]
    in_b, in_a = jnp.any(match, 1), jnp.any(match, 0)
    max_a = jnp.max(jnp.where(ua, a.innovation, -1))
    max_b = jnp.max(jnp.where(ub, b.innovation, -1))
    excess = jnp.sum(ua & ~in_b & (a.innovation > max_b)) + jnp.sum(
        ub & ~in_a & (b.innovation > max_a)
    )
    disjoint = jnp.sum(ua & ~in_b) + jnp.sum(ub & ~in_a) - excess
    matched = jnp.sum(match)
    diff = jnp.sum(jnp.where(match, jnp.abs(a.weight[:, None] - b.weight[None, :]), 0.0))
    w = diff / jnp.maximum(matched, 1)
    genes = jnp.maximum(jnp.sum(ua), jnp.sum(ub))
    big = jnp.where(genes < 20, 1.0, genes.astype(jnp.float32))
    return s.c1 * excess / big + s.c2 * disjoint / big + s.c3 * w


def crossover(key: jax.Array, fitter: Genome, other: Genome) -> Genome:
    """The fitter parent's genes; a gene whose innovation the other parent has too takes
    either parent's weight (even odds) and is disabled with probability 0.75 when either
    parent disables it. Disjoint and excess genes are the fitter parent's."""
    k_weight, k_enable = jax.random.split(key)
    used = fitter.innovation >= 0
    match = (fitter.innovation[:, None] == other.innovation[None, :]) & used[:, None]
    matched = jnp.any(match, 1)
    other_weight = jnp.sum(jnp.where(match, other.weight[None, :], 0.0), 1)
    other_enabled = jnp.any(match & other.enabled[None, :], 1)
    take = matched & jax.random.bernoulli(k_weight, 0.5, matched.shape)
    weight = jnp.where(take, other_weight, fitter.weight)
    either_off = matched & (~fitter.enabled | ~other_enabled)
    disabled = either_off & jax.random.bernoulli(k_enable, 0.75, matched.shape)
    enabled = jnp.where(either_off, ~disabled, fitter.enabled) & used
    return fitter._replace(weight=weight, enabled=enabled)


class _Tables(NamedTuple):
    innovation_of: jax.Array
    next_innovation: jax.Array
    split_node: jax.Array
    next_node: jax.Array
    node_order: jax.Array


def _innovation(tables: _Tables, a: jax.Array, b: jax.Array) -> tuple[jax.Array, _Tables]:
    """The innovation number of connection a -> b (a new one when first seen)."""
    known = tables.innovation_of[a, b]
    new = known < 0
    number = jnp.where(new, tables.next_innovation, known)
    return number, tables._replace(
        innovation_of=tables.innovation_of.at[a, b].set(number),
        next_innovation=tables.next_innovation + new.astype(jnp.int32),
    )


def _free_slots(genome: Genome) -> jax.Array:
    return genome.innovation < 0


def _add_connection(
    key: jax.Array, genome: Genome, tables: _Tables, s: Settings
) -> tuple[Genome, _Tables]:
    k_pick, k_weight = jax.random.split(key)
    n = s.max_nodes
    used = genome.innovation >= 0
    exists = (
        jnp.zeros((n, n), bool).at[genome.conn_in, genome.conn_out].max(used)
    )  # any gene, enabled or not
    order = tables.node_order
    allowed = (
        genome.node_active[:, None]
        & genome.node_active[None, :]
        & (order[:, None] < order[None, :])
        & (jnp.arange(n)[None, :] > s.num_inputs)
        & ~exists
    )
    free = _free_slots(genome)
    ok = jnp.any(allowed) & jnp.any(free) & (tables.next_innovation < n * n)
    flat = jax.random.categorical(k_pick, jnp.where(allowed.ravel(), 0.0, -jnp.inf))
    a, b = flat // n, flat % n
    slot = jnp.argmax(free)
    number, new_tables = _innovation(tables, a, b)
    added = Genome(
        genome.conn_in.at[slot].set(a.astype(jnp.int32)),
        genome.conn_out.at[slot].set(b.astype(jnp.int32)),
        genome.weight.at[slot].set(jax.random.normal(k_weight)),
        genome.enabled.at[slot].set(True),
        genome.innovation.at[slot].set(number),
        genome.node_active,
    )
    pick = lambda x, y: jnp.where(ok, x, y)
    return jax.tree.map(pick, added, genome), jax.tree.map(pick, new_tables, tables)


def _add_node(
    key: jax.Array, genome: Genome, tables: _Tables, s: Settings
) -> tuple[Genome, _Tables]:
    live = genome.enabled & (genome.innovation >= 0)
    k = jax.random.categorical(key, jnp.where(live, 0.0, -jnp.inf))
    a, b, old = genome.conn_in[k], genome.conn_out[k], genome.innovation[k]
    known = tables.split_node[jnp.maximum(old, 0)]
    node = jnp.where(known >= 0, known, tables.next_node)
    mid = 0.5 * (tables.node_order[a] + tables.node_order[b])
    free = _free_slots(genome)
    ok = (
        jnp.any(live)
        & (jnp.sum(free) >= 2)
        & (node < s.max_nodes)
        & ~genome.node_active[jnp.minimum(node, s.max_nodes - 1)]
        & (mid > tables.node_order[a])
        & (mid < tables.node_order[b])
        & (tables.next_innovation < s.max_nodes * s.max_nodes - 2)
    )
    node = jnp.minimum(node, s.max_nodes - 1)
    fresh = known < 0
    tables2 = tables._replace(
        split_node=tables.split_node.at[jnp.maximum(old, 0)].set(node),
        next_node=tables.next_node + fresh.astype(jnp.int32),
        node_order=jnp.where(fresh, tables.node_order.at[node].set(mid), tables.node_order),
    )
    first, tables2 = _innovation(tables2, a, node)
    second, tables2 = _innovation(tables2, node, b)
    s1 = jnp.argmax(free)
    s2 = jnp.argmax(free.at[s1].set(False))
    added = Genome(
        genome.conn_in.at[s1].set(a).at[s2].set(node.astype(jnp.int32)),
        genome.conn_out.at[s1].set(node.astype(jnp.int32)).at[s2].set(b),
        genome.weight.at[s1].set(1.0).at[s2].set(genome.weight[k]),
        genome.enabled.at[k].set(False).at[s1].set(True).at[s2].set(True),
        genome.innovation.at[s1].set(first).at[s2].set(second),
        genome.node_active.at[node].set(True),
    )
    pick = lambda x, y: jnp.where(ok, x, y)
    return jax.tree.map(pick, added, genome), jax.tree.map(pick, tables2, tables)


def _mutate_weights(key: jax.Array, genome: Genome, s: Settings) -> Genome:
    k_do, k_reset, k_noise, k_new = jax.random.split(key, 4)
    c = genome.weight.shape[0]
    do = jax.random.bernoulli(k_do, s.weight_mutation_rate)
    reset = jax.random.bernoulli(k_reset, s.weight_reset_rate, (c,))
    w = jnp.where(
        reset,
        jax.random.normal(k_new, (c,)),
        genome.weight + s.weight_sigma * jax.random.normal(k_noise, (c,)),
    )
    used = genome.innovation >= 0
    return genome._replace(weight=jnp.where(do & used, w, genome.weight))


def mutate(key: jax.Array, genome: Genome, tables: _Tables, s: Settings) -> tuple[Genome, _Tables]:
    """Weight perturbation, then add-node and add-connection mutations at their rates."""
    k_w, k_node, k_do_node, k_conn, k_do_conn = jax.random.split(key, 5)
    genome = _mutate_weights(k_w, genome, s)
    node_genome, node_tables = _add_node(k_node, genome, tables, s)
    do_node = jax.random.bernoulli(k_do_node, s.add_node_rate)
    genome = jax.tree.map(lambda x, y: jnp.where(do_node, x, y), node_genome, genome)
    tables = jax.tree.map(lambda x, y: jnp.where(do_node, x, y), node_tables, tables)
    conn_genome, conn_tables = _add_connection(k_conn, genome, tables, s)
    do_conn = jax.random.bernoulli(k_do_conn, s.add_connection_rate)
    genome = jax.tree.map(lambda x, y: jnp.where(do_conn, x, y), conn_genome, genome)
    tables = jax.tree.map(lambda x, y: jnp.where(do_conn, x, y), conn_tables, tables)
    return genome, tables


# -- populations --------------------------------------------------------------------------


def no_species(population: Genome, s: Settings) -> Species:
    """No species yet (before the first speciation)."""
    m = s.max_species
    return Species(
        jax.tree.map(lambda a: jnp.zeros((m, *a.shape[1:]), a.dtype), population),
        jnp.zeros((m,), bool),
        jnp.full((m,), -jnp.inf, jnp.float32),
        jnp.zeros((m,), jnp.int32),
    )


def assign_species(
    key: jax.Array, population: Genome, fitness: jax.Array, previous: Species, s: Settings
) -> tuple[jax.Array, Species]:
    """NEAT's speciation across generations (the paper, §3.3): each genome, fittest first,
    joins the first existing species (by slot) whose representative — a random member of
    it in the previous generation — is within `threshold`, or founds a new species in a
    free slot (its founder the representative for the rest of this generation; past
    `max_species` species, the closest one). Returns (species id per genome, the species
    with this generation's members: alive where any, best / stale updated (a new species
    starts at 0), representatives redrawn at random among the members)."""
    m = s.max_species
    order = jnp.argsort(-fitness, stable=True)

    def visit(carry, g):
        reps, exists, ids = carry
        member = jax.tree.map(lambda a: a[g], population)
        d = jax.vmap(lambda r: compatibility(member, r, s))(reps)
        close = exists & (d < s.threshold)
        free = ~exists
        sid = jnp.where(
            jnp.any(close),
            jnp.argmax(close),
            jnp.where(jnp.any(free), jnp.argmax(free), jnp.argmin(jnp.where(exists, d, jnp.inf))),
        )
        new = ~jnp.any(close) & jnp.any(free)
        reps = jax.tree.map(lambda r, x: jnp.where(new, r.at[sid].set(x), r), reps, member)
        return (reps, exists | (new & (jnp.arange(m) == sid)), ids.at[g].set(sid)), None

    p = fitness.shape[0]
    init = (previous.reps, previous.alive, jnp.zeros((p,), jnp.int32))
    (_, _, ids), _ = jax.lax.scan(visit, init, order)
    members = ids[None, :] == jnp.arange(m)[:, None]  # [S, P]
    alive = jnp.any(members, 1)
    gen_best = jnp.max(jnp.where(members, fitness[None, :], -jnp.inf), 1)
    improved = gen_best > previous.best
    was = previous.alive
    best = jnp.where(was, jnp.maximum(previous.best, gen_best), gen_best)
    stale = jnp.where(was & ~improved, previous.stale + 1, 0)
    pick = jax.random.categorical(key, jnp.where(members, 0.0, -jnp.inf), axis=1)  # [S]
    reps = jax.tree.map(lambda a: a[jnp.where(alive, pick, 0)], population)
    return ids, Species(reps, alive, jnp.where(alive, best, -jnp.inf), jnp.where(alive, stale, 0))


def stagnant_members(
    fitness: jax.Array, ids: jax.Array, species: Species, s: Settings
) -> jax.Array:
    """bool[P]: members of species whose best has not improved for `stagnation`
    generations, which the paper does not let reproduce — except the species holding the
    population's best genome, so that the population never dies out."""
    stagnant = species.stale >= s.stagnation
    stagnant = stagnant.at[ids[jnp.argmax(fitness)]].set(False)
    return stagnant[ids]


def shared_fitness(fitness: jax.Array, species: jax.Array) -> jax.Array:
    """Explicit fitness sharing: each fitness over its species' size. NEAT's fitness is
    non-negative; a negative one shifts all so the lowest is 0 (failures count 0)."""
    p = fitness.shape[0]
    finite = jnp.isfinite(fitness)
    low = jnp.minimum(jnp.min(jnp.where(finite, fitness, jnp.inf)), 0.0)
    shifted = jnp.where(finite, fitness - low + 1e-3, 0.0)
    size = jnp.zeros(p).at[species].add(1.0)
    return shifted / size[species]


def allot_offspring(shared: jax.Array, species: jax.Array, total: int) -> jax.Array:
    """int32[P] offspring per species id: `total` in proportion to each species' summed
    shared fitness (largest remainders round it to exactly `total`; by species size when
    no genome has a finite fitness)."""
    p = shared.shape[0]
    sums = jnp.zeros(p).at[species].add(shared)
    sizes = jnp.zeros(p).at[species].add(1.0)
    sums = jnp.where(jnp.sum(sums) > 0, sums, sizes)  # every evaluation failed: by size
    exact = total * sums / jnp.sum(sums)
    base = jnp.floor(exact)
    left = total - jnp.sum(base)
    rank = jnp.argsort(jnp.argsort(-(exact - base), stable=True), stable=True)
    return (base + (rank < left)).astype(jnp.int32)


def refocus_offspring(fitness: jax.Array, species: jax.Array, total: int) -> jax.Array:
    """int32[P] offspring per species id when the population stagnates: the species of the
    best genome gets `total // 2`, the species of the best genome outside it the rest, all
    others none (one species: it gets all), as the authors' C++ (`Population::epoch`)."""
    p = fitness.shape[0]
    first = species[jnp.argmax(fitness)]
    others = jnp.where(species != first, fitness, -jnp.inf)
    has_second = jnp.any(species != first)
    second = species[jnp.argmax(others)]
    counts = jnp.zeros(p, jnp.int32).at[first].set(jnp.where(has_second, total // 2, total))
    return counts.at[second].add(jnp.where(has_second, total - total // 2, 0))


def neat_networks(
    num_inputs: int,
    num_outputs: int,
    *,
    population_size: int = 150,
    max_nodes: int = 128,
    max_connections: int = 48,
    compatibility_threshold: float = 3.0,
    add_node_rate: float = 0.03,
    add_connection_rate: float = 0.05,
    crossover_rate: float = 0.75,
    survival: float = 0.2,
    weight_sigma: float = 2.5,
    stagnation: int = 15,
    refocus: int = 20,
    max_species: int = 32,
) -> Searcher:
    """NEAT over networks of `num_inputs` inputs and `num_outputs` sigmoid outputs (the
    paper's XOR settings by default; species persist across generations, and one whose
    best has not improved for `stagnation` generations does not reproduce; after `refocus`
    generations without a new population best, only the two best species do). `weight_sigma`:
    the std of a weight perturbation (the paper gives none; on XOR, 50 seeds, 2.5 solves 92%
    within 100 generations, 0.5 62%: `experiments/neat_xor.py`). At most `max_species`
    species live at once (past that, a genome joins the closest). `ask` returns a
    generation of `population_size` genomes (the first: minimal genomes with random
    weights); `tell` their fitness. `activate(genome, state.node_order, x, num_outputs)`
    runs one."""
    check_positive(
        "neat_networks",
        num_inputs=num_inputs,
        num_outputs=num_outputs,
        population_size=population_size,
        stagnation=stagnation,
        refocus=refocus,
        max_species=max_species,
    )
    first_hidden = num_inputs + 1 + num_outputs
    if max_nodes <= first_hidden:
        raise ValueError(
            f"neat_networks: `max_nodes` must exceed inputs + bias + outputs = {first_hidden}; "
            f"got {max_nodes}"
        )
    if max_connections < (num_inputs + 1) * num_outputs + 2:
        raise ValueError(
            "neat_networks: `max_connections` must hold the minimal genome's "
            f"{(num_inputs + 1) * num_outputs} genes and room to grow; got {max_connections}"
        )
    for name, v in (
        ("add_node_rate", add_node_rate),
        ("add_connection_rate", add_connection_rate),
        ("crossover_rate", crossover_rate),
        ("survival", survival),
    ):
        if not 0.0 <= v <= 1.0:
            raise ValueError(f"neat_networks: `{name}` must be in [0, 1]; got {v!r}")
    s = Settings(
        num_inputs,
        num_outputs,
        max_nodes,
        max_connections,
        population_size,
        threshold=compatibility_threshold,
        add_node_rate=add_node_rate,
        add_connection_rate=add_connection_rate,
        crossover_rate=crossover_rate,
        survival=survival,
        weight_sigma=weight_sigma,
        stagnation=stagnation,
        refocus=refocus,
        max_species=min(max_species, population_size),  # ids index population-sized arrays
    )

    def init(key: jax.Array) -> NeatNetworksState:
        population = jax.vmap(lambda k: minimal_genome(k, s))(
            jax.random.split(key, population_size)
        )
        n_min = (num_inputs + 1) * num_outputs
        innovation_of = jnp.full((max_nodes, max_nodes), -1, jnp.int32)
        ins = jnp.repeat(jnp.arange(num_inputs + 1), num_outputs)
        outs = jnp.tile(num_inputs + 1 + jnp.arange(num_outputs), num_inputs + 1)
        innovation_of = innovation_of.at[ins, outs].set(jnp.arange(n_min, dtype=jnp.int32))
        order = jnp.where(jnp.arange(max_nodes) < num_inputs + 1, 0.0, 1.0)
        return NeatNetworksState(
            population,
            jnp.full((population_size,), -jnp.inf),
            innovation_of,
            jnp.asarray(n_min, jnp.int32),
            jnp.full((max_nodes * max_nodes,), -1, jnp.int32),
            jnp.asarray(first_hidden, jnp.int32),
            order.astype(jnp.float32),
            jnp.zeros((), jnp.int32),
            jax.tree.map(lambda a: a[0], population),
            jnp.asarray(-jnp.inf, jnp.float32),
            no_species(population, s),
            jnp.zeros((), jnp.int32),
        )

    def breed(key: jax.Array, state: NeatNetworksState) -> tuple[Genome, NeatNetworksState]:
        fit = state.fitness
        key, k_species = jax.random.split(key)
        species, groups = assign_species(k_species, state.population, fit, state.species, s)
        shared = shared_fitness(fit, species)
        shared = jnp.where(stagnant_members(fit, species, groups, s), 0.0, shared)
        refocus_now = state.since_record >= s.refocus
        counts = jnp.where(
            refocus_now,
            refocus_offspring(fit, species, population_size),
            allot_offspring(shared, species, population_size),
        )
        # the two species kept by a refocus start their stagnation count afresh
        groups = groups._replace(
            stale=jnp.where(refocus_now & (counts[: s.max_species] > 0), 0, groups.stale)
        )
        starts = jnp.cumsum(counts) - counts
        size = jnp.zeros(population_size, jnp.int32).at[species].add(1)
        child_species = jnp.searchsorted(jnp.cumsum(counts), jnp.arange(population_size), "right")
        # rank of each member within its species (fittest 0)
        order = jnp.argsort(-fit, stable=True)
        rank_sorted = jnp.zeros(population_size, jnp.int32)

        def rank_step(seen, m):
            sid = species[m]
            return seen.at[sid].add(1), seen[sid]

        _, ranks_in_order = jax.lax.scan(rank_step, rank_sorted, order)
        rank = jnp.zeros(population_size, jnp.int32).at[order].set(ranks_in_order)
        tables = _Tables(
            state.innovation_of,
            state.next_innovation,
            state.split_node,
            state.next_node,
            state.node_order,
        )

        def child(tables, inp):
            c, k = inp
            sid = child_species[c]
            k1, k2, k_cross, k_do, k_mut = jax.random.split(k, 5)
            keep = jnp.maximum(1, jnp.ceil(s.survival * size[sid]).astype(jnp.int32))
            # a refocus breeds every child of a species from its champion (mutated copies)
            pool = (species == sid) & jnp.where(refocus_now, rank == 0, rank < keep)
            logits = jnp.where(pool, 0.0, -jnp.inf)
            a = jax.random.categorical(k1, logits)
            b = jax.random.categorical(k2, logits)
            a_first = fit[a] >= fit[b]
            fitter, other = jnp.where(a_first, a, b), jnp.where(a_first, b, a)
            pa = jax.tree.map(lambda x: x[fitter], state.population)
            pb = jax.tree.map(lambda x: x[other], state.population)
            crossed = crossover(k_cross, pa, pb)
            do_cross = jax.random.bernoulli(k_do, s.crossover_rate) & ~refocus_now
            g = jax.tree.map(lambda x, y: jnp.where(do_cross, x, y), crossed, pa)
            g, tables = mutate(k_mut, g, tables, s)
            # the champion of a species of `champion_size` or more is copied unchanged
            champion = ((c == starts[sid]) & (size[sid] >= s.champion_size)) | (c == 0)
            best = jnp.where(
                c == 0, jnp.argmax(fit), jnp.argmax(jnp.where(species == sid, fit, -jnp.inf))
            )
            kept = jax.tree.map(lambda x: x[best], state.population)
            return tables, jax.tree.map(lambda x, y: jnp.where(champion, x, y), kept, g)

        keys = jax.random.split(key, population_size)
        tables, children = jax.lax.scan(child, tables, (jnp.arange(population_size), keys))
        return children, state._replace(
            species=groups,
            since_record=jnp.where(refocus_now, 0, state.since_record),
            innovation_of=tables.innovation_of,
            next_innovation=tables.next_innovation,
            split_node=tables.split_node,
            next_node=tables.next_node,
            node_order=tables.node_order,
        )

    def ask(key: jax.Array, state: NeatNetworksState) -> tuple[Genome, NeatNetworksState]:
        return jax.lax.cond(
            state.generation == 0, lambda: (state.population, state), lambda: breed(key, state)
        )

    def tell(state: NeatNetworksState, genomes: Genome, fitness: jax.Array) -> NeatNetworksState:
        fitness = clean_fitness(fitness)
        record = jnp.max(fitness) > state.best_fitness
        best, best_fitness = update_incumbent(state.best, state.best_fitness, genomes, fitness)
        return state._replace(
            since_record=jnp.where(record, 0, state.since_record + 1),
            population=genomes,
            fitness=fitness,
            generation=state.generation + 1,
            best=best,
            best_fitness=best_fitness,
        )

    return Searcher(init, ask, tell, batch_size=population_size)


# NumPy constants: a JAX array here would start JAX's backend when `jnas.search` is
# imported (its thread pool then sized before a caller can pin or configure the process)
XOR_X = np.asarray([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]], np.float32)
XOR_Y = np.asarray([0.0, 1.0, 1.0, 0.0], np.float32)


def xor_fitness(genome: Genome, node_order: jax.Array) -> tuple[jax.Array, jax.Array]:
    """The paper's XOR fitness `(4 - sum |output - target|)^2` and whether the network
    solves XOR (every output on the right side of 0.5)."""
    out = jax.vmap(lambda x: activate(genome, node_order, x, 1)[0])(XOR_X)
    return (4.0 - jnp.sum(jnp.abs(out - XOR_Y))) ** 2, jnp.all((out > 0.5) == (XOR_Y > 0.5))
