"""NB101: pruning, the release's isomorphism hash, encodings, the real subset table."""

import csv
import gzip

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jnas.spaces import NB101, NB101Arch

# The NB101 README's example cell (5 vertices + padding).
EXAMPLE = (
    [
        [0, 1, 1, 1, 0, 1, 0],
        [0, 0, 0, 0, 0, 0, 1],
        [0, 0, 0, 0, 0, 0, 1],
        [0, 0, 0, 0, 1, 0, 0],
        [0, 0, 0, 0, 0, 0, 1],
        [0, 0, 0, 0, 0, 0, 1],
        [0, 0, 0, 0, 0, 0, 0],
    ],
    [
        "input",
        "conv1x1-bn-relu",
        "conv3x3-bn-relu",
        "conv3x3-bn-relu",
        "conv3x3-bn-relu",
        "maxpool3x3",
        "output",
    ],
)


def _permute(matrix, ops, perm):
    """Relabel interior vertices by `perm` (keeps input 0 and output 6), re-sorted
    topologically so the matrix stays upper triangular."""
    m = np.asarray(matrix)
    order = [0, *[p + 1 for p in perm], 6]
    pm = m[np.ix_(order, order)]
    return pm, [ops[i] for i in order]


def test_hash_is_invariant_to_vertex_relabelling():
    space = NB101()
    # two interior vertices that are not connected to each other can be swapped
    m, ops = EXAMPLE
    a = space.from_spec(m, ops)
    pm, pops = _permute(m, ops, [1, 0, 2, 3, 4])  # swap vertices 1 and 2 (independent)
    b = space.from_spec(pm, pops)
    assert not np.array_equal(np.asarray(a.ops), np.asarray(b.ops))
    assert space.hash(a) == space.hash(b)
    # a different op gives a different hash
    c = space.from_spec(m, [*ops[:1], "maxpool3x3", *ops[2:]])
    assert space.hash(c) != space.hash(a)


def test_hash_ignores_dead_vertices_and_padding():
    space = NB101()
    small = space.from_spec(
        [[0, 1, 0], [0, 0, 1], [0, 0, 0]], ["input", "conv3x3-bn-relu", "output"]
    )
    m = np.zeros((7, 7), np.int8)
    m[0, 1] = m[1, 6] = 1
    m[2, 3] = 1  # a dangling edge between dead vertices
    padded = NB101Arch(jnp.asarray(m), jnp.asarray([0, 2, 1, 1, 2], jnp.int8))
    assert space.hash(small) == space.hash(padded)
    pruned, live = space.prune(padded)
    np.testing.assert_array_equal(live, [1, 1, 0, 0, 0, 0, 1])
    assert int(pruned.matrix.sum()) == 2


def test_validity_rules():
    space = NB101()
    m = np.zeros((7, 7), np.int8)
    m[0, 1] = 1  # no path to the output
    with pytest.raises(ValueError, match="path from input to output"):
        space.validate(NB101Arch(jnp.asarray(m), jnp.zeros(5, jnp.int8)))
    full = np.triu(np.ones((7, 7), np.int8), 1)  # 21 edges > 9
    with pytest.raises(ValueError, match="at most 9 edges"):
        space.validate(NB101Arch(jnp.asarray(full), jnp.zeros(5, jnp.int8)))
    assert not bool(space.is_valid(NB101Arch(jnp.asarray(full), jnp.zeros(5, jnp.int8))))
    cyclic = np.zeros((7, 7), np.int8)
    cyclic[0, 6] = cyclic[3, 2] = 1  # below the diagonal: not a DAG in this order
    with pytest.raises(ValueError, match="upper triangular"):
        space.validate(NB101Arch(jnp.asarray(cyclic), jnp.zeros(5, jnp.int8)))


def test_from_spec_rejects_bad_input():
    space = NB101()
    with pytest.raises(ValueError, match="`ops` must be 'input' first"):
        space.from_spec([[0, 1], [0, 0]], ["conv3x3-bn-relu", "output"])
    with pytest.raises(ValueError, match="interior ops"):
        space.from_spec([[0, 1, 0], [0, 0, 1], [0, 0, 0]], ["input", "conv5x5", "output"])
    with pytest.raises(ValueError, match="`matrix` must be a square"):
        space.from_spec([[0, 1]], ["input", "output"])


def test_path_encoding_hand_worked():
    space = NB101()
    assert space.path_dim == 364
    m, ops = EXAMPLE
    enc = np.asarray(space.path(space.from_spec(m, ops)))
    # paths: in->1->out (conv1x1: 1 + 1), in->2->out (conv3x3: 1 + 0),
    # in->3->4->out (conv3x3, conv3x3: 4 + 0 + 0), in->5->out (maxpool: 1 + 2)
    np.testing.assert_array_equal(np.flatnonzero(enc), [1, 2, 3, 4])


def test_hash_groups_the_subset_tables_repeated_cells(nb101_csv_path):
    """The subset holds raw specs, several of which are the same NB101 model; each row's
    accuracy is one of that model's 3 trained seeds. Grouping rows by our hash must give
    groups with at most 3 distinct accuracies, and isomorphic rows must share a hash."""
    import collections

    space = NB101()
    with gzip.open(nb101_csv_path, "rt") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 500
    groups = collections.defaultdict(set)
    for r in rows:
        arch = space.from_string(r["adjacency_7x7_rowmajor"] + ":" + r["ops"])
        assert bool(space.is_valid(arch))
        groups[space.hash(arch)].add(r["val_acc_108ep"])
    assert len(groups) == 292
    assert max(len(v) for v in groups.values()) == 3
    assert sum(len(v) == 3 for v in groups.values()) > 10  # the hash is not too fine either
    first = rows[0]["adjacency_7x7_rowmajor"] + ":" + rows[0]["ops"]
    assert space.to_string(space.from_string(first)) == first


def test_sampling_matches_published_validity_rate(key):
    """Random 7x7 upper-triangular graphs: the sampler only returns valid cells, and
    pruning keeps at most 9 edges."""
    space = NB101()
    archs = jax.jit(jax.vmap(space.sample))(jax.random.split(key, 64))
    pruned, live = jax.vmap(space.prune)(archs)
    assert bool(jnp.all(live[:, 0] & live[:, 6]))
    assert int(jnp.max(jnp.sum(pruned.matrix.astype(jnp.int32), axis=(1, 2)))) <= 9


def test_host_fingerprints_equal_the_jitted_ones():
    """The loaders key tables with NumPy (`fingerprints_host`), queries look rows up with
    the jitted `fingerprint`: they must agree bit for bit, dead vertices included."""
    space = NB101()
    archs = jax.vmap(space.sample)(jax.random.split(jax.random.key(3), 300))
    m, o = np.asarray(archs.matrix), np.asarray(archs.ops)
    host = space.fingerprints_host(m, o)
    assert host.dtype == np.uint32
    assert host.shape == (300, 2)
    np.testing.assert_array_equal(host, np.asarray(jax.jit(jax.vmap(space.fingerprint))(archs)))
    assert len({tuple(k) for k in host.tolist()}) == len(
        {space.hash_arrays(a, b) for a, b in zip(m, o, strict=True)}
    )
