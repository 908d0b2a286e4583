"""Searching only the cells a subset table holds (`bench.restrict`, NB101 subset)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jnas import bench, spaces
from jnas.bench import SubsetArch
from jnas.commands._common import SEARCHERS
from jnas.search import REGISTRY, make_searcher
from jnas.spaces import NB101, NATSSize


@pytest.fixture(scope="module")
def subset(nb101_csv_path):
    return bench.restrict(bench.load_nb101(nb101_csv_path), neighbors=5)


def _genes(cells):
    return np.concatenate(
        [np.asarray(x).reshape(len(np.asarray(cells.ops)), -1) for x in jax.tree.leaves(cells)], 1
    )


def test_the_subset_space_is_the_table_cells_with_nearest_neighbours(subset):
    space = subset.space
    assert space.size == subset.num_rows == 292
    genes = _genes(space.cells)
    rows = jnp.arange(space.size, dtype=jnp.int32)
    # decisions identify every cell, and snapping them back gives the same row
    back = jax.vmap(lambda r: space.from_decisions(space.to_decisions(SubsetArch(r))).row)(rows)
    np.testing.assert_array_equal(back, rows)
    # neighbours: the 5 other cells nearest in Hamming distance (brute force)
    for r in (0, 17, 291):
        d = np.sum(genes != genes[r][None], axis=1).astype(float)
        d[r] = np.inf
        near, ok = space.neighbors(SubsetArch(jnp.int32(r)))
        assert bool(jnp.all(ok))
        np.testing.assert_array_equal(np.sort(d[np.asarray(near.row)]), np.sort(d)[:5])
    kids = jax.vmap(space.mutate)(
        jax.random.split(jax.random.key(0), 50), SubsetArch(jnp.full((50,), 17, jnp.int32))
    )
    near17 = np.asarray(space.neighbors(SubsetArch(jnp.int32(17)))[0].row)
    assert set(np.asarray(kids.row).tolist()) == set(near17.tolist())  # all 5, nothing else


def test_encodings_and_queries_are_those_of_the_real_cells(subset):
    space, base = subset.space, NB101()
    r = 123
    cell = jax.tree.map(lambda x: x[r], space.cells)
    arch = SubsetArch(jnp.int32(r))
    np.testing.assert_array_equal(space.path(arch), base.path(cell))
    np.testing.assert_array_equal(space.one_hot(arch), base.one_hot(cell))
    adj, want = space.adjacency(arch), base.adjacency(cell)
    np.testing.assert_array_equal(adj.matrix, want.matrix)
    assert space.to_string(arch) == base.to_string(cell)
    assert set(spaces.capabilities(space)) == {
        "Space",
        "Encodable",
        "Decisions",
        "HasAdjacency",
        "HasPath",
    }
    assert space.from_string(base.to_string(cell)) == arch
    space.validate(arch)
    with pytest.raises(ValueError, match=r"arch\.row"):
        space.validate(SubsetArch(np.int32(292)))
    obj = bench.objective(
        subset, dataset="cifar10", metric="valid_acc", epochs=108, cost="evaluations"
    )
    rows = jnp.array([0, 5, 291], jnp.int32)
    fitness, cost = obj(SubsetArch(rows))
    np.testing.assert_array_equal(
        fitness, np.asarray(subset.column("cifar10", "valid_acc", 108))[np.asarray(rows)]
    )
    np.testing.assert_array_equal(cost, 1.0)


def test_restrict_needs_a_table_that_lists_its_cells(nb201_table):
    with pytest.raises(ValueError, match="does not list its cells"):
        bench.restrict(nb201_table)


@pytest.mark.parametrize("name", [n for n in SEARCHERS if not REGISTRY[n].multi_fidelity])
def test_every_single_fidelity_searcher_searches_the_subset(name, subset):
    from jnas.search import supports

    if not supports(REGISTRY[name], subset.space):  # MetaQNN needs layer rules
        with pytest.raises(ValueError, match="needs a space offering"):
            make_searcher(name, subset.space)
        return
    searcher = make_searcher(name, subset.space)
    obj = bench.objective(
        subset, dataset="cifar10", metric="valid_acc", epochs=108, cost="evaluations"
    )
    sim = bench.simulate(searcher, obj, key=jax.random.key(0), num_seeds=2, budget_s=30, chunk=2)
    assert np.all(sim.num_evals >= 30)
    final = sim.final_rows()
    assert np.all((final >= 0) & (final < 292))
    col = np.asarray(subset.column("cifar10", "valid_acc", 108))
    np.testing.assert_allclose(sim.best_fitness[:, -1], col[final])


def test_snapping_breaks_ties_without_favouring_low_rows(subset):
    space = subset.space
    sizes = jnp.asarray(space.decision_sizes)
    u = jax.random.uniform(jax.random.key(0), (2000, sizes.shape[0]))
    decisions = jnp.floor(u * sizes[None]).astype(jnp.int32)
    rows = np.asarray(jax.vmap(space.from_decisions)(decisions).row)
    genes = jnp.asarray(space._genes)
    nearest = jnp.min(jnp.sum(genes[None] != decisions[:, None], -1), axis=1)
    # every snap is to a nearest cell ...
    np.testing.assert_array_equal(jnp.sum(genes[rows] != decisions, -1), nearest)
    # ... and uniform decisions reach many cells, the upper half of the rows as often as
    # the lower (tie -> lowest row sent 2000 draws to a handful of low rows)
    assert len(set(rows.tolist())) > 100
    assert 0.4 < np.mean(rows >= space.size // 2) < 0.6


def test_a_subset_offers_exactly_the_encodings_of_its_base():
    """No forwarding: the subset's class declares `path` / `adjacency` only over a base
    that has them, so model-based searchers choose and refuse as on the base."""
    base = NATSSize()
    cells = base.from_index(jnp.arange(0, 40, 4))
    space = bench.subset_space(base, jax.tree.map(np.asarray, cells), neighbors_k=3)
    assert set(spaces.capabilities(space)) == {"Space", "Encodable", "Decisions"}
    assert not hasattr(space, "path")
    assert not hasattr(space, "adjacency")
    np.testing.assert_array_equal(
        space.one_hot(SubsetArch(jnp.int32(2))), base.one_hot(base.from_index(8))
    )
    with pytest.raises(ValueError, match="HasAdjacency"):
        make_searcher("bo-wl", space)
    with pytest.raises(ValueError, match="must name one of the table's 10 cells"):
        space.from_string(base.to_string(base.from_index(1)))
