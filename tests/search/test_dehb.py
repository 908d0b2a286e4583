"""DEHB: the authors' brackets, successive halving in the first iteration (promotions skip
what the higher subpopulation holds), rand/1/bin trials from the fidelity below checked
against the formula in NumPy, DE's selection, and the search it makes."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jnas import search
from jnas.spaces import NB201


def _rungs(schedule):
    first = np.r_[True, np.diff(schedule["rung"]) != 0] | np.r_[True, schedule["slot"][1:] == 0]
    return [
        (int(f), int(n))
        for f, n in zip(schedule["fidelity"][first], schedule["rung_size"][first], strict=True)
    ]


def test_schedule_is_the_authors_brackets():
    # DEHB's get_next_iteration: n0 = floor((s_max + 1) / (s + 1)) * eta^s, rung i keeps
    # max(int(n0 eta^-i), 1); worked by hand for eta = 3 and 5 budgets (1 .. 81)
    assert _rungs(search.dehb_schedule(5, 3)) == [
        (0, 81), (1, 27), (2, 9), (3, 3), (4, 1),
        (1, 27), (2, 9), (3, 3), (4, 1),
        (2, 9), (3, 3), (4, 1),
        (3, 6), (4, 2),
        (4, 5),
    ]  # fmt: skip
    assert _rungs(search.dehb_schedule(2, 3)) == [(0, 3), (1, 1), (1, 2)]


def _cell_key(archs):
    return tuple(np.asarray(archs.ops[0]).tolist())


def test_first_iteration_promotes_the_best_below_except_what_the_rung_above_holds(key):
    searcher = search.dehb(NB201(), fidelities=3, eta=3)  # brackets [9, 3, 1], [3, 1], [3]
    ask, tell = jax.jit(searcher.ask), jax.jit(searcher.tell)
    state = searcher.init(key)
    keys = iter(jax.random.split(key, 20))
    by_fitness = {}
    for i in range(9):  # rung 0: nine cells at fidelity 0, told fitness 0 .. 8
        archs, state = ask(next(keys), state)
        assert int(searcher.fidelity(state)[0]) == 0
        by_fitness[float(i)] = _cell_key(archs)
        state = tell(state, archs, jnp.asarray([float(i)]))
    promoted = []
    for told in (5.0, 9.0, 7.0):  # rung 1: the best three, best first
        archs, state = ask(next(keys), state)
        assert int(searcher.fidelity(state)[0]) == 1
        promoted.append(_cell_key(archs))
        state = tell(state, archs, jnp.asarray([told]))
    assert promoted == [by_fitness[8.0], by_fitness[7.0], by_fitness[6.0]]
    archs, state = ask(next(keys), state)  # rung 2: the best of rung 1 (told 9)
    assert int(searcher.fidelity(state)[0]) == 2
    assert _cell_key(archs) == by_fitness[7.0]
    state = tell(state, archs, jnp.asarray([1.0]))
    for _ in range(3):  # bracket 2 starts at fidelity 1 with DE trials, all worse
        archs, state = ask(next(keys), state)
        assert int(searcher.fidelity(state)[0]) == 1
        state = tell(state, archs, jnp.asarray([-1.0]))
    # its promotion: fidelity 1's best (told 9) is already at fidelity 2: the next (7)
    archs, state = ask(next(keys), state)
    assert int(searcher.fidelity(state)[0]) == 2
    assert _cell_key(archs) == by_fitness[6.0]


def _after_first_iteration(key, **kw):
    """A 3-fidelity DEHB state in its second iteration, at its first bracket's rung 1 (fidelity 1,
    3 trials, parents from fidelity 0), fidelity 0's best three set to known vectors."""
    searcher = search.dehb(NB201(), fidelities=3, eta=3, **kw)
    state = searcher.init(key)
    cycle = search.dehb_schedule(3, 3)["slot"].shape[0]
    parents = np.array(
        [
            [0.40, 0.45, 0.50, 0.55, 0.60, 0.65],
            [0.30, 0.35, 0.40, 0.45, 0.50, 0.55],
            [0.62, 0.58, 0.54, 0.50, 0.46, 0.42],
        ],
        np.float32,
    )
    vectors = np.asarray(state.vectors).copy()
    fitness = np.full(state.vector_fitness.shape, -np.inf, np.float32)
    fitness[0, :9] = np.arange(9) - 20.0  # the other cells of fidelity 0: worse
    vectors[0, 3:6] = parents
    fitness[0, 3:6] = [5.0, 6.0, 7.0]
    fitness[1, :3] = 0.0
    state = state._replace(
        step=jnp.asarray(cycle + 9, jnp.int32),
        vectors=jnp.asarray(vectors),
        vector_fitness=jnp.asarray(fitness),
    )
    return searcher, state, parents


def test_trials_are_rand1_mutants_of_the_best_below_crossed_with_the_target(key):
    searcher, state, parents = _after_first_iteration(key, crossover_prob=1.0)
    assert int(searcher.fidelity(state)[0]) == 1
    expected = {
        (a, b, c): parents[a] + 0.5 * (parents[b] - parents[c])
        for a, b, c in itertools.permutations(range(3))
    }
    seen = set()
    ask = jax.jit(searcher.ask)
    for k in jax.random.split(key, 60):
        _, asked = ask(k, state)
        trial = np.asarray(asked.trial)
        match = [p for p, v in expected.items() if np.allclose(trial, v, atol=1e-6)]
        assert len(match) == 1, trial  # a rand/1 mutant of fidelity 0's best three
        seen.add(match[0])
        assert int(asked.target) == int(state.counter[1])
    assert len(seen) == 6  # every ordering of the three parents is drawn
    # crossover 0: exactly one coordinate from the mutant, the rest the target's
    searcher, state, parents = _after_first_iteration(key, crossover_prob=0.0)
    target = np.asarray(state.vectors[1, int(state.counter[1])])
    ask = jax.jit(searcher.ask)
    forced = set()
    for k in jax.random.split(key, 40):
        trial = np.asarray(ask(k, state)[1].trial)
        changed = np.flatnonzero(trial != target)
        assert changed.size == 1
        j = int(changed[0])
        assert any(np.isclose(trial[j], v[j], atol=1e-6) for v in expected.values())
        forced.add(j)
    assert forced == set(range(6))  # the forced coordinate is any of the six


def test_coordinates_outside_the_unit_cube_are_redrawn(key):
    searcher, state, _ = _after_first_iteration(key, crossover_prob=1.0, mutation_factor=2.0)
    far = np.asarray(state.vectors).copy()
    far[0, 3:6] = [[0.9] * 6, [1.0] * 6, [0.0] * 6]  # r1 + 2 (r2 - r3) leaves [0, 1]
    state = state._replace(vectors=jnp.asarray(far))
    ask = jax.jit(searcher.ask)
    trials = np.stack([np.asarray(ask(k, state)[1].trial) for k in jax.random.split(key, 30)])
    assert trials.min() >= 0.0
    assert trials.max() <= 1.0
    assert len(np.unique(np.round(trials, 5))) > 30  # redrawn uniformly, not clipped


def test_selection_keeps_the_fitter_of_trial_and_target(key):
    searcher, state, _ = _after_first_iteration(key, crossover_prob=1.0)
    archs, asked = searcher.ask(key, state)
    t = int(asked.target)
    worse = searcher.tell(asked, archs, jnp.asarray([-1.0]))
    np.testing.assert_array_equal(worse.vectors, state.vectors)
    assert float(worse.vector_fitness[1, t]) == 0.0
    tie = searcher.tell(asked, archs, jnp.asarray([0.0]))  # DE accepts ties
    np.testing.assert_array_equal(tie.vectors[1, t], asked.trial)
    better = searcher.tell(asked, archs, jnp.asarray([3.0]))
    np.testing.assert_array_equal(better.vectors[1, t], asked.trial)
    assert float(better.vector_fitness[1, t]) == 3.0
    assert int(better.counter[1]) == (t + 1) % 3  # the next target in turn


def test_dehb_concentrates_on_good_cells(key):
    space = NB201()
    searcher = search.dehb(space, fidelities=3, eta=3)

    def run(k):
        def step(state, k):
            archs, state = searcher.ask(k, state)
            fit = jnp.sum(archs.ops == 3, axis=1).astype(jnp.float32)  # conv3x3 edges
            return searcher.tell(state, archs, fit), None

        return jax.lax.scan(step, searcher.init(k), jax.random.split(k, 300))[0]

    state = jax.jit(run)(key)
    # uniform cells have 6 / 5 conv3x3 edges on average (this mean's std ~0.12)
    assert float(jnp.mean(state.vector_fitness[0, :9])) > 3.5
    top = state.vector_fitness[2][jnp.isfinite(state.vector_fitness[2])]
    assert float(jnp.mean(top)) > 3.5
    assert float(state.best_fitness) >= 5.0


def test_dehb_rejects_bad_arguments():
    with pytest.raises(ValueError, match="`mutation_factor`"):
        search.dehb(NB201(), mutation_factor=0.0)
    with pytest.raises(ValueError, match="`crossover_prob`"):
        search.dehb(NB201(), crossover_prob=1.5)
    with pytest.raises(ValueError, match="`eta`"):
        search.dehb(NB201(), eta=1)


# fidelity 1's first three vectors, fitness 1, 2, 3 (the last the best): close together,
# so no rand/1 mutant of them leaves the unit cube
OWN = np.array(
    [
        [0.45, 0.50, 0.55, 0.50, 0.45, 0.50],
        [0.50, 0.45, 0.50, 0.55, 0.50, 0.45],
        [0.55, 0.55, 0.45, 0.45, 0.55, 0.55],
    ],
    np.float32,
)


def _at_step_with_fidelity_one_known(state, step):
    """`_after_first_iteration`'s state moved to evaluation `step` of the second
    iteration, with fidelity 1's first three vectors set to `OWN`."""
    cycle = search.dehb_schedule(3, 3)["slot"].shape[0]
    return state._replace(
        step=jnp.asarray(cycle + step, jnp.int32),
        vectors=state.vectors.at[1, :3].set(OWN),
        vector_fitness=state.vector_fitness.at[1, :3].set(jnp.asarray([1.0, 2.0, 3.0])),
    )


def test_a_later_brackets_first_rung_draws_its_parents_from_its_own_fidelity(key):
    # The second iteration at bracket 1's first rung (fidelity 1): the parent pool is the
    # best of fidelity 1's own subpopulation, not the fidelity below (the authors' code:
    # a bracket's first rung has no lower rung in that bracket). The parents are close, so
    # no mutant leaves the unit cube.
    searcher, state, below = _after_first_iteration(key, crossover_prob=1.0)
    state = _at_step_with_fidelity_one_known(state, 13)
    assert int(searcher.fidelity(state)[0]) == 1
    ask = jax.jit(searcher.ask)
    for parents, expect in ((OWN, True), (below, False)):
        mutants = [
            parents[a] + 0.5 * (parents[b] - parents[c])
            for a, b, c in itertools.permutations(range(3))
        ]
        hits = 0
        for k in jax.random.split(key, 12):
            trial = np.asarray(ask(k, state)[1].trial)
            hits += any(np.allclose(trial, m, atol=1e-6) for m in mutants)
        assert hits == (12 if expect else 0)


def test_asked_cells_are_their_vectors_decoded(key):
    # DEHB's encoding (Awad et al.): coordinate u of a decision with s values decodes to
    # floor(u * s); the initial subpopulations lie in the unit cube
    space = NB201()
    searcher = search.dehb(space, fidelities=3, eta=3)
    state = searcher.init(key)
    vectors = np.asarray(state.vectors)
    assert vectors.min() >= 0.0
    assert vectors.max() < 1.0
    ask, tell = jax.jit(searcher.ask), jax.jit(searcher.tell)
    sizes = np.asarray(space.decision_sizes)
    seen = np.zeros((6, 5), bool)
    for k in jax.random.split(key, 40):
        archs, state = ask(k, state)
        decisions = np.asarray(space.to_decisions(jax.tree.map(lambda a: a[0], archs)))
        expected = np.minimum(np.floor(np.asarray(state.trial) * sizes), sizes - 1)
        np.testing.assert_array_equal(decisions, expected)
        seen[np.arange(6), decisions] = True
        state = tell(state, archs, jnp.sum(archs.ops == 3, axis=1).astype(jnp.float32))
    assert seen[:, 0].any()  # the first and the last values too
    assert seen[:, -1].any()


def test_the_incumbent_is_the_best_told_at_the_top_fidelity(key):
    # as Hyperband: lower fidelities score higher here, so an incumbent from them shows
    space = NB201()
    searcher = search.dehb(space, fidelities=3, eta=3)
    state = searcher.init(key)
    ask, tell = jax.jit(searcher.ask), jax.jit(searcher.tell)
    weights = np.asarray(jax.random.normal(jax.random.key(3), (6, 5)))
    top = []
    for k in jax.random.split(key, 40):
        archs, state = ask(k, state)
        fid = int(searcher.fidelity(state)[0])
        ops = np.asarray(archs.ops[0])
        fit = float(weights[np.arange(6), ops].sum()) + 10.0 * (fid < 2)
        if fid == 2:
            top.append((fit, ops))
        state = tell(state, archs, jnp.asarray([fit], jnp.float32))
    assert top
    best_fit, best_ops = max(top, key=lambda t: t[0])
    assert float(state.best_fitness) == pytest.approx(best_fit, rel=1e-6)
    np.testing.assert_array_equal(state.best.ops, best_ops)


def _first_promotions(key, searcher, state, vectors, fitness, count):
    """The vectors the first iteration's rung 1 (fidelity 1, from step 9) promotes in its
    first `count` slots, from the given subpopulations and fitness."""
    state = state._replace(
        step=jnp.asarray(9, jnp.int32),
        vectors=jnp.asarray(vectors),
        vector_fitness=jnp.asarray(fitness),
    )
    ask = jax.jit(searcher.ask)
    promoted = []
    for k in jax.random.split(key, count):
        _, state = ask(k, state)
        promoted.append(np.asarray(state.trial))
        state = state._replace(step=state.step + 1)
    return promoted


def test_a_vector_is_held_only_when_every_coordinate_matches(key):
    # The first iteration's promotion skips the vectors the higher subpopulation already
    # holds: equal vectors. Fidelity 1 holds fidelity 0's second best exactly and its best
    # with one coordinate moved: the best is promoted first, then the third best.
    searcher = search.dehb(NB201(), fidelities=3, eta=3)
    state = searcher.init(key)
    vectors = np.asarray(state.vectors).copy()
    fitness = np.full(state.vector_fitness.shape, -np.inf, np.float32)
    fitness[0, :9] = np.arange(9.0)  # slot 8 the best, then 7, 6
    near = vectors[0, 8].copy()
    near[2] = (near[2] + 0.5) % 1.0
    vectors[1, 0], vectors[1, 1] = near, vectors[0, 7]
    promoted = _first_promotions(key, searcher, state, vectors, fitness, 2)
    np.testing.assert_array_equal(promoted[0], vectors[0, 8])
    np.testing.assert_array_equal(promoted[1], vectors[0, 6])


def test_promotion_falls_back_to_the_best_below_when_none_is_left(key):
    # Fidelity 0 has two evaluated vectors, its best already held at fidelity 1: the rung
    # promotes the second, then (none left) the best of fidelity 0 again, as the module
    # says; an unevaluated vector is never promoted.
    searcher = search.dehb(NB201(), fidelities=3, eta=3)
    state = searcher.init(key)
    vectors = np.asarray(state.vectors).copy()
    fitness = np.full(state.vector_fitness.shape, -np.inf, np.float32)
    fitness[0, 4], fitness[0, 2] = 5.0, 3.0
    vectors[1, 0] = vectors[0, 4]
    promoted = _first_promotions(key, searcher, state, vectors, fitness, 3)
    for got, slot in zip(promoted, (2, 4, 4), strict=True):
        np.testing.assert_array_equal(got, vectors[0, slot])
    # none held: both evaluated ones are promoted, then the best again (not the next
    # vector in line, which was never evaluated)
    vectors[1, 0] = 1.0 - vectors[0, 4]
    promoted = _first_promotions(key, searcher, state, vectors, fitness, 3)
    for got, slot in zip(promoted, (4, 2, 4), strict=True):
        np.testing.assert_array_equal(got, vectors[0, slot])


def test_a_pool_of_one_parent_is_filled_with_three_mutants_of_everyone(key):
    # The second iteration at bracket 0's last rung (fidelity 2, one trial): its parent
    # pool is fidelity 1's best vector alone. The authors' DEHB then adds
    # `_min_pop_size - len(pool) + 1` = 3 - 1 + 1 = 3 mutants of the union of all
    # subpopulations (`_init_mutant_population(filler, self._concat_pops())`), and rand/1
    # draws three distinct vectors of those four. With F tiny a mutant is its first vector,
    # so the trial sits on the parent with P = 1/4 + 3/4 * 1/15 = 0.30 (a filler is itself
    # the parent once in the 15 vectors of the union); a pool of three (two fillers) would
    # give 0.378.
    searcher, state, _ = _after_first_iteration(key, crossover_prob=1.0, mutation_factor=1e-4)
    state = _at_step_with_fidelity_one_known(state, 12)
    assert int(searcher.fidelity(state)[0]) == 2
    n = 3000
    trials = np.asarray(
        jax.vmap(lambda k: searcher.ask(k, state)[1].trial)(jax.random.split(key, n))
    )
    union = np.asarray(state.vectors)[np.asarray([9, 3, 3])[:, None] > np.arange(9)]
    assert union.shape == (15, 6)
    # every trial is within F of one vector of the union: no vector but those enters
    nearest = np.abs(trials[:, None] - union[None]).max(-1).min(-1)
    assert (nearest < 1e-3).all()
    on_parent = np.abs(trials - OWN[2]).max(-1) < 1e-3
    p = 1 / 4 + 3 / 4 / 15
    assert abs(on_parent.mean() - p) < 4 * np.sqrt(p * (1 - p) / n), on_parent.mean()


def test_a_pool_of_two_parents_is_filled_with_two_mutants_of_everyone(key):
    # Two fidelities, eta = 2: the second bracket's first rung runs 2 trials at fidelity 1
    # (cycle step 3), so its parent pool is fidelity 1's own two vectors, and the authors'
    # `_min_pop_size - len(pool) + 1` = 3 - 2 + 1 = 2 fillers join them. With F tiny a
    # trial sits on its first drawn vector: a filler with P = 2/4, and a filler sits on one
    # of fidelity 0's two vectors (half the union of four) with P = 1/2, so 1/4 of the
    # trials land on fidelity 0; three fillers (a pool of five) would give 3/10.
    searcher = search.dehb(NB201(), fidelities=2, eta=2, crossover_prob=1.0, mutation_factor=1e-4)
    state = searcher.init(key)._replace(step=jnp.asarray(3, jnp.int32))
    assert int(searcher.fidelity(state)[0]) == 1
    n = 4000
    trials = np.asarray(
        jax.vmap(lambda k: searcher.ask(k, state)[1].trial)(jax.random.split(key, n))
    )
    union = np.asarray(state.vectors).reshape(4, 6)  # fidelity 0's two, then fidelity 1's
    distance = np.abs(trials[:, None] - union[None]).max(-1)
    assert (distance.min(-1) < 1e-3).all()
    on_lower = (distance.argmin(-1) < 2).mean()
    assert abs(on_lower - 0.25) < 4 * np.sqrt(0.25 * 0.75 / n), on_lower


def test_defaults_are_two_fidelities_with_eta_3(key):
    """`dehb(space)` runs the authors' eta = 3 brackets over two fidelities: 3 cells at the
    low fidelity, the best promoted, then 2 new ones at the high (the schedule's cycle)."""
    searcher = search.dehb(NB201())
    assert searcher.fidelities == 2
    state = searcher.init(key)
    seen = []
    for k in jax.random.split(key, 12):
        archs, state = searcher.ask(k, state)
        seen.append(int(searcher.fidelity(state)[0]))
        state = searcher.tell(state, archs, jnp.zeros((1,)))
    assert seen == [0, 0, 0, 1, 1, 1] * 2


def test_mutation_factor_and_crossover_take_de_s_closed_ranges():
    """F in (0, 2] and CR in [0, 1], both ends of each where closed."""
    for f, cr in ((2.0, 0.0), (1e-6, 1.0)):
        search.dehb(NB201(), mutation_factor=f, crossover_prob=cr)
    for bad in (2.01, -0.5):
        with pytest.raises(ValueError, match=r"`mutation_factor` must be in \(0, 2\]"):
            search.dehb(NB201(), mutation_factor=bad)
    for bad in (-0.01, 1.01):
        with pytest.raises(ValueError, match=r"`crossover_prob` must be in \[0, 1\]"):
            search.dehb(NB201(), crossover_prob=bad)
