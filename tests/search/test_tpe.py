"""TPE as a single-fidelity searcher: its model, not chance, makes it beat random search
on the NB201 protocol (with the model off it is random search)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jnas import bench, search
from jnas.spaces import NB201, DARTSRecurrent


def test_tpe_beats_random_search_and_without_its_model_is_random_search(
    nb201_table, key, run_bound
):
    obj = bench.objective(nb201_table, dataset="cifar10-valid", metric="valid_acc", epochs=12)
    final = {}
    for name, searcher in (
        ("rs", search.random_search(NB201())),
        ("tpe", search.tpe(NB201())),
        ("no model", search.tpe(NB201(), random_fraction=1.0)),
    ):
        sim = bench.simulate(
            searcher, obj, key=key, num_seeds=50, budget_s=12000, compiler_options=run_bound
        )
        final[name] = sim.report(
            nb201_table, dataset="cifar10-valid", metric="valid_acc", epochs=12
        )[:, -1]
    t, _ = bench.welch_test(final["tpe"], final["rs"])
    assert t > 3, (final["tpe"].mean(), final["rs"].mean())
    t_off, _ = bench.welch_test(final["no model"], final["rs"])
    assert abs(t_off) < 3  # the same distribution as random search
    with pytest.raises(ValueError, match="top_fraction"):
        search.tpe(NB201(), top_fraction=1.5)
    with pytest.raises(ValueError, match="needs a space"):
        search.tpe(object())
    assert np.isfinite(final["tpe"]).all()


def _tpe_scores(candidates, told, fitness, sizes, *, top_fraction, min_points, bandwidth):
    """log l(x) - log g(x) of each candidate, re-derived in NumPy (float64) from the told
    rows alone: the best `top_fraction` (at least `min_points`) are good, the rest (at
    least `min_points`) bad; Aitchison-Aitken kernels, `bandwidth` spread evenly over a
    decision's other values."""
    n = len(fitness)
    order = np.argsort(-fitness)
    n_good = max(min_points, int(np.floor(top_fraction * n)))
    n_bad = max(min_points, n - n_good)
    good, bad = told[order[:n_good]], told[order[n - n_bad :]]

    def density(x, points):
        other = np.maximum(sizes - 1, 1)
        k = np.where(points == x, 1.0 - bandwidth, np.where(sizes > 1, bandwidth / other, 0.0))
        return np.prod(k, axis=1).mean()

    return np.array(
        [np.log(density(x, good) + 1e-32) - np.log(density(x, bad) + 1e-32) for x in candidates]
    )


def _candidates(
    k_ask, decisions, fitness, sizes, num_samples, factor, *, top_fraction, min_points, bandwidth
):
    """The candidates drawn around the good told rows (the first `len(fitness)` of
    `decisions`), from the keys `ask` splits from `k_ask`: each decision redrawn among its
    other values with probability `bandwidth * factor`."""
    _, _, k_base, k_keep, k_shift = jax.random.split(k_ask, 5)
    n, memory = len(fitness), len(decisions)
    rank = np.argsort(np.argsort(-fitness))
    good = np.zeros(memory, np.float32)
    good[:n] = rank < max(min_points, int(np.floor(top_fraction * n)))
    pick = jax.random.choice(k_base, memory, (num_samples,), p=good / good.sum())
    bases = decisions[np.asarray(pick)]
    keep = np.asarray(jax.random.uniform(k_keep, bases.shape)) >= bandwidth * factor
    shift = np.asarray(jax.random.randint(k_shift, bases.shape, 1, np.maximum(sizes, 2)[None, :]))
    return np.where(keep, bases, (bases + shift) % sizes)


def _assert_the_best_candidate(proposal, candidates, scores):
    """The proposal is one of the candidates, and its score is the best of them."""
    mine = [i for i, c in enumerate(candidates) if np.array_equal(c, proposal)]
    assert mine, proposal
    np.testing.assert_allclose(scores[mine[0]], scores.max(), rtol=1e-5, atol=1e-5)


def test_tpe_proposes_the_candidate_with_the_best_density_ratio_of_the_told_rows(key):
    """The model against a NumPy re-derivation over exactly the told rows (not the empty
    slots of its memory): the proposal is a candidate drawn around a good point whose
    l(x) / g(x) is the best of all candidates (the draws come from the same keys, the model
    does not); below `min_points` told rows it is the space's uniform draw."""
    space = NB201()
    sizes = np.asarray(space.decision_sizes)
    settings = dict(top_fraction=0.15, min_points=4, bandwidth=0.2)
    num_samples, factor, memory = 64, 3.0, 32
    searcher = search.tpe(
        space,
        random_fraction=0.0,
        num_samples=num_samples,
        bandwidth_factor=factor,
        memory=memory,
        **settings,
    )
    state = searcher.init(key)
    rng = np.random.default_rng(0)
    for n, k in enumerate(jax.random.split(key, 12)):
        for k_ask in jax.random.split(k, 3):
            proposal = np.asarray(
                space.to_decisions(jax.tree.map(lambda a: a[0], searcher.ask(k_ask, state)[0]))
            )
            if n < settings["min_points"]:
                uniform = space.to_decisions(space.sample(jax.random.split(k_ask, 5)[0]))
                np.testing.assert_array_equal(proposal, uniform)
                continue
            told = np.asarray(state.decisions[:n])
            fitness = np.asarray(state.fitness[:n])
            candidates = _candidates(
                k_ask, np.asarray(state.decisions), fitness, sizes, num_samples, factor, **settings
            )
            scores = _tpe_scores(candidates, told, fitness, sizes, **settings)
            _assert_the_best_candidate(proposal, candidates, scores)
        arch = space.sample(k)
        state = searcher.tell(
            state, jax.tree.map(lambda a: a[None], arch), jnp.asarray([rng.normal()], jnp.float32)
        )


def test_tpe_density_ratio_over_uneven_decisions_and_many_told_rows(key):
    """As above on DARTS' recurrent cell, whose decisions have 1 to 8 values (so the
    kernel's weight on a decision's other values, `bandwidth / (size - 1)`, differs between
    decisions), with 40 told rows: the best 15 %, 6, are the good ones (more than
    `min_points`), and the memory's 8 empty slots hold rows that must not count."""
    space = DARTSRecurrent()
    sizes = np.asarray(space.decision_sizes)
    settings = dict(top_fraction=0.15, min_points=4, bandwidth=0.2)
    num_samples, factor, memory, n = 64, 3.0, 48, 40
    searcher = search.tpe(
        space,
        random_fraction=0.0,
        num_samples=num_samples,
        bandwidth_factor=factor,
        memory=memory,
        **settings,
    )
    k_rows, k_fitness, k_asks = jax.random.split(key, 3)
    rows = jax.vmap(lambda k: space.to_decisions(space.sample(k)))(
        jax.random.split(k_rows, memory)
    ).astype(jnp.int32)
    fitness = jax.random.normal(k_fitness, (memory,))
    state = searcher.init(key)._replace(
        decisions=rows, fitness=fitness, stored=jnp.asarray(n, jnp.int32)
    )
    keys = jax.random.split(k_asks, 24)
    proposals = jax.jit(
        jax.vmap(
            lambda k: space.to_decisions(jax.tree.map(lambda a: a[0], searcher.ask(k, state)[0]))
        )
    )(keys)
    told, told_fitness = np.asarray(rows[:n]), np.asarray(fitness[:n])
    for k_ask, proposal in zip(keys, np.asarray(proposals), strict=True):
        candidates = _candidates(
            k_ask, np.asarray(rows), told_fitness, sizes, num_samples, factor, **settings
        )
        scores = _tpe_scores(candidates, told, told_fitness, sizes, **settings)
        _assert_the_best_candidate(proposal, candidates, scores)


def test_tpe_history_is_a_ring_that_skips_nan(key):
    """A NaN evaluation is not stored (nor counted towards `min_points`); past `memory`
    evaluations the newest overwrites the oldest: slot j holds the latest evaluation i
    with i = j mod memory."""
    space = NB201()
    searcher = search.tpe(space, num_samples=8, min_points=3, memory=4)
    cells = jax.vmap(space.sample)(jax.random.split(jax.random.key(3), 7))
    state = searcher.init(key)
    values = [0.0, np.nan, 1.0, 2.0, 3.0, 4.0, 5.0]
    for i, v in enumerate(values):
        before = state
        state = searcher.tell(
            state, jax.tree.map(lambda a, i=i: a[i : i + 1], cells), jnp.asarray([v])
        )
        if np.isnan(v):
            assert int(state.stored) == int(before.stored)
            np.testing.assert_array_equal(state.decisions, before.decisions)
            np.testing.assert_array_equal(state.fitness, before.fitness)
    assert int(state.stored) == 6
    told = [0, 2, 3, 4, 5, 6]  # the cells stored, in order: slot j <- the latest j mod 4
    slots = [told[4], told[5], told[2], told[3]]
    np.testing.assert_array_equal(state.fitness, np.asarray(values)[slots])
    want = jax.vmap(space.to_decisions)(cells)
    np.testing.assert_array_equal(state.decisions, np.asarray(want)[slots])
