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
    word), at least one feature per node; the two halves of a word are not alike."""
    nodes, features = 4000, 30
    keep = np.asarray(feature_subsets(jax.random.key(3), nodes, features, share))
    assert keep.shape == (nodes, features)
    assert keep.any(1).all()
    expected = share + (1 - share) / features  # the forced feature lifts the rate a little
    sd = np.sqrt(share * (1 - share) / keep.size)
    assert abs(keep.mean() - expected) < 4 * sd + 1e-9
    if share < 1:  # the first and second half of the draws are independent
        flat = keep.reshape(-1)
        half = flat.size // 2
        assert abs(np.corrcoef(flat[:half], flat[half:])[0, 1]) < 0.02
