"""BO, BO-WL, BANANAS and FSBO: the surrogate, not the proposals around it, picks what is asked.

Each asks the `batch_size` best-scoring of `num_candidates` proposals (mutants of the best
cells told, plus fresh samples). Told 40 cells of an additive objective (a sum of per-edge
op scores, which every surrogate here can learn from 40 points), the batch it asks must
score far above the batch the same proposals give under a random score: remove the
surrogate or the acquisition (rank by noise) and the test fails.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jnas.search import REGISTRY
from jnas.search._model_based import model_based
from jnas.spaces import NB201

SPACE = NB201()
WEIGHTS = jnp.asarray([[0, 1, 2, 4, 1]] * 6, jnp.float32)  # optimum 24, random mean 9.6
KW = {"batch_size": 10, "num_init": 10, "num_candidates": 100, "num_parents": 10, "max_points": 64}


def objective(arch):
    return jnp.sum(WEIGHTS[jnp.arange(6), arch.ops])


def told(searcher, key):
    archs = jax.vmap(SPACE.sample)(jax.random.split(key, 40))
    state = searcher.init(jax.random.key(1))
    for i in range(4):  # 4 tells of 10
        batch = jax.tree.map(lambda a, i=i: a[10 * i : 10 * (i + 1)], archs)
        state = searcher.tell(state, batch, jax.vmap(objective)(batch))
    return state


def asked_fitness(searcher, keys):
    state = told(searcher, jax.random.key(7))
    ask = jax.jit(searcher.ask)
    return np.asarray([jnp.mean(jax.vmap(objective)(ask(k, state)[0])) for k in keys])


def random_scored(encoding):
    """The same proposals ranked by a uniform random score: what the surrogate must beat."""
    return model_based(
        SPACE,
        lambda k, x, y, m, c: jax.random.uniform(k, (c.shape[0],)),
        encoding=encoding,
        where="random score",
        **KW,
    )


@pytest.mark.parametrize("name", ["bo", "bo-wl", "bananas"])
def test_the_surrogate_picks_the_asked_cells(name):
    keys = jax.random.split(jax.random.key(3), 4)
    extra = {"members": 3, "train_steps": 100} if name == "bananas" else {}
    make = REGISTRY[name].make
    guided = asked_fitness(make(SPACE, **KW, **extra), keys)
    unguided = asked_fitness(random_scored("wl" if name == "bo-wl" else "auto"), keys)
    # measured: guided 14.8-17.5 a batch, unguided 11.3-12.3 (mutants of the best told)
    assert guided.mean() > unguided.mean() + 3, (guided, unguided)
    assert (guided > unguided).all(), (guided, unguided)


def test_fsbo_fine_tuned_deep_kernel_picks_the_asked_cells():
    """FSBO from an untrained deep kernel: its 50 fine-tuning steps on the 40 cells told are
    enough for expected improvement over the best told cell to pick batches well above the
    random score's (the incumbent taken as +inf instead, EI is 0 everywhere and the batch
    falls to 13.3 on average)."""
    from jnas import transfer

    keys = jax.random.split(jax.random.key(3), 4)
    kernel = transfer.init_deep_kernel(jax.random.key(0), 30)
    guided = asked_fitness(transfer.fsbo(SPACE, kernel, **KW), keys)
    unguided = asked_fitness(random_scored("one_hot"), keys)
    # measured: guided 14.5-15.6 a batch (mean 15.1), unguided 11.3-12.3 (mean 11.9)
    assert guided.mean() > unguided.mean() + 2.5, (guided, unguided)
    assert (guided > unguided).all(), (guided, unguided)


def test_bo_asks_one_cell_at_a_time_from_a_history_of_200_by_default():
    """`bayesian_optimization`'s defaults: batches of one, a history of 200 evaluations (the
    path encoding's 4 + 16 + 64 op sequences on NB201) and a factor per point of the 7 x 3 grid;
    random cells until 10 results are told, then expected improvement over 100 candidates
    mutated from the 10 best, as the same settings written out ask (UCB would pick the same
    cells here, and 101 candidates the same: neither default is resolved by this test)."""
    from jnas.search import bayesian_optimization

    searcher = bayesian_optimization(SPACE)
    assert searcher.batch_size == 1
    state = jax.eval_shape(searcher.init, jax.random.key(1))
    assert state.x.shape == (200, 84)
    assert state.y.shape == (200,)
    assert state.model.shape == (21, 200, 200)
    # and it asks as the written-out settings do once its 10 initial results are told
    written = bayesian_optimization(
        SPACE, acquisition_fn="ei", encoding="path", batch_size=1, num_init=10,
        num_candidates=100, num_parents=10, max_points=200,
    )  # fmt: skip
    archs = jax.vmap(SPACE.sample)(jax.random.split(jax.random.key(7), 10))
    asked = []
    for s in (searcher, written):
        state = s.init(jax.random.key(1))
        tell = jax.jit(s.tell)
        ask, keys = jax.jit(s.ask), jax.random.split(jax.random.key(3), 8)
        for i in range(10):
            if i == 9:  # one result short of the model: random cells
                asked.append(np.asarray(ask(keys[0], state)[0].ops))
            one = jax.tree.map(lambda a, i=i: a[i : i + 1], archs)
            state = tell(state, one, jax.vmap(objective)(one))
        asked.append([np.asarray(ask(k, state)[0].ops) for k in keys])
    for default, spelled in zip(asked[:2], asked[2:], strict=True):
        np.testing.assert_array_equal(default, spelled)


HIDDEN_VALUES = jax.random.normal(jax.random.key(5), (SPACE.size,))


def hidden(arch):
    """A fitness random per cell: no encoding predicts it; as a feature it is a perfect
    proxy."""
    return HIDDEN_VALUES[SPACE.index(arch)]


def fitness_of_asked(searcher, num_keys):
    """Mean hidden fitness of the batches `searcher` asks after being told 40 cells."""
    archs = jax.vmap(SPACE.sample)(jax.random.split(jax.random.key(7), 40))
    state = searcher.init(jax.random.key(1))
    for i in range(4):
        batch = jax.tree.map(lambda a, i=i: a[10 * i : 10 * (i + 1)], archs)
        state = searcher.tell(state, batch, jax.vmap(hidden)(batch))
    ask = jax.jit(searcher.ask)
    keys = jax.random.split(jax.random.key(3), num_keys)
    return np.asarray([jnp.mean(jax.vmap(hidden)(ask(k, state)[0])) for k in keys])


def test_extra_features_reach_the_surrogate():
    """A fitness that is random per cell cannot be learnt from the encoding; given as an
    extra feature (a perfect proxy), BANANAS asks far better cells than without it."""
    from jnas.search import bananas

    kw = {**KW, "members": 3, "train_steps": 200}
    with_feature = fitness_of_asked(bananas(SPACE, features=hidden, **kw), 4)
    without = fitness_of_asked(bananas(SPACE, **kw), 4)
    assert with_feature.mean() > without.mean() + 0.5, (with_feature, without)
    state = bananas(SPACE, features=hidden, **kw).init(jax.random.key(0))
    np.testing.assert_allclose(state.x[:, -1], jax.vmap(hidden)(state.archs), rtol=1e-6)


def test_bo_features_enter_the_gp_through_their_own_kernel():
    """As for BANANAS: a perfect proxy given as a feature makes BO's GP ask far better
    cells than the encoding alone (a Hamming distance could not use a continuous score)."""
    from jnas.search import bayesian_optimization

    kw = {"batch_size": 10, "num_init": 10, "num_candidates": 200, "max_points": 40}
    with_feature = fitness_of_asked(bayesian_optimization(SPACE, features=hidden, **kw), 3)
    without = fitness_of_asked(bayesian_optimization(SPACE, **kw), 3)
    assert with_feature.mean() > without.mean() + 0.5, (with_feature, without)


def test_acquisitions_are_the_expectations_they_name():
    """EI against a Monte Carlo estimate of E[max(f - best, 0)] with f ~ N(mean, std) (NumPy
    draws), UCB as mean + 2 std, and Thompson draws distributed as N(mean, std)."""
    from jnas.search._bo import acquisition

    mean = jnp.asarray([0.0, 1.0, -2.0, 0.5], jnp.float32)
    std = jnp.asarray([1.0, 0.1, 2.0, 0.5], jnp.float32)
    best = jnp.asarray(0.4, jnp.float32)
    f = np.asarray(mean)[:, None] + np.asarray(std)[:, None] * np.random.default_rng(0).normal(
        size=(4, 400_000)
    )
    gain = np.maximum(f - 0.4, 0.0)
    ei = np.asarray(acquisition("ei", mean, std, best, jax.random.key(0)))
    np.testing.assert_allclose(ei, gain.mean(1), atol=4 * gain.std(1).max() / np.sqrt(400_000))
    np.testing.assert_allclose(
        acquisition("ucb", mean, std, best, jax.random.key(0)), mean + 2 * std, rtol=1e-6
    )
    draws = jax.vmap(lambda k: acquisition("ts", mean, std, best, k))(
        jax.random.split(jax.random.key(1), 20_000)
    )
    np.testing.assert_allclose(np.mean(draws, 0), mean, atol=0.05)
    np.testing.assert_allclose(np.std(draws, 0), std, rtol=0.03)


def test_ask_takes_the_best_scored_of_mutants_of_the_best_cells_and_fresh_samples():
    """One ask replayed in Python: the parents are drawn uniformly from the `num_parents`
    best cells told (NumPy's ranking), three quarters of the candidates are their mutants
    and a quarter fresh samples, and the batch is the candidates with the highest scores
    (NumPy's sort of a linear score of their one-hot cells). Told exactly `num_init` cells,
    the surrogate is in use."""
    rng = np.random.default_rng(0)
    v = jnp.asarray(rng.normal(size=30), jnp.float32)
    kw = {**KW, "num_init": 40, "max_points": 64}
    searcher = model_based(
        SPACE, lambda k, x, y, m, c: c @ v, encoding="one_hot", where="linear score", **kw
    )
    archs = jax.vmap(SPACE.sample)(jax.random.split(jax.random.key(7), 40))
    fitness = jnp.asarray(rng.normal(size=40), jnp.float32)
    state = searcher.init(jax.random.key(1))
    for i in range(4):
        batch = jax.tree.map(lambda a, i=i: a[10 * i : 10 * (i + 1)], archs)
        state = searcher.tell(state, batch, fitness[10 * i : 10 * (i + 1)])
    key = jax.random.key(3)
    asked = np.asarray(jax.jit(searcher.ask)(key, state)[0].ops)

    _, k_par, k_mut, k_fresh, _ = jax.random.split(key, 5)
    best = np.argsort(-np.asarray(fitness))[:10]
    parents = np.asarray(jax.random.choice(k_par, jnp.asarray(best), (75,)))
    assert set(parents.tolist()) <= set(best.tolist())
    ops = np.asarray(archs.ops)
    mutants = [
        np.asarray(SPACE.mutate(k, jax.tree.map(lambda a, p=p: a[p], archs)).ops)
        for k, p in zip(jax.random.split(k_mut, 75), parents, strict=True)
    ]
    assert all(np.sum(m != ops[p]) == 1 for m, p in zip(mutants, parents, strict=True))
    fresh = [np.asarray(SPACE.sample(k).ops) for k in jax.random.split(k_fresh, 25)]
    candidates = np.stack(mutants + fresh)
    one_hot = np.eye(5)[candidates].reshape(100, 30)
    top = np.argsort(-(one_hot @ np.asarray(v, np.float64)), kind="stable")[:10]
    np.testing.assert_array_equal(asked, candidates[top])


def test_bananas_thompson_draws_are_independent_normals_of_the_ensemble():
    """ITS: each candidate's score is a draw from N(ensemble mean, ensemble std) (NumPy's
    mean and population std over members), independent across candidates."""
    from jnas.search._bananas import independent_thompson

    preds = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32) * [1, 2, 0.5, 3]
    draws = np.asarray(
        jax.vmap(lambda k: independent_thompson(k, jnp.asarray(preds)))(
            jax.random.split(jax.random.key(0), 40_000)
        )
    )
    mean, std = preds.mean(0), preds.std(0)
    np.testing.assert_allclose(draws.mean(0), mean, atol=4 * std.max() / np.sqrt(40_000))
    np.testing.assert_allclose(draws.std(0), std, rtol=0.02)
    corr = np.corrcoef(draws.T)[np.triu_indices(4, 1)]
    assert np.abs(corr).max() < 0.03, corr


def test_the_score_sees_only_the_finite_results_told():
    """Failed evaluations (NaN fitness) stay in the history but are masked from the
    surrogate: the score is called with a mask that is true exactly where a result was told
    and is finite (checked against the told fitness, eagerly), so a GP or an ensemble never
    fits a NaN."""
    seen = []

    def score(k, x, y, m, c):
        seen.append((np.asarray(y), np.asarray(m)))
        return c @ jnp.ones(c.shape[1])

    searcher = model_based(SPACE, score, encoding="one_hot", where="recording score", **KW)
    archs = jax.vmap(SPACE.sample)(jax.random.split(jax.random.key(7), 20))
    fitness = np.random.default_rng(0).normal(size=20).astype(np.float32)
    fitness[[1, 4, 15]] = np.nan
    fitness[9] = np.inf
    state = searcher.init(jax.random.key(1))
    for i in range(2):
        batch = jax.tree.map(lambda a, i=i: a[10 * i : 10 * (i + 1)], archs)
        state = searcher.tell(state, batch, fitness[10 * i : 10 * (i + 1)])
    searcher.ask(jax.random.key(3), state)
    ((y, mask),) = seen
    want = np.zeros(KW["max_points"], bool)
    want[:20] = np.isfinite(fitness)
    np.testing.assert_array_equal(mask, want)
    np.testing.assert_array_equal(y[:20][want[:20]], fitness[want[:20]])


def test_non_finite_features_enter_the_encoding_as_zero():
    """A feature that could not be computed (NaN or inf, e.g. a proxy that overflowed) is
    appended as 0 rather than poisoning the surrogate's inputs."""
    feature = lambda a: jnp.where(a.ops[0] == 0, jnp.nan, jnp.where(a.ops[0] == 1, jnp.inf, 2.0))
    searcher = model_based(
        SPACE,
        lambda k, x, y, m, c: c[:, 0],
        encoding="one_hot",
        where="features",
        features=feature,
        **KW,
    )
    state = searcher.init(jax.random.key(0))
    first = np.asarray(state.archs.ops[:, 0])
    assert {0, 1, 2} <= set(first.tolist())
    np.testing.assert_array_equal(state.x[:, -1], np.where(first < 2, 0.0, 2.0))
    np.testing.assert_array_equal(
        state.x[:, :-1], jax.vmap(SPACE.one_hot)(state.archs).reshape(64, 30)
    )


def test_before_num_init_results_the_batch_is_random_samples():
    """Until `num_init` results are told the surrogate is not used: with 30 of 40 told, the
    batch is the space's samples from the first of the ask key's five splits, whatever the
    score (here one that prefers op 0 on every edge)."""
    kw = {**KW, "num_init": 40}
    searcher = model_based(
        SPACE, lambda k, x, y, m, c: c[:, ::5].sum(1), encoding="one_hot", where="score", **kw
    )
    archs = jax.vmap(SPACE.sample)(jax.random.split(jax.random.key(7), 30))
    state = searcher.init(jax.random.key(1))
    for i in range(3):
        batch = jax.tree.map(lambda a, i=i: a[10 * i : 10 * (i + 1)], archs)
        state = searcher.tell(state, batch, jnp.arange(10.0))
    key = jax.random.key(3)
    asked = searcher.ask(key, state)[0]
    k_rand = jax.random.split(key, 5)[0]
    want = jax.vmap(SPACE.sample)(jax.random.split(k_rand, 10))
    np.testing.assert_array_equal(asked.ops, want.ops)


def test_bananas_defaults_written_out():
    """`bananas(space)` is BANANAS with its defaults written out: White et al.'s 10 initial
    cells, batches of 10 and 5 networks, and jnas' 200 training steps a network, candidates
    mutated from the 10 best and a history of 200 path encodings (84 columns on NB201); one
    ask after 10 results told, when the ensemble has just taken over. Not resolved: 100
    candidates against 101 (the extra mutant never ranks in the batch)."""
    from jnas.search import bananas

    written = bananas(
        SPACE, encoding="path", batch_size=10, num_init=10, num_candidates=100, num_parents=10,
        members=5, train_steps=200, max_points=200,
    )  # fmt: skip
    archs = jax.vmap(SPACE.sample)(jax.random.split(jax.random.key(7), 10))
    asked = []
    for searcher in (bananas(SPACE), written):
        assert searcher.batch_size == 10
        state = searcher.tell(searcher.init(jax.random.key(1)), archs, jax.vmap(objective)(archs))
        assert state.x.shape == (200, 84)
        asked.append(np.asarray(jax.jit(searcher.ask)(jax.random.key(3), state)[0].ops))
    np.testing.assert_array_equal(*asked)
    told = {tuple(r) for r in np.asarray(archs.ops).tolist()}
    assert not told >= {tuple(r) for r in asked[0].tolist()}  # the model's picks, not the told
