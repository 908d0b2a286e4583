"""The NAS-Bench-NLP cell space: the generator's rules, the array form, strings as the
benchmark's JSON recipes, and the fingerprint against networkx's graph isomorphism on
the benchmark's own recipes."""

import itertools
import json

import chex
import jax
import jax.numpy as jnp
import networkx as nx
import numpy as np
import pytest
from networkx.algorithms import isomorphism

from jnas.spaces import NBNLP, NBNLP_EXAMPLES, NBNLP_OPS, NBNLPArch
from jnas.spaces._common import random_choice_masked

SPACE = NBNLP()
LSTM = NBNLP_EXAMPLES["lstm"]  # recipe 1000001 of the table


def _at(batch, i):
    return jax.tree.map(lambda x: x[i], batch)


@pytest.fixture(scope="module")
def samples():
    keys = jax.random.split(jax.random.key(3), 64)
    return keys, jax.jit(jax.vmap(SPACE.sample))(keys)


def test_sample_jit_vmap_equals_loop_and_keeps_the_generators_rules(samples):
    keys, batch = samples
    one = jax.jit(SPACE.sample)  # vmap == loop
    for i in range(3):
        chex.assert_trees_all_equal(one(keys[i]), _at(batch, i))
    for leaf in jax.tree.leaves(batch):
        assert leaf.dtype == jnp.int8
    assert bool(jnp.all(jax.vmap(SPACE.generator_ok)(batch)))
    sizes = np.asarray(jax.vmap(SPACE.tuple_size)(batch))
    assert set(sizes.tolist()) == {1, 2, 3}
    for i in range(64):
        recipe = SPACE.recipe(_at(batch, i))
        for name, node in recipe.items():
            k = len(node["input"])
            if node["op"] == "linear":
                assert k in (2, 3), node  # 2 or 3 connections, as the generator draws
            if node["op"] in ("blend", "elementwise_prod", "elementwise_sum"):
                assert "x" not in node["input"], node
            if name.startswith("h_new_"):
                assert not any(s.startswith("h_prev") for s in node["input"]), node
        used = {s for node in recipe.values() for s in node["input"]}
        assert used >= {"x", *(f"h_prev_{h}" for h in range(int(sizes[i])))}
    assert len({SPACE.to_string(_at(batch, i)) for i in range(64)}) > 60


def test_strings_round_trip_and_are_the_benchmarks_json(samples):
    _, batch = samples
    for i in range(8):
        arch = _at(batch, i)
        text = SPACE.to_string(arch)
        assert text == json.dumps(json.loads(text), sort_keys=True)
        chex.assert_trees_all_equal(SPACE.from_string(text), arch)
    # node names and key order do not matter; the placement is the graph's
    renamed = {k.replace("act", "A").replace("part", "P"): v for k, v in LSTM.items()}
    renamed = {
        k: {
            "op": v["op"],
            "input": [s.replace("act", "A").replace("part", "P") for s in v["input"]],
        }
        for k, v in reversed(list(renamed.items()))
    }
    chex.assert_trees_all_equal(SPACE.from_recipe(renamed), SPACE.from_recipe(LSTM))


def test_lstm_recipe_arrays_by_hand():
    arch = SPACE.from_recipe(LSTM)
    # post-order from h_new_0: h_new_1_act <- h_new_1 <- part1 <- f_act <- f ...
    names = json.loads(SPACE.to_string(arch))
    assert len(names) == 13
    assert int(SPACE.tuple_size(arch)) == 2
    ops = np.asarray(arch.ops)
    assert sorted(NBNLP_OPS[o - 1] for o in ops[ops > 0]) == sorted(v["op"] for v in LSTM.values())
    # the first node placed is f = linear(x, h_prev_0): ids 0 (x) and 1 (h_prev_0)
    assert ops[0] == NBNLP_OPS.index("linear") + 1
    assert np.asarray(arch.inputs)[0].tolist() == [0, 1, -1]


@pytest.mark.parametrize(
    ("recipe", "message"),
    [
        ({"h_new_0": {"op": "conv", "input": ["x"]}}, "one of"),
        ({"f": {"op": "activation_tanh", "input": ["x"]}}, "h_new_0"),
        ({"h_new_0": {"op": "linear", "input": ["x", "h_prev_1"]}}, "inputs among"),
        ({"h_new_0": {"op": "elementwise_sum", "input": ["x", "h_prev_0"]}}, "no `x` input"),
        ({"h_new_0": {"op": "activation_tanh", "input": ["x"]}}, "reads x and every h_prev"),
        ({"h_new_0": {"op": "linear", "input": ["x", "x"]}}, "distinct inputs"),
        (
            {
                "h_new_0": {"op": "activation_tanh", "input": ["a"]},
                "a": {"op": "linear", "input": ["x", "h_new_0"]},
            },
            "cycle",
        ),
    ],
)
def test_bad_recipes_raise_naming_the_problem(recipe, message):
    with pytest.raises(ValueError, match=message):
        SPACE.from_recipe(recipe)
    with pytest.raises(ValueError, match="JSON recipe"):
        SPACE.from_string("{not json")


def test_is_valid_agrees_with_validate_on_broken_arrays(samples):
    _, batch = samples
    arch = _at(batch, 0)
    broken = [
        arch._replace(ops=arch.ops.at[0].set(9)),
        arch._replace(hidden=jnp.full_like(arch.hidden, -1)),
        arch._replace(inputs=arch.inputs.at[0, 0].set(SPACE.num_sources + 5)),  # a later node
        arch._replace(inputs=arch.inputs.at[0].set(-1)),  # a linear with no input
    ]
    assert bool(SPACE.is_valid(arch))
    for b in broken:
        assert not bool(SPACE.is_valid(b))
        with pytest.raises(ValueError, match=r"NBNLP\.validate"):
            SPACE.validate(b)


def test_mutate_is_one_valid_edit(samples, key):
    _, batch = samples
    children = jax.jit(jax.vmap(SPACE.mutate))(jax.random.split(key, 64), batch)
    assert bool(jnp.all(jax.vmap(SPACE.is_valid)(children)))
    fp = jax.jit(jax.vmap(SPACE.fingerprint))
    changed = np.any(np.asarray(fp(children)) != np.asarray(fp(batch)), axis=1)
    assert changed.mean() > 0.9  # an edit that keeps the graph is rare (a symmetric rewire)
    for i in range(4):  # one node's op or one input or one hidden state differs
        p, c = SPACE.recipe(_at(batch, i)), SPACE.recipe(_at(children, i))
        gp, gc = _graph(p), _graph(c)
        diff = len(set(gp.edges) ^ set(gc.edges)) + sum(
            gp.nodes[n]["label"] != gc.nodes[n]["label"] for n in set(gp) & set(gc)
        )
        assert diff >= 1


def test_neighbors_are_the_valid_single_edits_enumerated_by_hand(samples, run_bound):
    # the reference: every edit written out in Python on NumPy copies of the cell (an op
    # of a placed node, a used input, a placed hidden state set to another value), then
    # the space's own validity and compaction; `neighbors` builds its edits from a table
    arch = jax.tree.map(np.asarray, _at(samples[1], 0))
    edits = []
    for j in np.flatnonzero(arch.ops > 0):
        for o in range(1, len(NBNLP_OPS) + 1):
            if o != arch.ops[j]:
                edits.append(
                    arch._replace(ops=np.where(np.arange(len(arch.ops)) == j, o, arch.ops))
                )
    for j, p in zip(*np.nonzero(arch.inputs >= 0), strict=True):
        for t in range(SPACE.num_ids):
            if t != arch.inputs[j, p]:
                ids = arch.inputs.copy()
                ids[j, p] = t
                edits.append(arch._replace(inputs=ids))
    for i in np.flatnonzero(arch.hidden >= 0):
        for j in range(SPACE.max_nodes):
            if j != arch.hidden[i]:
                hid = arch.hidden.copy()
                hid[i] = j
                edits.append(arch._replace(hidden=hid))
    batch = NBNLPArch(*(np.stack(x).astype(np.int8) for x in zip(*edits, strict=True)))
    valid = np.asarray(jax.jit(jax.vmap(SPACE.is_valid))(batch))
    want = jax.tree.map(np.asarray, jax.jit(jax.vmap(SPACE.compact))(batch))
    nbrs, ok = jax.jit(SPACE.neighbors, compiler_options=run_bound)(_at(samples[1], 0))
    got = jax.tree.map(lambda x: np.asarray(x)[np.asarray(ok)], nbrs)
    assert int(np.asarray(ok).sum()) == int(valid.sum()) > 0

    def rows(a):
        return sorted(zip(*(x.reshape(len(x), -1).tolist() for x in a), strict=True))

    assert rows(got) == rows(jax.tree.map(lambda x: x[valid], want))


def test_mutate_draws_the_edit_that_a_uniform_choice_among_all_neighbors_draws(
    samples, key, run_bound
):
    # The reference checks every edit: all of `neighbors`, its validity mask and a uniform
    # choice among the valid ones (`random_choice_masked`, JAX's categorical). `mutate`
    # checks edits lazily in the draw's order; for the same key it must take the same edit
    # (and the cell itself, compacted, where no edit is valid).
    batch = _at(samples[1], slice(0, 32))
    keys = jax.random.split(jax.random.fold_in(key, 7), 32)
    children = jax.jit(jax.vmap(SPACE.mutate))(keys, batch)
    nbrs, ok = jax.jit(jax.vmap(SPACE.neighbors), compiler_options=run_bound)(batch)
    pick = jax.vmap(random_choice_masked)(keys, ok)
    want = jax.tree.map(lambda x: x[jnp.arange(32), pick], nbrs)
    none = ~jnp.any(ok, axis=1)
    own = jax.vmap(SPACE.compact)(batch)
    want = jax.tree.map(
        lambda a, b: jnp.where(none.reshape((-1,) + (1,) * (a.ndim - 1)), b, a), want, own
    )
    chex.assert_trees_all_equal(children, want)
    assert int(ok.sum(axis=1).min()) < 20 < int(ok.shape[1])  # few valid among 2,425
    one = jax.jit(SPACE.mutate)  # one cell at a time: the same child
    for i in range(3):
        chex.assert_trees_all_equal(one(keys[i], _at(batch, i)), _at(children, i))


def _graph(recipe) -> nx.DiGraph:
    """A recipe as a labelled networkx graph: blend's inputs by position, the other ops'
    as sets; `h_new_i` labelled by its index."""
    g = nx.DiGraph()
    for name, node in recipe.items():
        role = f"|{name}" if name.startswith("h_new_") and name[6:].isdigit() else ""
        g.add_node(name, label=node["op"] + role)
        for p, src in enumerate(node["input"]):
            if src not in recipe:
                g.add_node(src, label=src)
            g.add_edge(src, name, pos=p if node["op"] == "blend" else -1)
    return g


def test_fingerprint_equals_graph_isomorphism_on_the_benchmarks_recipes(nasbench_dir):
    data = np.load(nasbench_dir / "nbnlp_wt2.npz")
    recipes = sorted(set(data["recipe"].tolist()))
    archs = [SPACE.from_string(r) for r in recipes]
    batch = NBNLPArch(*(jnp.stack(x) for x in zip(*archs, strict=True)))
    fps = [tuple(f) for f in np.asarray(jax.jit(jax.vmap(SPACE.fingerprint))(batch)).tolist()]
    graphs = [_graph(json.loads(r)) for r in recipes]
    nm = isomorphism.categorical_node_match("label", None)
    em = isomorphism.categorical_edge_match("pos", None)
    iso_pairs = 0
    for i, j in itertools.combinations(range(len(recipes)), 2):
        if fps[i] == fps[j] or graphs[i].number_of_nodes() == graphs[j].number_of_nodes():
            same = nx.is_isomorphic(graphs[i], graphs[j], node_match=nm, edge_match=em)
            iso_pairs += same
            assert same == (fps[i] == fps[j]), (recipes[i], recipes[j])
    assert iso_pairs > 0  # the benchmark lists some cells twice under other names


def test_encodings_have_fixed_shapes_and_see_the_graph(samples):
    _, batch = samples
    one_hot = jax.vmap(SPACE.one_hot)(batch)
    assert one_hot.shape[0] == 64
    assert one_hot.dtype == jnp.float32
    assert len({tuple(np.asarray(r).tolist()) for r in one_hot}) == 64
    adj = jax.vmap(SPACE.adjacency)(batch)
    v = SPACE.num_sources + SPACE.max_nodes + SPACE.max_hidden
    assert adj.matrix.shape == (64, v, v)
    # edges: one per input of every node, one per new hidden state
    arch = _at(batch, 0)
    recipe = SPACE.recipe(arch)
    edges = sum(len(n["input"]) for n in recipe.values()) + int(SPACE.tuple_size(arch))
    assert int(np.sum(np.asarray(adj.matrix[0]))) == edges
