"""Local search and tournament evolution: their defining behaviour on hand-made objectives."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jnas import search
from jnas.spaces import NB201, NB201Arch


def _drive(searcher, fitness_fn, key, steps):
    state = searcher.init(key)
    seen = []
    for k in jax.random.split(key, steps):
        archs, state = searcher.ask(k, state)
        seen.append(np.asarray(archs.ops[0]))
        state = searcher.tell(state, archs, fitness_fn(archs))
    return state, seen


def test_local_search_climbs_to_the_optimum_of_a_unimodal_objective(key):
    """Fitness = number of edges equal to a target cell: every non-optimal cell has an
    improving neighbour, so best improvement reaches the target within 6 sweeps."""
    target = jnp.asarray([3, 3, 1, 2, 3, 0], jnp.int8)

    def fitness(archs):
        return jnp.sum(archs.ops == target[None, :], axis=1).astype(jnp.float32)

    state, seen = _drive(search.local_search(NB201()), fitness, key, 1 + 6 * 24)
    assert float(state.best_fitness) == 6.0
    np.testing.assert_array_equal(state.best.ops, target)
    # it evaluates neighbours of the current point: consecutive candidates of one sweep
    # differ from the current point in exactly one edge
    assert np.sum(seen[1] != seen[0]) == 1


def test_local_search_restarts_at_a_local_optimum(key):
    """A flat objective: the first sweep finds no improvement, so the next candidate is a
    fresh random sample, not a neighbour."""
    searcher = search.local_search(NB201())
    state, seen = _drive(searcher, lambda a: jnp.zeros(1), key, 1 + 24)
    assert bool(state.restart)  # the sweep of all 24 neighbours found nothing better
    assert len({tuple(s) for s in seen[1:]}) == 24  # each neighbour evaluated once
    archs, _ = searcher.ask(jax.random.key(7), state)
    assert np.sum(np.asarray(archs.ops[0]) != seen[0]) > 1  # a fresh sample, no neighbour


def test_tournament_evolution_keeps_the_best_members(key):
    searcher = search.tournament_evolution(NB201(), population_size=4, tournament_fraction=0.5)
    state = searcher.init(key)
    for i, k in enumerate(jax.random.split(key, 8)):
        archs, state = searcher.ask(k, state)
        state = searcher.tell(state, archs, jnp.array([float([5, 1, 7, 3, 0, 9, 2, 8][i])]))
    # no aging: the best four told values survive, whatever their age
    assert sorted(np.asarray(state.fitness).tolist()) == [5.0, 7.0, 8.0, 9.0]
    # a child only as good as the worst member does not replace it (HNAS: "better")
    newcomer = jax.tree.map(lambda a: a[None], NB201().sample(jax.random.key(99)))
    assert not (np.asarray(state.population.ops) == np.asarray(newcomer.ops)).all(-1).any()
    tied = searcher.tell(state, newcomer, jnp.array([5.0]))
    np.testing.assert_array_equal(tied.population.ops, state.population.ops)
    better = searcher.tell(state, newcomer, jnp.array([5.5]))
    worst = int(np.argmin(np.asarray(state.fitness)))
    np.testing.assert_array_equal(better.population.ops[worst], newcomer.ops[0])


def test_tournament_evolution_validates_its_fraction():
    for fraction in (0.0, 1.5):
        with pytest.raises(ValueError, match="`tournament_fraction`"):
            search.tournament_evolution(NB201(), tournament_fraction=fraction)


@pytest.mark.parametrize(
    ("make", "size", "sample"),
    [
        (
            lambda s: search.tournament_evolution(s, population_size=4, tournament_fraction=0.5),
            4,
            2,
        ),
        (
            lambda s: search.tournament_evolution(s, population_size=10, tournament_fraction=0.05),
            10,
            1,
        ),
        (lambda s: search.regularized_evolution(s, population_size=5, sample_size=3), 5, 3),
        # a sample as large as the population is allowed
        (lambda s: search.regularized_evolution(s, population_size=4, sample_size=4), 4, 4),
        # the defaults: the NB201 authors' scripts-search/algos/R-EA.sh (population 10,
        # sample 3 as its usage line runs it)
        (lambda s: search.regularized_evolution(s), 10, 3),
    ],
    ids=["tournament-4-of-0.5", "tournament-10-of-0.05", "rea-5-3", "rea-4-4", "rea-defaults"],
)
def test_the_parent_is_the_fittest_of_a_uniform_sample(key, make, size, sample):
    """Once the population is full, the parent of an asked child (the member one edit
    away) is the fittest of `sample` members drawn uniformly with replacement: the j-th
    fittest with probability ((P - j + 1)^s - (P - j)^s) / P^s (a chi-square test over
    2,000 asks, over the members 3+ edits from all others, whose children are told apart).
    `tournament_fraction * population_size` rounds to the sample, at least 1."""
    from scipy import stats

    space = NB201()
    searcher = make(space)
    state = searcher.init(key)
    for i, k in enumerate(jax.random.split(key, size)):
        archs, state = searcher.ask(k, state)
        state = searcher.tell(state, archs, jnp.asarray([float(i)]))
    children = jax.vmap(lambda k: searcher.ask(k, state)[0].ops[0])(
        jax.random.split(jax.random.key(11), 2000)
    )
    members = np.asarray(state.population.ops)
    rank = np.argsort(np.argsort(-np.asarray(state.fitness)))  # 0: the fittest
    j = np.arange(1, size + 1)
    p = ((size - j + 1.0) ** sample - (size - j) ** sample) / size**sample  # by rank
    # members 3+ edits from every other: a child one edit from one of them is its child
    apart = np.sum(members[:, None] != members[None], -1) + 99 * np.eye(size, dtype=int)
    isolated = np.flatnonzero(apart.min(1) >= 3)
    assert len(isolated) >= 3
    one_edit = np.sum(np.asarray(children)[:, None, :] != members[None], -1) == 1
    counts = one_edit[:, isolated].sum(0)
    expected = p[rank[isolated]] / p[rank[isolated]].sum() * counts.sum()
    assert stats.chisquare(counts, expected).pvalue > 1e-3, (counts, expected)


def test_local_search_asks_what_a_python_hill_climber_asks(key):
    """The asked cells against best-improvement hill climbing written as a Python loop:
    from a random cell, evaluate its neighbours in the space's order, move to the best
    (the first of equals) if it beats the current cell, else restart from the step's
    random sample. A rugged objective with ties (a random value per cell, rounded) makes
    it move, tie and restart; the incumbent is the first cell told with the best value."""
    space = NB201()
    values = np.round(np.asarray(jax.random.normal(jax.random.key(2), (space.size,))))

    index, sample = jax.jit(space.index), jax.jit(space.sample)
    neighbours_of = jax.jit(lambda arch: space.neighbors(arch)[0].ops)
    searcher = search.local_search(space)
    state = searcher.init(key)
    ask, tell = jax.jit(searcher.ask), jax.jit(searcher.tell)
    restart, restarts, moves, ties = True, 0, 0, 0
    incumbent, incumbent_f = None, -np.inf
    current = current_f = best = best_f = neighbours = None
    pos = 0
    for k in jax.random.split(key, 300):
        archs, state = ask(k, state)
        asked = np.asarray(archs.ops[0])
        want = np.asarray(sample(k).ops) if restart else neighbours[pos]
        np.testing.assert_array_equal(asked, want)
        f = float(values[int(index(NB201Arch(jnp.asarray(asked))))])
        state = tell(state, archs, jnp.asarray([f], jnp.float32))
        if f > incumbent_f:  # the incumbent: the first cell told with the best value
            incumbent, incumbent_f = asked, f
        else:
            ties += f == incumbent_f and not np.array_equal(asked, incumbent)
        np.testing.assert_array_equal(state.best.ops, incumbent)
        if restart:  # the sample becomes the current cell; its sweep starts
            restart, restarts, current, current_f = False, restarts + 1, asked, f
            neighbours, pos, best, best_f = (
                np.asarray(neighbours_of(NB201Arch(asked))),
                0,
                None,
                -np.inf,
            )
            continue
        if f > best_f:
            best, best_f = asked, f
        pos += 1
        if pos == len(neighbours):  # the sweep ends: move to its best, or restart
            if best_f > current_f:
                current, current_f, moves = best, best_f, moves + 1
                neighbours = np.asarray(neighbours_of(NB201Arch(current)))
            else:
                restart = True
            pos, best, best_f = 0, None, -np.inf
    assert restarts > 2
    assert moves > 2
    assert ties > 0  # a later cell equal to the incumbent did not replace it
