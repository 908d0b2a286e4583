"""NEAT-style evolution: speciation, crossover, elitism, weight genes, bad arguments."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jnas import search
from jnas.search._neat import compatibility, speciate
from jnas.spaces import NB201, Hierarchical, NB201Arch, Sequential


def test_compatibility_is_the_fraction_of_differing_genes_plus_weights(key):
    space = NB201()
    archs = jax.vmap(space.sample)(jax.random.split(key, 5))
    weights = jax.random.normal(key, (5, 3))
    d = np.asarray(compatibility(archs, weights, 0.4))
    ops, w = np.asarray(archs.ops), np.asarray(weights)
    for i, j in itertools.product(range(5), repeat=2):
        want = np.mean(ops[i] != ops[j]) + 0.4 * np.mean(np.abs(w[i] - w[j]))
        np.testing.assert_allclose(d[i, j], want, rtol=1e-6)


def test_speciate_joins_the_first_close_representative_fittest_first():
    # members 0, 2, 4 are close to each other, 1 and 3 to each other, 3 is the fittest
    x = np.array([0.0, 10.0, 0.1, 10.1, 0.2])
    distance = jnp.asarray(np.abs(x[:, None] - x[None, :]), jnp.float32)
    fitness = jnp.array([1.0, 2.0, 0.5, 5.0, 3.0])
    species = np.asarray(speciate(distance, fitness, 1.0))
    # visiting order 3, 4, 1, 0, 2: 3 founds species 0, 4 founds species 1
    np.testing.assert_array_equal(species, [1, 0, 1, 0, 1])
    # a threshold below every distance: each member its own species, ids in visiting order
    np.testing.assert_array_equal(speciate(distance, fitness, 0.05), [3, 2, 4, 0, 1])
    # joining founds nothing: the next new species is id 1, not 2
    x = np.array([0.0, 0.5, 10.0])
    distance = jnp.asarray(np.abs(x[:, None] - x[None, :]), jnp.float32)
    order = jnp.array([3.0, 2.0, 1.0])
    np.testing.assert_array_equal(speciate(distance, order, 1.0), [0, 0, 1])
    # "closer than" the threshold (Stanley & Miikkulainen: delta < delta_t), so a
    # distance equal to it founds a species of its own
    np.testing.assert_array_equal(speciate(distance, order, 0.5), [0, 1, 2])


def _generation(searcher, space, key, fitness_fn, generations):
    state = searcher.init(key)
    for k in jax.random.split(key, generations):
        archs, state = searcher.ask(k, state)
        state = searcher.tell(state, archs, fitness_fn(archs))
    return state


def test_crossover_children_take_every_gene_from_two_members_of_the_population(key):
    space = NB201()
    searcher = search.neat(
        space,
        12,
        elitism=0,
        crossover_rate=1.0,
        mutation_rate=0.0,
        compatibility_threshold=2.0,
        survival=1.0,
    )
    state = _generation(searcher, space, key, lambda a: jnp.sum(a.ops, 1).astype(float), 1)
    children, _ = searcher.ask(jax.random.key(7), state)
    pop, kids = np.asarray(state.population.ops), np.asarray(children.ops)
    pairs = list(itertools.product(range(12), repeat=2))
    for child in kids:
        assert any(np.all((child == pop[i]) | (child == pop[j])) for i, j in pairs)
    # and crossover does mix: some child equals no single member
    assert any(not any(np.array_equal(child, p) for p in pop) for child in kids)


def test_elites_survive_unchanged_and_are_not_re_asked(key):
    space = NB201()
    searcher = search.neat(space, 8, elitism=3)
    assert searcher.batch_size == 5
    fit = lambda a: jnp.sum(a.ops * jnp.arange(6)[None], 1).astype(jnp.float32)
    # the first generation asks the initial members past the elites' slots; the three it
    # never asked carry no fitness, and once told generations outrank them they are gone
    first = _generation(searcher, space, key, fit, 1)
    np.testing.assert_array_equal(first.fitness[:3], -np.inf)
    state = _generation(searcher, space, key, fit, 4)
    assert np.isfinite(np.asarray(state.fitness)).all()
    archs, asked = searcher.ask(key, state)
    told = searcher.tell(asked, archs, jnp.full((5,), -1.0))  # worse than every elite
    order = np.argsort(-np.asarray(state.fitness), kind="stable")[:3]
    np.testing.assert_array_equal(told.population.ops[:3], state.population.ops[order])
    np.testing.assert_array_equal(told.fitness[:3], state.fitness[order])
    np.testing.assert_array_equal(told.fitness[3:], -1.0)


@pytest.mark.parametrize(
    "space", [Sequential(max_layers=6), Hierarchical()], ids=["sequential", "hierarchical"]
)
def test_neat_evolves_valid_sequences_and_motifs(space, key):
    searcher = search.neat(space, 12)
    w = jax.random.normal(jax.random.key(3), space.one_hot(space.sample(key)).size)
    fit = lambda a: jax.vmap(space.one_hot)(a).reshape(jax.tree.leaves(a)[0].shape[0], -1) @ w
    ask, tell = jax.jit(searcher.ask), jax.jit(searcher.tell)
    state = searcher.init(key)
    means = []
    for k in jax.random.split(key, 12):
        archs, state = ask(k, state)
        assert bool(jnp.all(jax.vmap(space.is_valid)(archs)))
        means.append(float(jnp.mean(fit(archs))))
        state = tell(state, archs, fit(archs))
    assert np.mean(means[-3:]) > means[0] + 2.0  # the population climbs the objective


def test_weight_genes_evolve_towards_the_optimum(key):
    space = NB201()
    target = jnp.array([1.0, -2.0, 0.5, 3.0])
    searcher = search.neat(space, 20, weight_dim=4, weight_sigma=0.2)
    state = searcher.init(key)
    genomes, _ = searcher.ask(key, state)
    assert isinstance(genomes, search.NeatGenome)
    assert genomes.weights.shape == (18, 4)
    fit = lambda g: -jnp.sum(jnp.square(g.weights - target[None]), -1)
    first = float(jnp.max(fit(genomes)))
    ask, tell = jax.jit(searcher.ask), jax.jit(searcher.tell)
    for k in jax.random.split(key, 40):
        genomes, state = ask(k, state)
        state = tell(state, genomes, fit(genomes))
    assert first < -3.0
    assert float(state.best_fitness) > -0.3
    np.testing.assert_allclose(
        fit(jax.tree.map(lambda x: x[None], state.best))[0], state.best_fitness
    )


def test_neat_validates_its_arguments():
    with pytest.raises(ValueError, match="`elitism` must be an integer in"):
        search.neat(NB201(), 4, elitism=4)
    with pytest.raises(ValueError, match="`crossover_rate` must be in"):
        search.neat(NB201(), crossover_rate=1.5)
    with pytest.raises(ValueError, match="`compatibility_threshold` must be > 0"):
        search.neat(NB201(), compatibility_threshold=0.0)
    with pytest.raises(ValueError, match="`weight_dim` must be"):
        search.neat(NB201(), weight_dim=-1)
    for name in ("survival", "crossover_rate", "mutation_rate"):
        with pytest.raises(ValueError, match=f"`{name}` must be in"):
            search.neat(NB201(), **{name: -0.01})
        search.neat(NB201(), **{name: 1.0})  # the closed ends are allowed
    search.neat(NB201(), crossover_rate=0.0, mutation_rate=0.0)
    with pytest.raises(ValueError, match="`survival` must be > 0"):
        search.neat(NB201(), survival=0.0)
    with pytest.raises(ValueError, match=r"lacks.*is_valid"):
        search.neat(type("S", (), {"sample": lambda s, k: 0, "mutate": lambda s, k, a: 0})())


def _children_species(key, ops, fitness, species, survival, parents=None):
    """Species counts of 4,000 children asked of a 5-member NB201 population (`ops`,
    `fitness`, known `species` far apart), no crossover: each child is one mutation from
    its parent, so its nearest member names the species that bred it (and, given the
    `parents`' indices, each child is one mutation from one of them)."""
    searcher = search.neat(NB201(), 5, elitism=0, survival=survival, crossover_rate=0.0)
    state = searcher.init(key)
    state = state._replace(
        population=state.population._replace(ops=jnp.asarray(ops, jnp.int8)),
        fitness=jnp.asarray(fitness),
        generation=jnp.asarray(1, jnp.int32),
    )
    children = np.asarray(
        jax.vmap(lambda k: searcher.ask(k, state)[0].ops)(jax.random.split(key, 800))
    ).reshape(-1, 6)
    apart = (children[:, None, :] != np.asarray(ops)[None]).sum(-1)  # [children, members]
    # one mutation from a member (0 where a member's mutant is its species' other member)
    assert (apart.min(1) <= 1).all()
    if parents is not None:
        assert (apart[:, parents].min(1) <= 1).all()
    return np.bincount(species[np.argmin(apart, 1)], minlength=species.max() + 1)


def test_offspring_go_to_species_in_proportion_to_their_mean_shifted_fitness(key):
    """Explicit fitness sharing (Stanley & Miikkulainen 2002, Section 3.3): a species gets
    offspring in proportion to the *mean* of its members' fitness (here shifted by the
    lowest parent's, plus 1e-3), not their sum, so a crowded niche does not win by
    numbers. Three species far apart (A two members, B one, C two; 5+ genes between
    species, 1 within); 4,000 children against NumPy's proportions (a chi-square test)."""
    from scipy import stats

    ops = [[0] * 6, [1] + [0] * 5, [2] * 6, [4] * 6, [4] * 5 + [3]]
    fitness = np.array([1.0, 3.0, 5.0, 0.0, 2.0], np.float32)
    species = np.array([0, 0, 1, 2, 2])
    counts = _children_species(key, ops, fitness, species, survival=1.0)
    shifted = fitness.astype(np.float64) - fitness.min() + 1e-3
    mean = np.array([shifted[species == s].mean() for s in range(3)])
    assert stats.chisquare(counts, mean / mean.sum() * counts.sum()).pvalue > 1e-3, counts


@pytest.mark.parametrize(
    ("fitness", "share"),
    [([2.0] * 5, [1, 1, 1]), ([0.0, 0.0, 1e-3, 2e-3, 2e-3], [1, 2, 3])],
    ids=["all-equal", "gaps-of-1e-3"],
)
def test_the_lowest_species_keeps_a_share(key, fitness, share):
    """The shift adds 1e-3 past the lowest parent's fitness, so the lowest species still
    breeds: equal fitness everywhere splits the children evenly (without it every share
    is 0), and gaps of 1e-3 give shares 1 : 2 : 3 (a chi-square test, 4,000 children)."""
    from scipy import stats

    ops = [[0] * 6, [1] + [0] * 5, [2] * 6, [4] * 6, [4] * 5 + [3]]
    species = np.array([0, 0, 1, 2, 2])
    counts = _children_species(key, ops, np.asarray(fitness, np.float32), species, 1.0)
    want = np.asarray(share, np.float64) / sum(share) * counts.sum()
    assert stats.chisquare(counts, want).pvalue > 1e-3, counts


def test_weight_genes_mutate_as_neat_does(key):
    """Each weight of a child (no crossover: its fitter parent's, all 3.0 here) is
    perturbed by N(0, sigma) with probability 0.8, else redrawn from N(0, 1) with
    probability 0.5 (0.1 of all), else kept (0.1): 16,000 weights against that mixture,
    the kept share by its binomial spread and the changed ones by a Kolmogorov-Smirnov
    test against 8/9 N(3, sigma) + 1/9 N(0, 1)."""
    from scipy import stats

    sigma = 0.5
    searcher = search.neat(
        NB201(), 5, elitism=0, crossover_rate=0.0, weight_dim=4, weight_sigma=sigma
    )
    state = searcher.init(key)
    state = state._replace(
        population=state.population._replace(weights=jnp.full((5, 4), 3.0)),
        fitness=jnp.arange(5.0),
        generation=jnp.asarray(1, jnp.int32),
    )
    w = np.asarray(
        jax.vmap(lambda k: searcher.ask(k, state)[0].weights)(jax.random.split(key, 800))
    ).ravel()
    kept = w == 3.0
    assert abs(kept.mean() - 0.1) < 4 * np.sqrt(0.09 / w.size), kept.mean()

    def cdf(v):
        return 8 / 9 * stats.norm.cdf(v, 3.0, sigma) + 1 / 9 * stats.norm.cdf(v)

    assert stats.kstest(w[~kept], cdf).pvalue > 1e-3


@pytest.mark.parametrize("survival", [0.5, 0.25])
def test_only_the_top_survival_fraction_of_each_species_breeds(key, survival):
    """A species' parents are its best ceil(survival * size) members (ties by position),
    and its share of offspring is their mean shifted fitness. Species A: fitness 0, 0, 10,
    0 (its best not first, so position alone cannot pass for rank); species B: 4. At
    survival 0.5 A breeds from {10, the first 0}, at 0.25 from {10} alone, so A gets 56 % or
    71 % of the children, against 39 % were all its members parents; 4,000 children
    against the NumPy derivation (a chi-square test)."""
    from scipy import stats

    ops = [[1] + [0] * 5, [0, 1] + [0] * 4, [0] * 6, [0, 0, 1, 0, 0, 0], [4] * 6]
    fitness = np.array([0.0, 0.0, 10.0, 0.0, 4.0], np.float32)
    species = np.array([0, 0, 0, 0, 1])
    means, parents = [], []
    for s in range(2):
        members = np.flatnonzero(species == s)
        best = members[np.argsort(-fitness[members], kind="stable")]
        top = best[: int(np.ceil(survival * len(members)))]
        parents += top.tolist()
        means.append(fitness[top].astype(np.float64))
    # only those breed: A's other members (one gene from A's best) are not parents
    counts = _children_species(key, ops, fitness, species, survival, parents)
    low = min(m.min() for m in means)
    share = np.array([np.mean(m - low + 1e-3) for m in means])
    assert stats.chisquare(counts, share / share.sum() * counts.sum()).pvalue > 1e-3, counts


def test_crossover_is_uniform_or_one_point_by_a_fair_coin_and_falls_back_to_the_fitter_parent():
    """Parents all-0 and all-1 on NB201's 6 genes (every child valid): a child's pattern of
    genes from the fitter parent has probability 1/2 * 1/64 (uniform) + 1/2 * 1/5 when it is
    a prefix of k = 1..5 genes (one-point, cut uniform). Under a space that rejects children
    whose first gene is not the fitter parent's, each child has it, or is that parent."""
    from jnas.search._neat import crossover

    space = NB201()
    a1 = NB201Arch(ops=jnp.zeros(6, jnp.int8))
    a2 = NB201Arch(ops=jnp.ones(6, jnp.int8))
    w = jnp.zeros(0)
    keys = jax.random.split(jax.random.key(0), 20_000)
    kids = jax.vmap(lambda k: crossover(k, space, a1, w, a2, w, 4)[0])(keys)
    pattern = np.asarray(kids.ops) == 0  # True: from the fitter parent
    code = pattern @ (2 ** np.arange(6))
    freq = np.bincount(code, minlength=64) / len(code)
    want = np.full(64, 0.5 / 64)
    for k in range(1, 6):
        want[(2 ** np.arange(k)).sum()] += 0.5 / 5
    assert 0.5 * np.abs(freq - want).sum() < 0.04  # total variation; sampling: ~0.02

    class FirstGeneFromParentOne(NB201):
        def is_valid(self, arch):
            return arch.ops[0] == 0

    strict = FirstGeneFromParentOne()
    one_try = jax.vmap(lambda k: crossover(k, strict, a1, w, a2, w, 1)[0])(keys[:2000])
    ops = np.asarray(one_try.ops)
    assert np.all(ops[:, 0] == 0)
    fell_back = np.all(ops == 0, axis=1)
    # rejected: a uniform child's first gene from a2 (one-point cuts after >= 1 gene), 1/4;
    # plus a uniform child that is a1 itself, 1/128
    assert fell_back.mean() == pytest.approx(0.25 + 1 / 128, abs=0.03)
    # with 4 tries the first accepted one is taken: the fallback is rare (1/4^4 + 1/128)
    four = np.asarray(jax.vmap(lambda k: crossover(k, strict, a1, w, a2, w, 4)[0])(keys[:2000]).ops)
    assert np.all(four[:, 0] == 0)
    assert np.all(four == 0, axis=1).mean() < 0.03


def test_weight_genes_cross_over_uniformly():
    """A crossed child's weight genes: each from either parent by its own fair coin (the
    256 patterns of 8 genes equally likely: a chi-square test over 20,000 children)."""
    from scipy import stats

    from jnas.search._neat import crossover

    space = NB201()
    a1, a2 = NB201Arch(ops=jnp.zeros(6, jnp.int8)), NB201Arch(ops=jnp.ones(6, jnp.int8))
    w1, w2 = jnp.zeros(8), jnp.ones(8)
    keys = jax.random.split(jax.random.key(1), 20_000)
    w = np.asarray(jax.vmap(lambda k: crossover(k, space, a1, w1, a2, w2, 4)[1])(keys))
    assert set(np.unique(w)) == {0.0, 1.0}
    counts = np.bincount((w == 0) @ (2 ** np.arange(8)), minlength=256)
    assert stats.chisquare(counts).pvalue > 1e-3


def test_defaults_written_out(key):
    """`neat(space)` asks what its settings written out ask, generation by generation:
    20 genomes, 2 elites, threshold 0.3, the top half breeding, 75 % crossed (NEAT's
    25 % from mutation alone), 80 % mutated, 8 crossover tries, no weight genes (on
    MetaQNN's sequences, where crossed children are often invalid and species grow as
    the population converges; 7 tries for 8 still passes: they differ only when seven
    crossed children in a row are invalid); and with weight genes, sigma 0.5 and NEAT's
    weight coefficient c3 = 0.4."""
    written = dict(
        elitism=2,
        compatibility_threshold=0.3,
        survival=0.5,
        crossover_rate=0.75,
        mutation_rate=0.8,
        crossover_tries=8,
    )
    seq, cell = Sequential(), NB201()
    pairs = [
        (seq, search.neat(seq), search.neat(seq, 20, weight_dim=0, **written)),
        (
            cell,
            search.neat(cell, weight_dim=3),
            search.neat(
                cell, 20, weight_dim=3, weight_sigma=0.5, weight_coefficient=0.4, **written
            ),
        ),
    ]
    for space, default, explicit in pairs:
        table = jax.random.normal(jax.random.key(5), space.one_hot(space.sample(key)).shape)

        def fitness(candidates, space=space, table=table):
            archs = getattr(candidates, "arch", candidates)
            score = jnp.sum(jax.vmap(space.one_hot)(archs) * table[None], (-2, -1))
            if hasattr(candidates, "weights"):
                score = score - jnp.sum(jnp.square(candidates.weights - 1.0), -1)
            return score

        assert default.batch_size == explicit.batch_size == 18
        searchers = (default, explicit)
        states = [s.init(key) for s in searchers]
        asks = [jax.jit(s.ask) for s in searchers]
        tells = [jax.jit(s.tell) for s in searchers]
        for k in jax.random.split(key, 4):
            asked = [ask(k, st)[0] for ask, st in zip(asks, states, strict=True)]
            for a, b in zip(jax.tree.leaves(asked[0]), jax.tree.leaves(asked[1]), strict=True):
                np.testing.assert_array_equal(a, b)
            states = [
                tell(st, c, fitness(c)) for tell, st, c in zip(tells, states, asked, strict=True)
            ]


@pytest.mark.parametrize(
    ("crossover_rate", "mutation_rate", "mutated"),
    [(1.0, 1.0, 1.0), (1.0, 0.0, 0.0), (0.0, 0.0, 1.0), (1.0, 0.5, 0.5), (0.5, 0.0, 0.5)],
)
def test_a_child_is_mutated_at_mutation_rate_after_crossover_and_always_without(
    key, crossover_rate, mutation_rate, mutated
):
    """A population of one genome five times: a crossed child is that genome, so the
    children one gene away are the mutated ones: a share `mutation_rate` of the crossed
    children and every child bred without crossover (2,000 children; binomial spread)."""
    space = NB201()
    searcher = search.neat(
        space, 5, elitism=0, crossover_rate=crossover_rate, mutation_rate=mutation_rate
    )
    state = searcher.init(key)
    genome = np.asarray([0, 1, 2, 3, 4, 0], np.int8)
    state = state._replace(
        population=NB201Arch(jnp.asarray(np.tile(genome, (5, 1)))),
        fitness=jnp.arange(5.0),
        generation=jnp.asarray(1, jnp.int32),
    )
    children = np.asarray(
        jax.vmap(lambda k: searcher.ask(k, state)[0].ops)(jax.random.split(key, 400))
    ).reshape(-1, 6)
    changed = (children != genome).sum(1)
    assert set(np.unique(changed)) <= {0, 1}
    share = (changed == 1).mean()
    assert abs(share - mutated) <= 4 * np.sqrt(mutated * (1 - mutated) / len(changed)), share


def _nearest_parents(key, fitness):
    """For 2,000 children of five NB201 genomes six genes apart (one species each) with
    `fitness`, no crossover: the member each child is one mutation from."""
    ops = np.repeat(np.arange(5, dtype=np.int8)[:, None], 6, 1)
    searcher = search.neat(NB201(), 5, elitism=0, crossover_rate=0.0)
    state = searcher.init(key)
    state = state._replace(
        population=NB201Arch(jnp.asarray(ops)),
        fitness=jnp.asarray(fitness, jnp.float32),
        generation=jnp.asarray(1, jnp.int32),
    )
    children = np.asarray(
        jax.vmap(lambda k: searcher.ask(k, state)[0].ops)(jax.random.split(key, 400))
    ).reshape(-1, 6)
    apart = (children[:, None, :] != ops[None]).sum(-1)
    assert (apart.min(1) == 1).all()
    return np.argmin(apart, 1)


def test_unevaluated_members_breed_only_when_no_member_was_evaluated(key):
    """A member without a fitness (never told, or NaN: -inf) is no parent while any member
    has one; when none has (a generation told only NaN), every member is a parent."""
    parents = _nearest_parents(key, [1.0, 1.0, -np.inf, 1.0, 1.0])
    assert 2 not in parents
    assert set(parents) == {0, 1, 3, 4}
    parents = _nearest_parents(key, [-np.inf] * 5)
    assert set(parents) == {0, 1, 2, 3, 4}


def test_generation_counts_tells_and_the_incumbent_is_the_first_best(key):
    """`generation` counts the tells; the incumbent is the first genome told with the best
    fitness: a later generation that only ties it does not replace it."""
    space = NB201()
    searcher = search.neat(space, 6, elitism=1)
    state = searcher.init(key)
    ask, tell = jax.jit(searcher.ask), jax.jit(searcher.tell)
    archs, state = ask(jax.random.key(1), state)
    state = tell(state, archs, jnp.asarray([0.0, 5.0, 1.0, 2.0, 3.0]))
    first_best = np.asarray(archs.ops[1])
    for g, k in enumerate(jax.random.split(jax.random.key(2), 3), start=2):
        archs, state = ask(k, state)
        # the tying genomes (0 and 2) are others, so a replaced incumbent would show
        assert not np.array_equal(archs.ops[0], first_best)
        assert not np.array_equal(archs.ops[2], first_best)
        state = tell(state, archs, jnp.asarray([5.0, 1.0, 5.0, 0.0, 2.0]))
        assert int(state.generation) == g
        assert float(state.best_fitness) == 5.0
        np.testing.assert_array_equal(state.best.ops, first_best)
