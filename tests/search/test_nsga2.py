"""NSGA-II: non-dominated ranks and crowding distances against NumPy re-derivations of Deb
et al.'s procedures, the 2-D hypervolume against a rasterised count and the published NB201
front, and the search against random search on the table."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jnas import bench, search
from jnas.spaces import NB201


def _ranks_numpy(f):
    ranks, left, r = np.full(len(f), -1), set(range(len(f))), 0
    while left:
        front = {
            i
            for i in left
            if not any(np.all(f[j] >= f[i]) and np.any(f[j] > f[i]) for j in left if j != i)
        }
        for i in front:
            ranks[i] = r
        left -= front
        r += 1
    return ranks


def _crowding_numpy(f, ranks):
    """Deb et al. 2002, Fig. 'crowding-distance-assignment', per front."""
    d = np.zeros(len(f))
    span = f.max(0) - f.min(0)
    for r in np.unique(ranks):
        idx = np.flatnonzero(ranks == r)
        for m in range(f.shape[1]):
            order = idx[np.argsort(f[idx, m])]
            d[order[0]] = d[order[-1]] = np.inf
            for a, b, c in zip(order[:-2], order[1:-1], order[2:], strict=True):
                d[b] += (f[c, m] - f[a, m]) / span[m]
    return d


@pytest.mark.parametrize("scale", [(1.0, 1.0), (0.01, 3.0)])
def test_ranks_and_crowding_match_deb_et_al(scale):
    """Also with an objective whose range is below 1 (accuracies): each objective is
    scaled by its own range, whatever its size."""
    f = np.random.default_rng(0).normal(size=(40, 2)).astype(np.float32) * np.float32(scale)
    ranks = np.asarray(search.nondominated_ranks(jnp.asarray(f)))
    np.testing.assert_array_equal(ranks, _ranks_numpy(f))
    crowd = np.asarray(search.crowding_distance(jnp.asarray(f), jnp.asarray(ranks)))
    np.testing.assert_allclose(crowd, _crowding_numpy(f, ranks), rtol=1e-5)


def test_defaults_are_20_children_of_two_objectives(key):
    searcher = search.nsga2(NB201())
    assert searcher.batch_size == 20
    assert searcher.init(key).fitness.shape == (20, 2)


def test_survivors_are_the_best_ranked_then_least_crowded_of_parents_and_children(key):
    """NSGA-II's environmental selection against the NumPy re-derivation: of the parents
    and children together, the `population` first by non-dominated rank, then by
    crowding distance, largest first (Deb et al. 2002)."""
    searcher = search.nsga2(NB201(), population=8)
    state = searcher.init(key)
    rng = np.random.default_rng(4)
    for k in jax.random.split(key, 3):
        archs, _ = searcher.ask(k, state)
        told = rng.normal(size=(8, 2)).astype(np.float32)
        merged = np.concatenate([np.asarray(state.fitness), told])
        state = searcher.tell(state, archs, jnp.asarray(told))
    finite = np.isfinite(merged).all(1)
    assert finite.all()  # after the first generation every parent has been evaluated
    ranks = _ranks_numpy(merged)
    crowd = _crowding_numpy(merged, ranks)
    keep = np.lexsort((-crowd, ranks))[:8]
    np.testing.assert_array_equal(np.asarray(state.fitness), merged[keep])


def test_parents_win_binary_tournaments_by_rank_and_crowding(key):
    """A parent is the better (lower rank-and-crowding key) of two members drawn uniformly
    with replacement: the j-th best of P with probability ((P-j+1)^2 - (P-j)^2) / P^2.
    Members all ops equal (six edits apart), so a child's parent is the member one edit
    away; a chi-square test over 4,000 children."""
    from scipy import stats

    from jnas.search._nsga2 import NSGA2State
    from jnas.spaces import NB201Arch

    searcher = search.nsga2(NB201(), population=5)
    order = jnp.asarray([2.5, 0.3, 1.1, 0.2, 1.6], jnp.float32)  # member 3 best, then 1, ...
    state = NSGA2State(
        NB201Arch(jnp.repeat(jnp.arange(5, dtype=jnp.int8)[:, None], 6, axis=1)),
        jnp.zeros((5, 2), jnp.float32),
        order,
        jnp.asarray(5, jnp.int32),
    )
    children = jax.vmap(lambda k: searcher.ask(k, state)[0].ops)(jax.random.split(key, 800))
    children = np.asarray(children).reshape(-1, 6)
    parent = np.asarray([np.bincount(c, minlength=5).argmax() for c in children])
    counts = np.bincount(np.argsort(np.argsort(np.asarray(order)))[parent], minlength=5)
    j = np.arange(1, 6)
    expected = ((6.0 - j) ** 2 - (5.0 - j) ** 2) / 25 * len(parent)
    assert stats.chisquare(counts, expected).pvalue > 1e-3, (counts, expected)


def test_hypervolume_is_the_dominated_area():
    rng = np.random.default_rng(1)
    err, cost = rng.integers(0, 20, 30), rng.integers(0, 20, 30)
    grid = np.zeros((20, 20), bool)  # unit squares [e, e+1) x [c, c+1) dominated
    for e, c in zip(err, cost, strict=True):
        grid[e:, c:] = True
    assert bench.hypervolume(err, cost, (20, 20)) == grid.sum()
    assert bench.hypervolume(np.array([30.0]), np.array([1.0]), (20, 20)) == 0.0


def test_the_tables_front_has_the_published_hypervolume(nasbench_dir):
    table = bench.load_nb201(nasbench_dir)
    true = json.loads((nasbench_dir / "pareto_fronts.json").read_text())
    true = np.asarray(true["NAS201_CIFAR-100|TestAcc|FLOPs"]["points"])
    flops = np.asarray(table.column("cifar100", "flops_M", None))
    error = 100 - np.asarray(table.column("cifar100", "test_acc", 200))
    ref = (float(np.nanmedian(error)), float(flops.max()))
    got = bench.hypervolume(error, flops, ref)
    assert got == pytest.approx(bench.hypervolume(true[:, 0], true[:, 1], ref), rel=1e-3)


def test_simulate_pareto_is_a_loop_of_asks_and_tells_on_signed_columns(nasbench_dir):
    """Every seed's evaluated rows against a Python loop: seed s starts from
    `fold_in(key, s)`, is told (sign * column) per objective for the rows it asked, in
    generation order; bad counts and shapes are refused by name."""
    table = bench.load_nb201(nasbench_dir)
    objectives = [("cifar100", "valid_acc", 200, 1.0), ("cifar100", "flops_M", None, -1.0)]
    s = search.nsga2(table.space, 4)
    key = jax.random.key(3)
    rows = bench.simulate_pareto(s, table, objectives, key=key, num_seeds=2, generations=3)
    assert rows.shape == (2, 12)
    acc = np.asarray(table.column("cifar100", "valid_acc", 200))
    flops = np.asarray(table.column("cifar100", "flops_M", None))
    for seed in range(2):
        k_init, k_run = jax.random.split(jax.random.fold_in(key, seed))
        state, asked = s.init(k_init), []
        for kk in jax.random.split(k_run, 3):
            archs, state = s.ask(kk, state)
            r = np.asarray(jax.vmap(table.space.index)(archs))
            state = s.tell(state, archs, jnp.asarray(np.stack([acc[r], -flops[r]], -1)))
            asked.extend(r.tolist())
        assert rows[seed].tolist() == asked
    with pytest.raises(ValueError, match="generations"):
        bench.simulate_pareto(s, table, objectives, key=key, num_seeds=2, generations=0)
    with pytest.raises(ValueError, match="num_seeds"):
        bench.simulate_pareto(s, table, objectives, key=key, num_seeds=0, generations=1)
    with pytest.raises(ValueError, match="one length"):
        bench.pareto_front(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="1-D"):
        bench.hypervolume(np.zeros((2, 2)), np.zeros((2, 2)), (1.0, 1.0))


def test_nsga2_finds_more_of_the_front_than_random_search(nasbench_dir):
    table = bench.load_nb201(nasbench_dir)
    flops = np.asarray(table.column("cifar100", "flops_M", None))
    error = 100 - np.asarray(table.column("cifar100", "test_acc", 200))
    ref = (float(np.nanmedian(error)), float(flops.max()))
    objectives = [("cifar100", "valid_acc", 200, 1.0), ("cifar100", "flops_M", None, -1.0)]
    rows = bench.simulate_pareto(
        search.nsga2(table.space, 20),
        table,
        objectives,
        key=jax.random.key(0),
        num_seeds=16,
        generations=10,
    )
    rand = np.asarray(jax.random.randint(jax.random.key(1), rows.shape, 0, table.num_rows))
    hv = {
        k: np.mean([bench.hypervolume(error[r], flops[r], ref) for r in v])
        for k, v in (("nsga2", rows), ("rs", rand))
    }
    assert hv["nsga2"] > 1.03 * hv["rs"]
    s = search.nsga2(table.space, 4)
    state = s.init(jax.random.key(0))
    archs, state = s.ask(jax.random.key(1), state)
    with pytest.raises(ValueError, match="fitness"):
        s.tell(state, archs, jnp.ones(4))


@pytest.mark.parametrize("name", [n for n, e in search.REGISTRY.items() if e.multi_objective])
def test_multi_objective_searchers_keep_the_searcher_contract(name):
    """What tests/search/test_searcher_contract.py asks of the single-objective ones, with
    fitness vectors: one trace, a stable state, vmap == loop, NaN never kept over a number."""
    import chex

    from jnas.spaces import NB201

    space = NB201()
    s = search.make_searcher(name, space, population=6)
    assert s.batch_size == 6

    def fitness(archs):  # two objectives of the one-hot, as the single-objective contract
        flat = jax.vmap(space.one_hot)(archs).reshape(6, -1)
        w = jnp.arange(flat.shape[1])
        return jnp.stack([flat @ (w % 7), -(flat @ (w % 3))], -1).astype(jnp.float32)

    chex.clear_trace_counter()
    ask = jax.jit(chex.assert_max_traces(s.ask, n=1))
    tell = jax.jit(chex.assert_max_traces(s.tell, n=1))
    state = s.init(jax.random.key(0))
    for k in jax.random.split(jax.random.key(1), 4):
        archs, asked = ask(k, state)
        new = tell(asked, archs, fitness(archs))
        chex.assert_trees_all_equal_shapes_and_dtypes(new, state)
        assert bool(jnp.all(jax.vmap(space.is_valid)(archs)))
        state = new

    def run(key):
        def gen(st, k):
            archs, st = s.ask(k, st)
            return s.tell(st, archs, fitness(archs)), None

        return jax.lax.scan(gen, s.init(key), jax.random.split(key, 4))[0]

    keys = jax.random.split(jax.random.key(2), 3)
    batched = jax.jit(jax.vmap(run))(keys)
    for i, k in enumerate(keys):
        chex.assert_trees_all_close(
            jax.tree.map(lambda x, i=i: x[i], batched), jax.jit(run)(k), rtol=1e-5, atol=1e-6
        )
    # NaN (a failed evaluation) ranks below every evaluated architecture
    state = s.init(jax.random.key(3))
    archs, state = s.ask(jax.random.key(4), state)
    state = s.tell(state, archs, jnp.full((6, 2), jnp.nan))
    archs, state = s.ask(jax.random.key(5), state)
    state = s.tell(state, archs, fitness(archs))
    assert bool(jnp.all(jnp.isfinite(state.fitness)))
