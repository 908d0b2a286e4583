"""The random forest of SMAC's surrogate against scikit-learn on the same binary data."""

import jax
import numpy as np
import pytest
from sklearn.ensemble import RandomForestRegressor
from sklearn.tree import DecisionTreeRegressor

from jnas.predictors import forest_fit, forest_predict

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
