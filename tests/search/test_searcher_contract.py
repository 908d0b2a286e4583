"""The contract every searcher keeps, parametrised over the registry."""

import functools
from contextlib import nullcontext

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jnas import search, spaces
from jnas.spaces import NB201, Chain, NATSSize, Sequential

REGISTRY = {
    "rs": lambda space: search.random_search(space, batch_size=4),
    "rea": lambda space: search.regularized_evolution(space, 6, 3),
    "te": lambda space: search.tournament_evolution(space, 6, 0.5),
    "ls": search.local_search,
    "neat": lambda space: search.neat(space, 6, elitism=1),
    "reinforce": lambda space: search.reinforce(space, batch_size=4, learning_rate=0.05),
    "reinforce-lstm": lambda space: search.reinforce(
        space, batch_size=4, controller="lstm", hidden=16
    ),
    "qlearning": lambda space: search.q_learning(space, batch_size=2, replay=8, memory=16),
    "hyperband": search.hyperband,
    "bohb": lambda space: search.bohb(space, num_samples=8, memory=16),
    "dehb": search.dehb,
    "metaqnn": lambda space: search.metaqnn(space, batch_size=2, replay=4, memory=8),
    "tpe": lambda space: search.tpe(space, num_samples=8, memory=16, min_points=3),
    "smac": lambda space: search.smac(
        space, trees=2, depth=3, num_init=3, num_random=8, local_starts=2, local_steps=1, memory=16
    ),
    "bo": lambda space: search.bayesian_optimization(
        space, batch_size=2, num_init=4, num_candidates=16, num_parents=4, max_points=16
    ),
    "bo-wl": lambda space: search.bayesian_optimization(
        space,
        encoding="wl",
        batch_size=2,
        num_init=4,
        num_candidates=16,
        num_parents=4,
        max_points=16,
    ),
    "pnas": lambda space: search.pnas(space, beam=4, members=2, train_steps=20, max_points=16),
    "nao": lambda space: search.nao(
        space, batch_size=2, num_init=4, num_parents=4, train_steps=10, max_points=16
    ),
    "bananas": lambda space: search.bananas(
        space,
        batch_size=2,
        num_init=4,
        num_candidates=16,
        num_parents=4,
        members=2,
        train_steps=20,
        max_points=16,
    ),
}
# every space: each searcher runs on those offering what it needs and refuses the others
SPACES = {
    "nb201": NB201(),
    "nb101": spaces.NB101(),
    "darts": spaces.DARTS(),
    "nats_size": NATSSize(),
    "chain": Chain(),
    "sequential": Sequential(),
    "hierarchical": spaces.Hierarchical(),
    "memory_bank": spaces.MemoryBank(),
    "nbnlp": spaces.NBNLP(),
    "darts_rnn": spaces.DARTSRecurrent(),
}


def _home(name):
    """The space the default run checks `name` on (NB201, or MetaQNN's layer rules)."""
    return "nb201" if search.supports(search.REGISTRY[name], SPACES["nb201"]) else "sequential"


def _space_for(name):
    """NB201, or the layer-rule space for the searchers that need one (MetaQNN)."""
    return SPACES[_home(name)]


def _fitness(space, archs):
    """A deterministic stand-in objective: the sum of the architecture's one-hot."""
    enc = jax.vmap(space.one_hot)(archs)
    flat = enc.reshape(enc.shape[0], -1)
    return jnp.sum(flat * (jnp.arange(flat.shape[1]) % 7)[None, :], axis=1)


def _run(searcher, space, key, steps=12):
    state = searcher.init(key)
    for k in jax.random.split(jax.random.fold_in(key, 1), steps):
        archs, state = searcher.ask(k, state)
        state = searcher.tell(state, archs, _fitness(space, archs))
    return state


@pytest.mark.parametrize(
    "space_name",
    [
        # NB-NLP's generator (nested while loops) traced into each searcher's ask and
        # tell: tens of seconds over the registry; the slow suite runs it
        pytest.param(n, marks=pytest.mark.slow) if n == "nbnlp" else n
        for n in SPACES
    ],
)
@pytest.mark.parametrize("name", list(REGISTRY))
def test_state_is_a_stable_scan_carry_and_traces_once(name, space_name, key):
    """On every space it supports (and refusing the others): the state's types, weak
    types included, come back unchanged from ask and from tell (else a jitted ask / tell
    traces again for a told state, and `lax.scan` refuses it as a carry). Traced only
    (`eval_shape`): the rounds as one compiled `lax.scan` are
    `test_asks_only_valid_architectures`. An ask's leading axis is the searcher's
    declared `batch_size`."""
    space = SPACES[space_name]
    if not search.supports(search.REGISTRY[name], space):
        with pytest.raises(ValueError, match="lacks"):
            REGISTRY[name](space)
        return
    searcher = REGISTRY[name](space)
    state = jax.eval_shape(searcher.init, key)
    archs, asked = jax.eval_shape(searcher.ask, key, state)
    fitness = jax.eval_shape(lambda a: _fitness(space, a), archs)
    told = jax.eval_shape(searcher.tell, asked, archs, fitness)
    # an ask is `batch_size` architectures: the run driver sizes its evaluations by it
    assert {a.shape[0] for a in jax.tree.leaves(archs)} == {searcher.batch_size}
    assert _types(asked) == _types(state)
    assert _types(told) == _types(state)


def _rounds(searcher, space, rounds=8):
    """key -> (the state after `rounds` ask / tell rounds from `init` in one `lax.scan`,
    whether each round asked only valid architectures)."""

    def step(state, k):
        archs, state = searcher.ask(k, state)
        state = searcher.tell(state, archs, _fitness(space, archs))
        return state, jnp.all(jax.vmap(space.is_valid)(archs))

    return lambda key: jax.lax.scan(step, searcher.init(key), jax.random.split(key, rounds))


@pytest.mark.parametrize(
    ("name", "space_name"),
    [
        # one compile per searcher and space (2-10 s at the suite's -O0): the default run
        # takes each searcher's home space, the slow suite every space it supports
        (n, s) if s == _home(n) else pytest.param(n, s, marks=pytest.mark.slow)
        for n in REGISTRY
        for s in SPACES
        if search.supports(search.REGISTRY[n], SPACES[s])
    ],
)
def test_asks_only_valid_architectures(name, space_name, key):
    """8 rounds of ask / tell, compiled as one program, ask only valid architectures
    (`space.is_valid`), and the state keeps its types."""
    space = SPACES[space_name]
    searcher = REGISTRY[name](space)
    final, valid = jax.jit(_rounds(searcher, space))(key)
    assert bool(jnp.all(valid))
    assert _types(final) == _types(jax.eval_shape(searcher.init, key))


def _types(tree):
    """(shape, dtype, weak type) of every leaf: what a jitted function's cache keys on."""

    def leaf(a):
        weak = a.weak_type if isinstance(a, jax.ShapeDtypeStruct) else jax.typeof(a).weak_type
        return (tuple(a.shape), a.dtype, weak)

    return jax.tree.map(leaf, tree)


@pytest.mark.parametrize("name", list(REGISTRY))
def test_same_key_same_result_and_vmap_equals_loop(name, key):
    space = _space_for(name)
    searcher = REGISTRY[name](space)

    def run(k):
        def step(state, k):
            archs, state = searcher.ask(k, state)
            return searcher.tell(state, archs, _fitness(space, archs)), None

        state, _ = jax.lax.scan(step, searcher.init(k), jax.random.split(k, 12))
        return state

    # vmap reorders float sums: in float32 the models of BANANAS / PNAS (an MLP ensemble
    # after 20 Adam steps) and SMAC (a random forest's expected improvement) meet near-tied
    # candidates that a last-bit change swaps, and NAO's Adam-trained encoder drifts past
    # the tolerance (jax 0.11: one weight of 1,920 off by 1.5e-6); in float64 batched and
    # looped runs agree, so those run the whole test in float64 (one program for the loop)
    x64 = name in ("bananas", "pnas", "smac", "nao")
    with jax.enable_x64(True) if x64 else nullcontext():
        keys = jax.random.split(key, 4)
        compiled = jax.jit(run)  # one compile for the loop below
        # two traces of one key (two jit wrappers: each traces anew): no hidden randomness
        # at trace time. (The second compile is the suite's disk cache's hit when the
        # programs are equal, as they must be: different randomness would miss and differ.)
        again = jax.jit(functools.partial(run))  # the same name: the same program
        chex.assert_trees_all_close(again(keys[0]), compiled(keys[0]), rtol=1e-6, atol=1e-7)
        batched = jax.jit(jax.vmap(run))(keys)
        for i, k in enumerate(keys):
            # floats may differ in the last bit (vmap reorders sums); integers exactly
            chex.assert_trees_all_close(
                jax.tree.map(lambda x, i=i: x[i], batched), compiled(k), rtol=1e-5, atol=1e-6
            )


@pytest.mark.parametrize("name", list(REGISTRY))
def test_nan_fitness_never_becomes_the_incumbent(name, key):
    space = _space_for(name)
    searcher = REGISTRY[name](space)
    ask, tell = jax.jit(searcher.ask), jax.jit(searcher.tell)  # compiled once, not op by op
    state = searcher.init(key)
    for k in jax.random.split(key, 10):
        archs, state = ask(k, state)
        state = tell(state, archs, jnp.full((jax.tree.leaves(archs)[0].shape[0],), jnp.nan))
    assert float(state.best_fitness) == -np.inf
    archs, state = ask(key, state)
    n = jax.tree.leaves(archs)[0].shape[0]
    fit = jnp.arange(n, dtype=jnp.float32)
    state = tell(state, archs, fit.at[-1].set(jnp.nan))
    assert float(state.best_fitness) == (n - 2.0 if n > 1 else -np.inf)


def test_factories_validate_hyper_parameters():
    with pytest.raises(ValueError, match="`batch_size` must be an integer >= 1"):
        search.random_search(NB201(), batch_size=0)
    with pytest.raises(ValueError, match="`sample_size` must be <= population_size"):
        search.regularized_evolution(NB201(), population_size=3, sample_size=5)
    with pytest.raises(ValueError, match="lacks"):
        search.regularized_evolution(object())


def test_evolution_replaces_the_oldest(key):
    space = NB201()
    searcher = search.regularized_evolution(space, population_size=3, sample_size=2)
    state = searcher.init(key)
    told = []
    for i, k in enumerate(jax.random.split(key, 5)):
        archs, state = searcher.ask(k, state)
        state = searcher.tell(state, archs, jnp.array([float(i)]))
        told.append(np.asarray(archs.ops[0]))
    # after 5 tells into 3 slots: slots hold tells 3, 4, 2
    np.testing.assert_array_equal(state.fitness, [3.0, 4.0, 2.0])
    np.testing.assert_array_equal(state.population.ops[0], told[3])
    assert int(state.num_told) == 5


def test_the_contract_covers_every_registered_searcher():
    assert set(REGISTRY) == set(search.single_objective())
    # the multi-objective ones keep theirs in tests/search/test_nsga2.py
    assert {n for n, e in search.REGISTRY.items() if e.multi_objective} == {"nsga2"}


def test_registry_says_which_spaces_each_searcher_runs_on():
    """`Entry.needs` is the truth: the default searcher builds on exactly the spaces
    offering those capabilities, and refuses the others at construction."""
    every = list(SPACES.values())
    for name, entry in search.REGISTRY.items():
        for space in every:
            if search.supports(entry, space):
                assert search.make_searcher(name, space).batch_size >= 1
            else:
                with pytest.raises(ValueError, match="needs a space offering"):
                    search.make_searcher(name, space)
    # the policy searchers the issue names run on the layer-wise and hierarchical spaces
    for name in ("reinforce", "qlearning", "pnas", "nao", "hyperband", "bohb", "dehb"):
        assert search.supports(search.REGISTRY[name], spaces.Sequential())
        assert search.supports(search.REGISTRY[name], spaces.Hierarchical())


def test_registry_names_every_public_factory():
    import functools

    factories = {
        e.make.func if isinstance(e.make, functools.partial) else e.make
        for e in search.REGISTRY.values()
    }
    names = {
        "random_search",
        "regularized_evolution",
        "tournament_evolution",
        "neat",
        "reinforce",
        "q_learning",
        "local_search",
        "bayesian_optimization",
        "bananas",
        "hyperband",
        "bohb",
        "dehb",
        "pnas",
        "nao",
        "tpe",
        "smac",
        "metaqnn",
        "nsga2",
    }
    assert {getattr(search, n) for n in names} <= factories
    assert search.make_searcher("reinforce-lstm", NB201()).batch_size >= 1
    with pytest.raises(ValueError, match="unknown searcher"):
        search.make_searcher("gradient descent", NB201())
