"""A random forest of fixed-depth regression trees over binary features, fitted and queried
inside `jit` / `vmap` (SMAC's surrogate: Hutter, Hoos & Leyton-Brown, LION 2011).

Trees are complete binary trees of `depth` levels stored as arrays (node i's children are
2i + 1 and 2i + 2), so a forest is a pytree of fixed shapes and a search with it compiles
once. Features are binary (the one-hot encodings of the spaces): a split sends x_f = 0
left and x_f = 1 right. Each level is grown greedily as CART does: for every node, the
feature (among a random `max_features` share, at least one) with the largest weighted
squared-error reduction, splitting only when both sides keep a sample and the error
drops; a node that does not split passes its samples on to its left child. Bootstrap
replicates are multinomial sample weights: m draws among the m rows in use. Leaves with
no sample predict their parent's mean. With `bootstrap=False` and `max_features=1.0` each
tree is scikit-learn's `DecisionTreeRegressor(max_depth=depth)` on the same data (ties
aside).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jnas.predictors._blocks import blocked_sum, used_rows


class Forest(NamedTuple):
    feature: jax.Array  # int32[trees, 2^depth - 1]: split feature per internal node, -1 none
    value: jax.Array  # float32[trees, 2^(depth + 1) - 1]: mean target per node (leaves last)


def forest_fit(
    key: jax.Array,
    x: jax.Array,
    y: jax.Array,
    mask: jax.Array | None = None,
    *,
    trees: int = 10,
    depth: int = 8,
    max_features: float = 5 / 6,
    bootstrap: bool = True,
) -> Forest:
    """Fit `trees` trees on binary `x` float[N, F], targets `y` float[N]; `mask` bool[N]
    marks the rows to use (the others weigh 0: fixed shapes for a growing history; the
    node sums run over the rows up to the last one in use, block by block, so a fit
    costs what the history holds, not N). `max_features` is the share of features each
    node considers (SMAC's pyrfr: 5/6)."""
    n = x.shape[0]
    x = (jnp.asarray(x) > 0.5).astype(jnp.float32)
    y = jnp.asarray(y, jnp.float32)
    base = jnp.ones(n) if mask is None else jnp.asarray(mask, jnp.float32)
    y = jnp.where(base > 0, y, 0.0)
    used = used_rows(base > 0)
    k_boot, k_feat = jax.random.split(key)

    def one(k_b, k_f):
        if bootstrap:  # m draws with replacement among the m masked rows (a bootstrap)
            m = jnp.sum(base)
            draws = jax.random.choice(k_b, n, (n,), p=base / jnp.maximum(m, 1.0))
            # n i.i.d. draws (fixed shapes), of which the first m count: exactly m draws,
            # so the trees differ as much as bootstrap replicates of the history do
            w = jnp.zeros(n).at[draws].add((jnp.arange(n) < m).astype(jnp.float32))
            w = jnp.where(base > 0, w, 0.0)
        else:
            w = base
        return _grow(k_f, x, y, w, used, depth, max_features)

    return jax.vmap(one)(jax.random.split(k_boot, trees), jax.random.split(k_feat, trees))


def feature_subsets(key: jax.Array, nodes: int, features: int, share: float) -> jax.Array:
    """bool[nodes, features]: each feature kept with probability `share` (to 2^-16), at
    least one per node. Two 16-bit draws per 32 random bits: the draws are a large part of
    a fit's cost (JAX's threefry hashes once per 32-bit word)."""
    if share >= 1.0:
        return jnp.ones((nodes, features), bool)
    k_draw, k_force = jax.random.split(key)
    forced = jax.random.randint(k_force, (nodes,), 0, features)
    ensure = jax.nn.one_hot(forced, features) > 0
    size = nodes * features
    words = jax.random.bits(k_draw, (-(-size // 2),), jnp.uint32)
    halves = jnp.concatenate([words & 0xFFFF, words >> 16])[:size].reshape(nodes, features)
    return (halves < round(share * 65536)) | ensure


def _node_sums(stats: jax.Array, local: jax.Array, width: int, used: jax.Array) -> jax.Array:
    """float32[width, C]: the rows' `stats` [N, C] summed per node (`local` [N]), over the
    rows before `used` only (`blocked_sum`: weights past `used` are zero)."""
    return blocked_sum(
        lambda s, node: jax.ops.segment_sum(s, node, num_segments=width), (stats, local), used
    )


def _grow(key, x, y, w, used, depth, max_features):
    n, f = x.shape
    node = jnp.zeros(n, jnp.int32)  # every sample starts at the root
    features, values = [], []
    mean_parent = jnp.sum(w * y) / jnp.maximum(jnp.sum(w), 1e-12)
    parent_values = mean_parent[None]
    # the feature subsets of every internal node, drawn at once (one random program, not
    # two per level: XLA compiles each draw's hash rounds anew)
    allowed_all = feature_subsets(key, 2**depth - 1, f, max_features)
    # per row: weight, weighted target, and both per feature (the right-hand sums)
    stats = jnp.concatenate([w[:, None], (w * y)[:, None], w[:, None] * x, (w * y)[:, None] * x], 1)
    for level in range(depth):
        first = 2**level - 1
        width = 2**level
        # per-node sums: each row sits in one node, so a segment sum (O(N F)), not a
        # one-hot matrix product (O(N F width)); only the rows in use
        local = node - first
        sums = _node_sums(stats, local, width, used)
        cnt, tot = sums[:, 0], sums[:, 1]
        right_cnt, right_sum = sums[:, 2 : 2 + f], sums[:, 2 + f :]
        left_cnt, left_sum = cnt[:, None] - right_cnt, tot[:, None] - right_sum
        gain = (
            _ratio(right_sum**2, right_cnt)
            + _ratio(left_sum**2, left_cnt)
            - _ratio(tot**2, cnt)[:, None]
        )
        allowed = allowed_all[first : first + width]
        ok = (
            allowed & (right_cnt > 0) & (left_cnt > 0) & (gain > 1e-7 * (1 + jnp.abs(tot)[:, None]))
        )
        score = jnp.where(ok, gain, -jnp.inf)
        # the first best feature, by two plain reductions (XLA:CPU runs argmax's
        # value-and-index reduction element by element: most of a fit's time at depth 8)
        top = jnp.max(score, axis=1, keepdims=True)
        best = jnp.min(jnp.where(score == top, jnp.arange(f), f), axis=1)
        split = jnp.any(ok, axis=1)
        feat = jnp.where(split, best, -1)
        features.append(feat)
        mean = jnp.where(cnt > 0, tot / jnp.maximum(cnt, 1e-12), parent_values)
        values.append(mean)
        go_right = (feat[local] >= 0) & (
            jnp.take_along_axis(x, jnp.maximum(feat[local], 0)[:, None], 1)[:, 0] > 0.5
        )
        node = 2 * node + 1 + go_right.astype(jnp.int32)
        parent_values = jnp.repeat(mean, 2)
    width = 2**depth
    leaves = _node_sums(stats[:, :2], node - (width - 1), width, used)
    cnt, tot = leaves[:, 0], leaves[:, 1]
    values.append(jnp.where(cnt > 0, tot / jnp.maximum(cnt, 1e-12), parent_values))
    return Forest(jnp.concatenate(features).astype(jnp.int32), jnp.concatenate(values))


def _ratio(a: jax.Array, b: jax.Array) -> jax.Array:
    return jnp.where(b > 0, a / jnp.maximum(b, 1e-12), 0.0)


def forest_predict(forest: Forest, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(mean, variance) over the trees of each row of binary `x` float[M, F] (SMAC's
    predictive mean and the spread of the trees)."""
    internal = forest.feature.shape[1]
    depth = (internal + 1).bit_length() - 1
    x = (jnp.asarray(x) > 0.5).astype(jnp.float32)

    def tree(feature, value):
        def leaf(row):
            node = jnp.int32(0)
            for _ in range(depth):
                f = feature[node]
                right = (f >= 0) & (row[jnp.maximum(f, 0)] > 0.5)
                node = 2 * node + 1 + right.astype(jnp.int32)
            return value[node]

        return jax.vmap(leaf)(x)

    per_tree = jax.vmap(tree)(forest.feature, forest.value)  # [trees, M]
    return per_tree.mean(0), per_tree.var(0)
