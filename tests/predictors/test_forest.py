"""The random forest of SMAC's surrogate against scikit-learn on the same binary data."""

import jax
import numpy as np
import pytest
from sklearn.ensemble import RandomForestRegressor
from sklearn.tree import DecisionTreeRegressor

from jnas.predictors import forest_fit, forest_predict
from jnas.predictors._forest import feature_subsets

fit = jax.jit(forest_fit, static_argnames=("trees", "depth", "max_features", "bootstrap"))
predict = jax.jit(forest_predict)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    x = (rng.random((150, 30)) < 0.4).astype(np.float32)
    y = 2 * x[:, 0] + x[:, 1] * x[:, 2] - x[:, 3] + rng.normal(0, 0.3, 150)
    return x, y


@pytest.mark.parametrize("depth", [3, 6])
def test_a_tree_partitions_the_data_as_sklearns_cart(data, depth):
    """Without bootstrap and with every feature, each tree is `DecisionTreeRegressor`:
    equal predictions on the training rows (tied features that split the training rows
    alike may route unseen rows differently, so those are not compared)."""
    x, y = data
    forest = fit(jax.random.key(0), x, y, trees=2, depth=depth, max_features=1.0, bootstrap=False)
    tree = DecisionTreeRegressor(max_depth=depth).fit(x, y)
    mean, var = predict(forest, x)
    np.testing.assert_allclose(mean, tree.predict(x), atol=1e-5)
    np.testing.assert_allclose(var, 0.0, atol=1e-10)  # identical trees
    # masked rows are the same as fitting on the subset (fixed shapes for a history)
    mask = np.arange(150) < 90
    masked = forest_fit(
        jax.random.key(0), x, y, mask, trees=1, depth=depth, max_features=1.0, bootstrap=False
    )
    sub = DecisionTreeRegressor(max_depth=depth).fit(x[:90], y[:90])
    np.testing.assert_allclose(predict(masked, x[:90])[0], sub.predict(x[:90]), atol=1e-5)


def test_bootstrap_forest_predicts_like_sklearns_forest(data):
    x, y = data
    rng = np.random.default_rng(1)
    xt = (rng.random((200, 30)) < 0.4).astype(np.float32)
    truth = 2 * xt[:, 0] + xt[:, 1] * xt[:, 2] - xt[:, 3]
    forest = fit(jax.random.key(0), x, y, trees=50, depth=6)
    mean, var = predict(forest, xt)
    reference = RandomForestRegressor(50, max_depth=6, max_features=5 / 6, random_state=0)
    reference.fit(x, y)
    assert np.corrcoef(mean, reference.predict(xt))[0, 1] > 0.98
    assert np.corrcoef(mean, truth)[0, 1] > 0.97
    assert float(np.mean(var)) > 0  # the trees differ: the spread SMAC's EI uses


def test_masked_fits_under_vmap_equal_sklearn_on_each_subset(data):
    """The node sums run over the rows up to each history's last one in use (a loop of
    blocks; under `vmap` the batch's most): a short history batched with a long one, and a
    mask with holes, still give sklearn's trees on exactly their rows."""
    x, y = data
    holes = np.arange(150) % 3 != 1  # last row in use: 149
    masks = np.stack([np.arange(150) < 40, holes, np.arange(150) < 101])
    forests = jax.vmap(
        lambda m: forest_fit(
            jax.random.key(0), x, y, m, trees=1, depth=5, max_features=1.0, bootstrap=False
        )
    )(masks)
    for i, m in enumerate(masks):
        one = jax.tree.map(lambda a, i=i: a[i], forests)
        tree = DecisionTreeRegressor(max_depth=5).fit(x[m], y[m])
        np.testing.assert_allclose(predict(one, x[m])[0], tree.predict(x[m]), atol=1e-5)


@pytest.mark.parametrize("share", [5 / 6, 0.3, 1.0])
def test_feature_subsets_keep_each_feature_with_the_share(share):
    """Each (node, feature) is kept with probability `share` (16-bit draws, two per random
    word), at least one feature per node, each feature alike; the two halves of a word are
    not alike."""
    nodes, features = 4000, 30
    keep = np.asarray(feature_subsets(jax.random.key(3), nodes, features, share))
    assert keep.shape == (nodes, features)
    assert keep.any(1).all()
    expected = share + (1 - share) / features  # the forced feature lifts the rate a little
    sd = np.sqrt(share * (1 - share) / keep.size)
    assert abs(keep.mean() - expected) < 4 * sd + 1e-9
    # and so is every feature on its own (the forced one drawn among all F): 40,000 nodes
    many = np.asarray(feature_subsets(jax.random.key(4), 40_000, features, share))
    sd_one = np.sqrt(share * (1 - share) / 40_000)
    assert np.abs(many.mean(0) - expected).max() < 4.5 * sd_one + 1e-9, many.mean(0)
    if share < 1:  # the first and second half of the draws are independent
        flat = keep.reshape(-1)
        half = flat.size // 2
        assert abs(np.corrcoef(flat[:half], flat[half:])[0, 1]) < 0.02


def test_a_bootstrap_draws_as_many_rows_as_the_history_holds():
    """SMAC's history is a buffer of `memory` rows of which m are in use: each tree's
    bootstrap replicate is m draws among those m rows (as scikit-learn's and pyrfr's are
    of their n rows), so the root means of 4,000 trees spread as bootstrap means do,
    var(y_m) / m (m = 5: one draw more or less moves it 17-25 %), and centre on the rows'
    mean. Drawing n = 256 times among the m rows made the trees 50x more alike than that
    (12x at m = 20), and SMAC's expected improvement too sure of itself."""
    rng = np.random.default_rng(0)
    n, m = 256, 5
    x = (rng.random((n, 10)) < 0.5).astype(np.float32)
    y = rng.normal(size=n).astype(np.float32)
    mask = np.arange(n) < m
    forest = jax.jit(lambda k: forest_fit(k, x, y, mask, trees=4000, depth=1, max_features=1.0))(
        jax.random.key(0)
    )
    root = np.asarray(forest.value[:, 0], np.float64)
    expected = y[:m].astype(np.float64).var() / m
    assert root.var() == pytest.approx(expected, rel=0.08)  # sd of the estimate: 2.2 %
    assert abs(root.mean() - y[:m].mean()) < 4 * np.sqrt(expected / 4000)


def test_rows_out_of_the_mask_never_reach_a_tree():
    """NaN targets in unused rows (a failed or empty slot, also among the rows in use)
    change nothing, and an empty history predicts 0 rather than NaN."""
    x, y = _small()
    mask = (np.arange(len(y)) < 40) & (np.arange(len(y)) % 7 != 3)
    poisoned = np.where(mask, y, np.nan).astype(np.float32)
    for bootstrap in (True, False):
        kw = {"trees": 3, "depth": 4, "bootstrap": bootstrap}
        clean = forest_fit(jax.random.key(1), x, y, mask, **kw)
        dirty = forest_fit(jax.random.key(1), x, poisoned, mask, **kw)
        np.testing.assert_array_equal(predict(dirty, x)[0], predict(clean, x)[0])
        empty = forest_fit(jax.random.key(1), x, y, np.zeros(len(y), bool), **kw)
        np.testing.assert_array_equal(predict(empty, x)[0], 0.0)


def _small():
    rng = np.random.default_rng(2)
    x = (rng.random((60, 8)) < 0.5).astype(np.float32)
    return x, (x[:, 0] - x[:, 1] + rng.normal(0, 0.1, 60)).astype(np.float32)


def test_defaults_are_smacs_ten_trees_of_depth_8_on_five_sixths_of_the_features(data):
    """SMAC's (pyrfr's) defaults: 10 bootstrapped trees, 5/6 of the features per split;
    depth 8 (complete trees of 255 splits). Considering every feature gives other trees."""
    x, y = data
    forest = fit(jax.random.key(0), x, y)
    assert forest.feature.shape == (10, 255)
    assert forest.value.shape == (10, 511)
    same = fit(jax.random.key(0), x, y, trees=10, depth=8, max_features=5 / 6)
    for a, b in zip(forest, same, strict=True):
        np.testing.assert_array_equal(a, b)
    every = fit(jax.random.key(0), x, y, max_features=1.0)
    assert not np.array_equal(forest.feature, every.feature)
    unboot = fit(jax.random.key(0), x, y, bootstrap=False)
    assert not np.array_equal(forest.value, unboot.value)


def test_a_node_splits_only_when_its_squared_error_drops():
    """A constant target (every node pure) is never split, and a target that one feature
    decides splits on it once, its children then pure: the root's feature, no other. Each
    node's `value` is its mean target, an empty node's its parent's (by hand: a node of one
    row keeps its own; `tile` for `repeat` of the parents passed the sklearn tests)."""
    rng = np.random.default_rng(5)
    x = (rng.random((60, 6)) < 0.5).astype(np.float32)
    kw = {"trees": 2, "depth": 3, "max_features": 1.0, "bootstrap": False}
    flat = fit(jax.random.key(0), x, np.full(60, 3.0, np.float32), **kw)
    np.testing.assert_array_equal(flat.feature, -1)
    np.testing.assert_allclose(flat.value, 3.0)
    step = fit(jax.random.key(0), x, 2.0 * x[:, 4], **kw)
    np.testing.assert_array_equal(step.feature[:, 0], 4)
    np.testing.assert_array_equal(step.feature[:, 1:], -1)
    # `value` is each node's mean target (an empty node: its parent's), here by hand on
    # two rows the first feature tells apart (x_0 = 0 goes left): root 2.5, then 5 | 0
    two = fit(jax.random.key(0), np.eye(2, dtype=np.float32), np.asarray([0.0, 5.0]), **kw)
    want = [2.5, 5.0, 0.0, 5.0, 5.0, 0.0, 0.0] + [5.0] * 4 + [0.0] * 4
    np.testing.assert_allclose(two.value, [want, want])
