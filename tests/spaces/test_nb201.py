"""NB201 and NATS size space against the real benchmark tables."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from jnas.spaces import NB201, NATSSize, NB201Arch


def test_every_cell_round_trips_string_arch_index(nb201_npz):
    space = NB201()
    archs = space.enumerate()
    np.testing.assert_array_equal(np.asarray(archs.ops), nb201_npz["ops"])
    np.testing.assert_array_equal(jax.jit(jax.vmap(space.index))(archs), np.arange(space.size))
    for i, text in enumerate(nb201_npz["arch"]):
        arch = NB201Arch(archs.ops[i])
        assert space.to_string(arch) == text
        np.testing.assert_array_equal(space.from_string(str(text)).ops, archs.ops[i])


def test_isomorphism_classes_equal_the_tables(nb201_npz):
    space = NB201()
    ops = np.asarray(space.enumerate().ops)
    keys = [space.isomorphism_key(NB201Arch(o)) for o in ops]
    assert keys == list(nb201_npz["unique_str"])
    assert len(set(keys)) == 6466


def test_known_cells():
    space = NB201()
    best = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"
    assert space.to_string(space.from_index(6111)) == best
    all_skip = "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|"
    assert int(space.index(space.from_string(all_skip))) == 1835


def test_non_benchmark_space_uses_plain_enumeration():
    space = NB201(ops=("none", "skip_connect", "nor_conv_3x3"), num_nodes=3)
    assert space.size == 27
    assert not space.is_benchmark
    arch = space.from_string("|nor_conv_3x3~0|+|none~0|skip_connect~1|")
    assert int(space.index(arch)) == 2 * 9 + 0 * 3 + 1


def test_isomorphism_key_drops_zero_paths():
    space = NB201()
    a = space.from_string("|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|")
    b = space.from_string("|avg_pool_3x3~0|+|none~0|nor_conv_1x1~1|+|skip_connect~0|none~1|none~2|")
    assert space.isomorphism_key(a) == space.isomorphism_key(b) == "#+#+0"


def test_adjacency_encoding_structure():
    space = NB201()
    enc = space.adjacency(space.from_index(0))
    m = np.asarray(enc.matrix)
    assert m.shape == (8, 8)
    # input feeds the three edges leaving node 0; edges into node 3 feed the output
    np.testing.assert_array_equal(np.flatnonzero(m[0]), [1, 2, 4])
    np.testing.assert_array_equal(np.flatnonzero(m[:, 7]), [4, 5, 6])
    # edge e12 (node 3 in the encoding) reads the edge into node 1 (e01)
    np.testing.assert_array_equal(np.flatnonzero(m[:, 3]), [1])
    assert np.all(np.triu(m, 1) == m)
    assert enc.ops.tolist() == [5, 4, 2, 1, 2, 1, 1, 6]


def test_path_encoding_hand_worked():
    space = NB201()
    assert space.path_dim == 4 + 16 + 64
    # only the direct edge 0->3 alive: one length-1 path, op skip_connect (rank 0)
    arch = space.from_string("|none~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|")
    enc = np.asarray(space.path(arch))
    np.testing.assert_array_equal(np.flatnonzero(enc), [0])
    # chain 0->1->2->3 of conv3x3 (rank 2): path (2, 2, 2) -> 4 + 16 + 2*16 + 2*4 + 2
    arch = space.from_string(
        "|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|none~0|none~1|nor_conv_3x3~2|"
    )
    np.testing.assert_array_equal(np.flatnonzero(space.path(arch)), [20 + 32 + 8 + 2])
    # all four paths alive for a cell with no `none`
    assert float(jnp.sum(space.path(space.from_index(1)))) == 4.0


@given(st.lists(st.integers(0, 4), min_size=6, max_size=6), st.integers(0, 2**31 - 1))
def test_mutate_changes_exactly_one_edge(ops, seed):
    parent = NB201Arch(jnp.asarray(ops, jnp.int8))
    child = NB201().mutate(jax.random.key(seed), parent)
    assert int(jnp.sum(child.ops != parent.ops)) == 1
    assert bool(NB201().is_valid(child))


def test_neighbors_count():
    batch, mask = NB201().neighbors(NB201().from_index(3))
    assert batch.ops.shape == (24, 6)
    assert bool(jnp.all(mask))


@pytest.mark.parametrize(
    "bad_string",
    [
        "",
        "|nor_conv_3x3~0|",
        "|nor_conv_3x3~1|+|none~0|none~1|+|none~0|none~1|none~2|",
        "|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|",
        "|none~0|+|none~0|+|none~0|none~1|none~2|",
        "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|+|none~0|",
    ],
)
def test_from_string_rejects_malformed(bad_string):
    with pytest.raises(ValueError, match=r"NB201.from_string: `string` must be"):
        NB201().from_string(bad_string)


def test_nats_size_index_matches_table(nats_npz):
    space = NATSSize()
    archs = space.enumerate()
    widths = np.asarray(space.channels)[np.asarray(archs.channels)]
    np.testing.assert_array_equal(widths, nats_npz["channels"])
    for i in (0, 1, 11, 284, 32767):
        assert space.to_string(space.from_index(i)) == nats_npz["arch"][i]
        assert int(space.index(space.from_string(str(nats_npz["arch"][i])))) == i


def test_nats_size_rejects_unknown_width():
    with pytest.raises(ValueError, match=r"channel counts from"):
        NATSSize().from_string("8:16:32:64:65")
    with pytest.raises(ValueError, match=r"5 ':'-separated"):
        NATSSize().from_string("8:16:32")
