"""DARTS genotype space: parsing published genotypes, validity, encodings."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jnas.spaces import DARTS, DARTS_V1, DARTS_V2


def test_published_genotypes_parse_and_round_trip():
    space = DARTS()
    for text in (DARTS_V1, DARTS_V2):
        arch = space.from_string(text)
        assert space.to_string(arch) == text
    arch = space.from_string(DARTS_V2)
    assert np.asarray(arch.inputs).tolist()[0] == [0, 1, 0, 1, 1, 0, 0, 2]
    assert space.ops[int(arch.ops[0, 7])] == "dil_conv_3x3"


def test_range_concat_is_accepted():
    space = DARTS()
    text = DARTS_V2.replace("normal_concat=[2, 3, 4, 5]", "normal_concat=range(2, 6)")
    assert space.to_string(space.from_string(text)) == DARTS_V2


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("Genotype(normal=[])", "exactly the fields"),
        (DARTS_V2.replace("('sep_conv_3x3', 0)", "('sep_conv_9x9', 0)", 1), "ops from"),
        (DARTS_V2.replace("('sep_conv_3x3', 0)", "('none', 0)", 1), "ops from"),
        (DARTS_V2.replace("('dil_conv_3x3', 2)", "('dil_conv_3x3', 5)"), "inputs in"),
        (
            DARTS_V2.replace(
                "('sep_conv_3x3', 1), ('sep_conv_3x3', 0)",
                "('sep_conv_3x3', 1), ('sep_conv_3x3', 1)",
                1,
            ),
            "distinct",
        ),
        (DARTS_V2.replace("normal_concat=[2, 3, 4, 5]", "normal_concat=[2, 3]"), "normal_concat"),
        ("Genotype(normal=__import__('os'))", "must be"),
        ("print('x')", "must be"),
    ],
)
def test_malformed_genotypes_raise(text, match):
    with pytest.raises(ValueError, match=match):
        DARTS().from_string(text)


def test_size_and_neighbors():
    space = DARTS()
    assert space.size == (1 * 3 * 6 * 10 * 7**8) ** 2  # node k: C(k+2, 2) pairs x 7^2 ops
    _batch, mask = space.neighbors(space.from_string(DARTS_V2))
    # per cell: 8 edges x 6 other ops + node k's 2 edges x k other inputs (0+2+4+6)
    assert int(mask.sum()) == 2 * (8 * 6 + 12)


def test_adjacency_encoding():
    space = DARTS()
    arch = space.from_string(DARTS_V2)
    a = np.asarray(space.edge_matrix(arch))
    assert a.shape == (2, 6, 6)
    assert space.ops[a[0, 2, 5]] == "dil_conv_3x3"  # node 3 (index 5) reads node 0 (index 2)
    assert space.ops[a[1, 0, 2]] == "max_pool_3x3"
    assert int((a > 0).sum()) == 16


def test_sample_never_uses_none(key):
    space = DARTS()
    archs = jax.vmap(space.sample)(jax.random.split(key, 200))
    assert int((archs.ops == 0).sum()) == 0
    assert set(np.unique(np.asarray(archs.ops)).tolist()) == set(range(1, 8))


def test_decisions_round_trip_to_the_same_cells():
    space = DARTS()
    archs = jax.vmap(space.sample)(jax.random.split(jax.random.key(0), 200))
    d = jax.jit(jax.vmap(space.to_decisions))(archs)
    sizes = np.asarray(space.decision_sizes)
    assert d.shape == (200, len(sizes))
    assert np.all((np.asarray(d) >= 0) & (np.asarray(d) < sizes))
    back = jax.jit(jax.vmap(space.from_decisions))(d)
    assert bool(jnp.all(jax.vmap(space.is_valid)(back)))

    def pairs(a):  # each node's {(input, op)}: a node's inputs are unordered
        code = np.asarray(a.inputs).astype(int) * 16 + np.asarray(a.ops)
        return np.sort(code.reshape(len(code), 2, space.num_nodes, 2), -1)

    np.testing.assert_array_equal(pairs(back), pairs(archs))
    np.testing.assert_array_equal(jax.vmap(space.to_decisions)(back), d)
    # every decision vector is a cell: uniform decisions cover every input pair
    rng = np.random.default_rng(1)
    random = rng.integers(0, sizes, (500, len(sizes)))
    cells = jax.vmap(space.from_decisions)(jnp.asarray(random))
    assert bool(jnp.all(jax.vmap(space.is_valid)(cells)))
    assert len({tuple(x) for x in np.asarray(cells.inputs)[:, 0, 6:8].tolist()}) == 10


@pytest.mark.parametrize("name", ["reinforce-lstm", "qlearning", "pnas"])
def test_policy_searchers_ask_valid_darts_cells(name):
    from jnas import search

    space = DARTS()
    searcher = search.make_searcher(name, space)
    state = searcher.init(jax.random.key(0))
    ask, tell = jax.jit(searcher.ask), jax.jit(searcher.tell)
    for i in range(3):
        archs, state = ask(jax.random.key(i + 1), state)
        assert bool(jnp.all(jax.vmap(space.is_valid)(archs)))
        state = tell(state, archs, jnp.arange(searcher.batch_size, dtype=jnp.float32))
