"""SMAC: its forest and expected improvement, not chance, make it beat random search on
the NB201 protocol (with the model off it is random search)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jnas import bench, search
from jnas.spaces import NB201, NB201Arch


def test_smac_beats_random_search_and_without_its_model_is_random_search(
    nb201_table, key, run_bound
):
    obj = bench.objective(nb201_table, dataset="cifar10-valid", metric="valid_acc", epochs=12)
    final = {}
    for name, searcher in (
        ("rs", search.random_search(NB201())),
        (
            "smac",
            search.smac(NB201(), trees=5, depth=5, num_random=32, local_starts=4, local_steps=3),
        ),
        ("no model", search.smac(NB201(), trees=2, depth=2, random_fraction=1.0)),
    ):
        sim = bench.simulate(
            searcher,
            obj,
            key=key,
            num_seeds=48,
            budget_s=12000,
            chunk=48,
            compiler_options=run_bound,
        )
        final[name] = sim.report(
            nb201_table, dataset="cifar10-valid", metric="valid_acc", epochs=12
        )[:, -1]
    t, _ = bench.welch_test(final["smac"], final["rs"])
    assert t > 3, (t, final["smac"].mean(), final["rs"].mean())
    t_off, _ = bench.welch_test(final["no model"], final["rs"])
    assert abs(t_off) < 3, t_off
    assert np.isfinite(final["smac"]).all()
    with pytest.raises(ValueError, match="random_fraction"):
        search.smac(NB201(), random_fraction=2.0)


def test_smac_proposes_the_best_expected_improvement_of_its_random_and_local_candidates(key):
    """The acquisition against a re-derivation in NumPy/SciPy given the same forest
    (`jnas.predictors.forest_fit`, tested on its own): expected improvement over the best
    told fitness, `num_random` random cells and a best-improvement local search (in Python)
    from each of the `local_starts` best told cells; the proposal is the candidate of
    largest EI."""
    from scipy.stats import norm

    from jnas.predictors import forest_fit, forest_predict

    space = NB201()
    memory, starts, steps, num_random = 32, 3, 4, 2
    searcher = search.smac(
        space,
        trees=4,
        depth=6,
        num_init=4,
        num_random=num_random,
        local_starts=starts,
        local_steps=steps,
        random_fraction=0.0,
        memory=memory,
    )
    state = searcher.init(key)
    rng = np.random.default_rng(1)
    n = 24
    for k in jax.random.split(key, n):  # fitness: the number of 3x3 convolutions, noisy
        arch = jax.tree.map(lambda a: a[None], space.sample(k))
        value = np.sum(np.asarray(arch.ops) == 3) + 0.1 * rng.normal()
        state = searcher.tell(state, arch, jnp.asarray([value], jnp.float32))
    told_ops = np.asarray(state.archs.ops[:n])
    fitness = np.asarray(state.fitness[:n])
    incumbent = fitness.max()
    from_local, ask = 0, jax.jit(searcher.ask)
    fit = jax.jit(forest_fit, static_argnames=("trees", "depth", "max_features"))
    predict = jax.jit(forest_predict)
    for k_ask in jax.random.split(jax.random.key(7), 3):
        proposal = np.asarray(ask(k_ask, state)[0].ops[0])
        k_fit, k_rand, _, _ = jax.random.split(k_ask, 4)
        forest = fit(
            k_fit,
            state.encodings,
            state.fitness,
            jnp.arange(memory) < n,
            trees=4,
            depth=6,
            max_features=5 / 6,
        )

        def ei(ops, forest=forest):
            enc = jax.vmap(lambda o: space.one_hot(NB201Arch(o)).reshape(-1))(jnp.asarray(ops))
            mean, var = (np.asarray(v, np.float64) for v in predict(forest, enc))
            sigma = np.sqrt(var) + 1e-9
            z = (mean - incumbent) / sigma
            return (mean - incumbent) * norm.cdf(z) + sigma * norm.pdf(z)

        randoms = np.asarray(jax.vmap(space.sample)(jax.random.split(k_rand, num_random)).ops)
        candidates, scores = list(randoms), list(ei(randoms))
        for start in np.argsort(-fitness)[:starts]:
            current = told_ops[start]
            best = ei(current[None])[0]
            for _ in range(steps):
                # the space's own neighbour order (ties in EI go to the first)
                neighbours = np.asarray(space.neighbors(NB201Arch(jnp.asarray(current)))[0].ops)
                values = ei(neighbours)
                if values.max() > best:
                    current, best = neighbours[int(values.argmax())], values.max()
            candidates.append(current)
            scores.append(best)
        chosen = [i for i, c in enumerate(candidates) if np.array_equal(c, proposal)]
        assert chosen, proposal
        np.testing.assert_allclose(max(scores[i] for i in chosen), max(scores), rtol=1e-4)
        from_local += max(chosen) >= num_random
    assert from_local  # the local search, not only the random draws, was put to the test


def test_smac_history_is_a_ring_that_skips_nan_and_waits_for_num_init(key):
    """Before `num_init` stored evaluations a proposal is the space's own draw from the
    ask key's 4th split; a NaN evaluation is not stored; past `memory` evaluations the
    newest overwrites the oldest (slot j holds the latest evaluation i with i = j mod
    memory), encodings alongside."""
    space = NB201()
    searcher = search.smac(
        space, trees=2, depth=3, num_init=3, num_random=4, local_starts=2, local_steps=1,
        random_fraction=0.0, memory=4,
    )  # fmt: skip
    state = searcher.init(key)
    cells = jax.vmap(space.sample)(jax.random.split(jax.random.key(3), 6))

    def one(i):
        return jax.tree.map(lambda a: a[i : i + 1], cells)

    for i in range(2):
        state = searcher.tell(state, one(i), jnp.asarray([float(i)]))
    for k in jax.random.split(jax.random.key(4), 3):
        proposal = searcher.ask(k, state)[0]
        want = space.sample(jax.random.split(k, 4)[3])
        np.testing.assert_array_equal(proposal.ops[0], want.ops)
    before = state
    state = searcher.tell(state, one(2), jnp.asarray([jnp.nan]))
    assert int(state.stored) == 2
    np.testing.assert_array_equal(state.fitness, before.fitness)
    np.testing.assert_array_equal(state.archs.ops, before.archs.ops)
    # from the `num_init`-th stored evaluation on: the model's choice, not the uniform draw
    state = searcher.tell(state, one(2), jnp.asarray([2.0]))
    keys = jax.random.split(jax.random.key(5), 3)
    model = [searcher.ask(k, state)[0].ops[0] for k in keys]
    uniform = [space.sample(jax.random.split(k, 4)[3]).ops for k in keys]
    assert not all(np.array_equal(a, b) for a, b in zip(model, uniform, strict=True))
    for i in range(3, 6):
        state = searcher.tell(state, one(i), jnp.asarray([float(i)]))
    assert int(state.stored) == 6
    slots = [4, 5, 2, 3]
    np.testing.assert_array_equal(state.fitness, np.asarray(slots, np.float32))
    np.testing.assert_array_equal(state.archs.ops, np.asarray(cells.ops)[slots])
    onehot = np.eye(5)[np.asarray(cells.ops)[slots]].reshape(4, -1)
    np.testing.assert_array_equal(state.encodings, onehot)
