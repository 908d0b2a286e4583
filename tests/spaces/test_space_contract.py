"""The contract every search space keeps, checked on each space of the registry."""

import string as stringlib

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jnas import spaces

SPACES = {
    "nb201": spaces.NB201(),
    "nb101": spaces.NB101(),
    "darts": spaces.DARTS(),
    "nats_size": spaces.NATSSize(),
    "chain": spaces.Chain(),
    "sequential": spaces.Sequential(),
    "hierarchical": spaces.Hierarchical(),
    "darts_rnn": spaces.DARTSRecurrent(),
    "memory_bank": spaces.MemoryBank(),
}
IDS = list(SPACES)


def _leaves(arch):
    return [np.asarray(x) for x in jax.tree.leaves(arch)]


def _num_changed(a, b) -> int:
    return sum(int(np.sum(x != y)) for x, y in zip(_leaves(a), _leaves(b), strict=True))


@pytest.mark.parametrize("name", IDS)
def test_space_is_hashable_static_argument(name):
    space = SPACES[name]
    assert hash(space) == hash(type(space)())
    assert space == type(space)()


@pytest.mark.parametrize("name", IDS)
def test_sample_jit_vmap_equals_loop_and_is_valid(name, key):
    space = SPACES[name]
    keys = jax.random.split(key, 6)
    batch = jax.jit(jax.vmap(space.sample))(keys)
    for i, k in enumerate(keys[:3]):  # op by op (no jit): three keys say it
        one = space.sample(k)
        chex.assert_trees_all_equal(jax.tree.map(lambda x, i=i: x[i], batch), one)
        assert bool(space.is_valid(one))
        space.validate(one)
    assert bool(jnp.all(jax.vmap(space.is_valid)(batch)))
    # integer dtypes, fixed shapes: a batch is just a leading axis
    for leaf in jax.tree.leaves(batch):
        assert leaf.dtype == jnp.int8
        assert leaf.shape[0] == 6


@pytest.mark.parametrize("name", IDS)
def test_samples_differ_across_keys(name, key):
    space = SPACES[name]
    batch = jax.vmap(space.sample)(jax.random.split(key, 8))
    strings = {space.to_string(jax.tree.map(lambda x, i=i: x[i], batch)) for i in range(8)}
    assert len(strings) > 1


@pytest.mark.parametrize("name", IDS)
def test_mutate_changes_exactly_one_decision_and_stays_valid(name, key):
    space = SPACES[name]
    mutate = jax.jit(jax.vmap(space.mutate))
    parents = jax.vmap(space.sample)(jax.random.split(key, 16))
    children = mutate(jax.random.split(jax.random.fold_in(key, 1), 16), parents)
    assert bool(jnp.all(jax.vmap(space.is_valid)(children)))
    parents, children = jax.tree.map(np.asarray, (parents, children))
    for i in range(16):
        p = jax.tree.map(lambda x, i=i: x[i], parents)
        c = jax.tree.map(lambda x, i=i: x[i], children)
        assert _num_changed(p, c) == 1, (space.to_string(p), space.to_string(c))
        if i < 4:  # a mutated child equals the no-jit result (op by op: four say it)
            k = jax.random.split(jax.random.fold_in(key, 1), 16)[i]
            chex.assert_trees_all_equal(space.mutate(k, p), c)


@pytest.mark.parametrize("name", IDS)
def test_neighbors_are_the_single_changes(name, key):
    space = SPACES[name]
    arch = space.sample(key)
    batch, mask = jax.tree.map(np.asarray, jax.jit(space.neighbors)(arch))
    assert mask.any()
    valid = np.asarray(jax.vmap(space.is_valid)(batch))
    assert np.all(valid[mask])
    seen = set()
    for i in np.flatnonzero(mask):
        n = jax.tree.map(lambda x, i=i: x[i], batch)
        assert _num_changed(arch, n) == 1
        seen.add(space.to_string(n))
    assert len(seen) == int(mask.sum())  # no duplicates


@pytest.mark.parametrize("name", IDS)
def test_string_round_trip(name, key):
    space = SPACES[name]
    for k in jax.random.split(key, 5):
        arch = space.sample(k)
        text = space.to_string(arch)
        back = space.from_string(text)
        chex.assert_trees_all_equal(back, arch)
        assert space.to_string(back) == text


@pytest.mark.parametrize("name", IDS)
def test_one_hot_is_jittable_and_one_hot(name, key):
    space = SPACES[name]
    archs = jax.vmap(space.sample)(jax.random.split(key, 4))
    enc = jax.jit(jax.vmap(space.one_hot))(archs)
    assert enc.dtype == jnp.float32
    assert enc.shape[0] == 4
    assert set(np.unique(np.asarray(enc))) <= {0.0, 1.0}
    np.testing.assert_array_equal(enc[0], space.one_hot(jax.tree.map(lambda x: x[0], archs)))


@pytest.mark.parametrize("name", IDS)
def test_validate_rejects_wrong_types_and_shapes(name):
    space = SPACES[name]
    with pytest.raises(ValueError, match="arch"):
        space.validate("not an arch")
    arch = space.sample(jax.random.key(3))
    bad = jax.tree.map(lambda x: jnp.concatenate([x.reshape(-1), x.reshape(-1)]), arch)
    with pytest.raises(ValueError, match="arch"):
        space.validate(bad)
    out_of_range = jax.tree.map(lambda x: jnp.full_like(x, 127), arch)
    with pytest.raises(ValueError, match="arch"):
        space.validate(out_of_range)
    assert not bool(space.is_valid(out_of_range))


@pytest.mark.parametrize("name", IDS)
@given(text=st.text(alphabet=stringlib.printable, max_size=60))
def test_from_string_rejects_garbage_with_value_error(name, text):
    space = SPACES[name]
    try:
        arch = space.from_string(text)
    except ValueError as err:
        message = str(err)
    else:  # a random string that happens to be valid must round-trip
        assert space.to_string(arch) == text
        return
    assert "from_string" in message or "validate" in message


@pytest.mark.parametrize("name", IDS)
def test_from_string_error_names_argument_and_value(name):
    space = SPACES[name]
    with pytest.raises(ValueError, match=r"`string` must be .*got"):
        space.from_string("|definitely~not~an~arch|")
    with pytest.raises(ValueError, match="`string` must be a str"):
        space.from_string(42)


@pytest.mark.parametrize("name", IDS)
def test_size_is_positive_int(name):
    size = SPACES[name].size
    assert isinstance(size, int)
    assert size > 1


@pytest.mark.parametrize("name", ["nb201", "nats_size"])
def test_finite_space_index_round_trip_under_jit(name):
    space = SPACES[name]
    idx = jnp.arange(space.size, dtype=jnp.int32)
    archs = jax.jit(jax.vmap(space.from_index))(idx)
    back = jax.jit(jax.vmap(space.index))(archs)
    np.testing.assert_array_equal(back, idx)
    chex.assert_trees_all_equal(space.enumerate(), archs)
    with pytest.raises(ValueError, match="index"):
        space.from_index(space.size)
    with pytest.raises(ValueError, match="index"):
        space.from_index(-1)


def test_constructors_reject_bad_configuration():
    with pytest.raises(ValueError, match="NB201: `ops`"):
        spaces.NB201(ops=("none", "none"))
    with pytest.raises(ValueError, match="NB201: `num_nodes`"):
        spaces.NB201(num_nodes=1)
    with pytest.raises(ValueError, match="NATSSize: `channels`"):
        spaces.NATSSize(channels=(8, 8))
    with pytest.raises(ValueError, match="Chain: `stages`"):
        spaces.Chain(stages=((24, 0, 2),))
    with pytest.raises(ValueError, match="Chain: `kernels`"):
        spaces.Chain(kernels=(2, 4))
    with pytest.raises(ValueError, match="Sequential: `max_layers`"):
        spaces.Sequential(max_layers=0)
    with pytest.raises(ValueError, match="Hierarchical: `num_motifs`"):
        spaces.Hierarchical(num_nodes=(4, 5), num_motifs=(6, 2))
    with pytest.raises(ValueError, match="DARTS: `num_nodes`"):
        spaces.DARTS(num_nodes=0)
    with pytest.raises(ValueError, match="NB101: `ops`"):
        spaces.NB101(ops=("input", "conv"))


_MUTATE = {name: jax.jit(space.mutate) for name, space in SPACES.items()}
_SAMPLE = {name: jax.jit(space.sample) for name, space in SPACES.items()}


@pytest.mark.parametrize("name", IDS)
@settings(max_examples=30)
@given(parent_seed=st.integers(0, 2**31 - 1), child_seed=st.integers(0, 2**31 - 1))
def test_mutate_property(name, parent_seed, child_seed):
    """For any parent and any key: exactly one decision changes and the child is valid."""
    space = SPACES[name]
    parent = _SAMPLE[name](jax.random.key(parent_seed))
    child = _MUTATE[name](jax.random.key(child_seed), parent)
    assert _num_changed(parent, child) == 1
    assert bool(space.is_valid(child))


# What each space offers: the README's table of spaces, written out independently of the
# code. A capability silently lost (or gained by a half-written method) fails here.
OFFERS = {
    "nb201": {
        "Space",
        "Encodable",
        "Indexed",
        "Decisions",
        "HasAdjacency",
        "HasPath",
        "HasSupernet",
        "Buildable",
    },
    "nb101": {"Space", "Encodable", "HasAdjacency", "HasPath", "Buildable"},
    "darts": {"Space", "Encodable", "Decisions", "HasSupernet", "Buildable"},
    "nats_size": {"Space", "Encodable", "Indexed", "Decisions", "HasSupernet", "Buildable"},
    "chain": {"Space", "Encodable", "Decisions", "HasSupernet", "Buildable"},
    "sequential": {"Space", "Encodable", "Decisions", "LayerRules", "Buildable"},
    "hierarchical": {"Space", "Encodable", "Decisions", "Buildable"},
    "darts_rnn": {"Space", "Encodable", "Decisions", "HasSupernet", "Buildable"},
    "memory_bank": {"Space", "Encodable", "Decisions", "HasSupernet", "Buildable"},
}


def test_every_space_declares_its_capabilities():
    assert set(OFFERS) == set(SPACES)
    for name, space in SPACES.items():
        assert set(spaces.capabilities(space)) == OFFERS[name], name


def test_require_names_the_capability_and_what_is_missing():
    class NoMutate:
        size = 3

        def sample(self, key): ...
        def neighbors(self, arch): ...
        def is_valid(self, arch): ...
        def validate(self, arch): ...
        def to_string(self, arch): ...
        def from_string(self, s): ...

    assert not isinstance(NoMutate(), spaces.Space)
    with pytest.raises(
        ValueError,
        match=r"my_searcher: needs a space offering Space .*"
        r"NoMutate lacks \['mutate'\]",
    ):
        spaces.require("my_searcher", NoMutate(), spaces.Space)
    with pytest.raises(
        ValueError,
        match=r"offering Decisions.*NB101 lacks "
        r"\['decision_sizes', 'from_decisions'",
    ):
        spaces.require("reinforce", spaces.NB101(), spaces.Space, spaces.Decisions)
    spaces.require("reinforce", spaces.NB201(), spaces.Space, spaces.Decisions)


@pytest.mark.parametrize("name", [n for n in IDS if "Decisions" in OFFERS[n]])
def test_decisions_round_trip_and_every_vector_is_valid(name, key):
    space = SPACES[name]
    sizes = np.asarray(space.decision_sizes)
    archs = jax.vmap(space.sample)(jax.random.split(key, 64))
    d = jax.jit(jax.vmap(space.to_decisions))(archs)
    assert d.shape == (64, len(sizes))
    assert np.all((np.asarray(d) >= 0) & (np.asarray(d) < sizes))
    # valid architectures come back unchanged (DARTS: in its canonical input order)
    back = jax.jit(jax.vmap(space.from_decisions))(d)
    np.testing.assert_array_equal(jax.vmap(space.to_decisions)(back), d)
    # a policy samples each decision independently: every vector must give a valid arch
    rng = np.random.default_rng(0)
    random = (rng.integers(0, 1 << 30, (256, len(sizes))) % sizes).astype(np.int32)
    archs = jax.jit(jax.vmap(space.from_decisions))(jnp.asarray(random))
    assert bool(jnp.all(jax.vmap(space.is_valid)(archs)))


def test_sequential_from_decisions_repairs_to_the_next_allowed_token():
    space = spaces.Sequential()
    # all `terminal`: the first layer must be a conv, the next allowed token is token 1
    arch = space.from_decisions(jnp.zeros(space.max_layers, jnp.int32))
    assert space.tokens[int(arch.tokens[0])] == space.tokens[1]
    assert space.tokens[1][0] == "conv"
    np.testing.assert_array_equal(arch.tokens[1:], 0)
    # a pool first: forbidden, the tokens after it in order are pools and fcs (also
    # forbidden first), so it wraps around to terminal (forbidden) and then token 1
    first_pool = next(i for i, t in enumerate(space.tokens) if t[0] == "pool")
    d = np.zeros(space.max_layers, np.int32)
    d[0] = first_pool
    assert int(space.from_decisions(jnp.asarray(d)).tokens[0]) == 1
    # conv, pool, pool: the second pool is forbidden after a pool; the next allowed
    # token after it is the first fc only if the map is small enough, otherwise terminal
    conv = next(i for i, t in enumerate(space.tokens) if t[:2] == ("conv", 3))
    d = np.zeros(space.max_layers, np.int32)
    d[:3] = [conv, first_pool, first_pool]
    out = np.asarray(space.from_decisions(jnp.asarray(d)).tokens)
    assert out[:2].tolist() == [conv, first_pool]
    assert out[2] != first_pool
    assert bool(space.is_valid(spaces.SequentialArch(jnp.asarray(out))))


def test_hierarchical_from_decisions_reconnects_only_broken_motifs():
    space = spaces.Hierarchical()
    arch = space.sample(jax.random.key(3))
    d = np.asarray(space.to_decisions(arch)).copy()
    e0 = space.num_edges(0)
    d[:e0] = 0  # level 2, motif 0: every edge `none`, no input -> output path
    out = space.from_decisions(jnp.asarray(d))
    motif = np.asarray(out.levels[0][0])
    direct = space.edges(0).index((0, space.num_nodes[0] - 1))
    assert 1 <= motif[direct] < space.num_choices(0)
    np.testing.assert_array_equal(np.delete(motif, direct), 0)
    # every other motif and level untouched
    np.testing.assert_array_equal(np.asarray(out.levels[0][1:]), np.asarray(arch.levels[0][1:]))
    np.testing.assert_array_equal(np.asarray(out.levels[1]), np.asarray(arch.levels[1]))
