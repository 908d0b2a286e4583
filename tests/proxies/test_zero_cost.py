"""Zero-cost proxies against hand-written NumPy on a tiny ReLU network (gradients by hand,
the Hessian-vector product by finite differences), not the same code path."""

import jax
import numpy as np
import pytest
from flax import nnx

from jnas import proxies
from jnas.nn import functional

NET = functional(
    lambda rngs: nnx.Sequential(
        nnx.Linear(6, 4, rngs=rngs), jax.nn.relu, nnx.Linear(4, 2, rngs=rngs)
    )
)


def named_leaves(params):
    """{"a/b/kernel/value": float64 array} in the pytree's flattening order."""
    return {
        jax.tree_util.keystr(p, simple=True, separator="/"): np.asarray(a, np.float64)
        for p, a in jax.tree_util.tree_flatten_with_path(params)[0]
    }


def setup():
    params = NET.init(jax.random.key(0))
    # biases away from zero so no pre-activation sits on ReLU's kink
    params = jax.tree_util.tree_map_with_path(
        lambda p, a: a + 0.3 if "bias" in jax.tree_util.keystr(p) else a, params
    )
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 6)).astype(np.float32)
    y = np.asarray([0, 1, 1, 0, 1])
    leaves = named_leaves(params)
    w1, b1 = leaves["layers/0/kernel/value"], leaves["layers/0/bias/value"]
    w2, b2 = leaves["layers/2/kernel/value"], leaves["layers/2/bias/value"]
    return params, (x, y), (w1, b1, w2, b2)


def np_grads(w1, b1, w2, b2, x, y):
    """d mean cross-entropy / d (W1, W2), by hand."""
    x = x.astype(np.float64)
    pre = x @ w1 + b1
    h = np.maximum(pre, 0)
    z = h @ w2 + b2
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    dz = (p - np.eye(2)[y]) / len(y)
    dw2 = h.T @ dz
    dw1 = x.T @ ((dz @ w2.T) * (pre > 0))
    return dw1, dw2


def test_gradient_proxies_match_numpy():
    params, (x, y), (w1, b1, w2, b2) = setup()
    g1, g2 = np_grads(w1, b1, w2, b2, x, y)
    batch = (x, y)
    assert float(proxies.grad_norm(NET.apply, params, batch)) == pytest.approx(
        np.linalg.norm(g1) + np.linalg.norm(g2), rel=1e-5
    )
    assert float(proxies.snip(NET.apply, params, batch)) == pytest.approx(
        np.abs(w1 * g1).sum() + np.abs(w2 * g2).sum(), rel=1e-5
    )
    assert float(proxies.plain(NET.apply, params, batch)) == pytest.approx(
        (w1 * g1).sum() + (w2 * g2).sum(), rel=1e-4
    )
    assert float(proxies.l2_norm(params)) == pytest.approx(
        np.linalg.norm(w1) + np.linalg.norm(w2), rel=1e-6
    )
    assert proxies.num_params(params) == 6 * 4 + 4 + 4 * 2 + 2


def test_grasp_is_minus_w_hessian_times_gradient():
    params, (x, y), (w1, b1, w2, b2) = setup()
    g1, g2 = np_grads(w1, b1, w2, b2, x, y)
    eps = 1e-5  # central difference of the gradient along g: H g
    p1, p2 = np_grads(w1 + eps * g1, b1, w2 + eps * g2, b2, x, y)
    m1, m2 = np_grads(w1 - eps * g1, b1, w2 - eps * g2, b2, x, y)
    hg1, hg2 = (p1 - m1) / (2 * eps), (p2 - m2) / (2 * eps)
    want = -((w1 * hg1).sum() + (w2 * hg2).sum())
    assert float(proxies.grasp(NET.apply, params, (x, y))) == pytest.approx(want, rel=1e-3)


def test_synflow_is_the_absolute_network_on_ones():
    params, _, (w1, b1, w2, _) = setup()
    a1, c1, a2 = np.abs(w1), np.abs(b1), np.abs(w2)
    h = np.ones(6) @ a1 + c1  # positive: ReLU passes it
    # R = sum_j (h @ |W2| + |b2|)_j: dR/d|W2| = h x 1, dR/d|W1| = 1 x rowsum(|W2|)
    want = (a2 * np.outer(h, np.ones(2))).sum() + (a1 * np.outer(np.ones(6), a2.sum(1))).sum()
    got = float(proxies.synflow(NET.apply, params, (1, 6)))
    assert got == pytest.approx(want, rel=1e-5)
    with jax.enable_x64(True):
        assert float(proxies.synflow(NET.apply, params, (1, 6))) == pytest.approx(want, rel=1e-12)


def test_jacob_cov_scores_the_input_gradients_correlations():
    params, (x, y), (w1, b1, w2, _) = setup()
    x, y = x[:4], y[:4]  # 4 examples: input gradients span 4 dims, C is full rank
    pre = x.astype(np.float64) @ w1 + b1
    jac = ((pre > 0) * (w2 @ np.ones(2))) @ w1.T  # d sum_c y[b, c] / d x[b], per row
    eig = np.linalg.eigvalsh(np.corrcoef(jac))
    want = -np.sum(np.log(eig + 1e-5) + 1.0 / (eig + 1e-5))
    assert float(proxies.jacob_cov(NET.apply, params, (x, y))) == pytest.approx(want, rel=1e-3)


def test_jacob_cov_regularises_a_zero_eigenvalue_by_k():
    """Two identical examples make C singular: its zero eigenvalue scores -log(k) - 1/k
    (k = 1e-5 shifts it up, never down into a log of a negative number). float64, so the
    zero eigenvalue is zero to 1e-15 and the comparison is tight."""
    params, (x, y), (w1, b1, w2, _) = setup()
    x, y = np.concatenate([x[:3], x[:1]]), np.concatenate([y[:3], y[:1]])
    pre = x.astype(np.float64) @ w1 + b1
    jac = ((pre > 0) * (w2 @ np.ones(2))) @ w1.T
    eig = np.linalg.eigvalsh(np.corrcoef(jac))
    assert abs(eig[0]) < 1e-12
    want = -np.sum(np.log(eig + 1e-5) + 1.0 / (eig + 1e-5))
    assert want < -1e5 + 20  # the zero eigenvalue's term dominates
    with jax.enable_x64(True):
        p64 = jax.tree.map(lambda a: np.asarray(a, np.float64), params)
        got = float(proxies.jacob_cov(NET.apply, p64, (x.astype(np.float64), y)))
    assert got == pytest.approx(want, rel=1e-9)


def test_a_selection_that_scores_nothing_is_refused():
    params, batch, _ = setup()
    with pytest.raises(ValueError, match="no parameter selected"):
        proxies.snip(NET.apply, params, batch, select=lambda path: False)


def test_the_default_selection_scores_kernels_whatever_the_pytree():
    """Leaves named `kernel` (a plain dict's `conv/kernel`, an nnx `kernel/value`) are
    scored; biases, architecture parameters and names that merely contain "kernel" are
    not."""
    rng = np.random.default_rng(1)
    w1, w2, b, alpha, s = (rng.normal(size=n) for n in ((3, 4), (4, 2), (4,), (6, 5), (2,)))
    params = {
        "conv": {"kernel": w1, "bias": b},
        "head": {"kernel": {"value": w2}},
        "alpha": alpha,
        "kernel_scale": s,
        "kernel": {"bias": b},
    }
    want = np.linalg.norm(w1) + np.linalg.norm(w2)
    assert float(proxies.l2_norm(params)) == pytest.approx(want, rel=1e-6)
    assert [proxies.kernels(p) for p in ("kernel", "a/kernel", "a/kernel/value")] == [True] * 3
    for p in ("a/bias", "kernel/bias", "a/kernel_scale", "value", "a/value", "kernel/x/value"):
        assert not proxies.kernels(p), p


# A network built from jnas' own layers, whose ReLU inputs and layer outputs are taps.
def tapped_setup(classes=3, n=10, seed=0):
    from jnas import nn as jnn

    net = functional(
        lambda rngs: nnx.Sequential(
            jnn.linear(6, 16, rngs=rngs), jnn.relu, jnn.linear(16, classes, rngs=rngs)
        )
    )
    params = net.init(jax.random.key(seed))
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6)).astype(np.float32)
    y = rng.integers(0, classes, n)
    leaves = named_leaves(params)
    w = [leaves[f"layers/{i}/{k}/value"] for i in (0, 2) for k in ("kernel", "bias")]
    return net, params, (x, y), w


def np_forward(w1, b1, w2, b2, x, y, classes):
    pre = x.astype(np.float64) @ w1 + b1
    z = np.maximum(pre, 0) @ w2 + b2
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    dz = (p - np.eye(classes)[y]) / len(y)
    dpre = (dz @ w2.T) * (pre > 0)
    return pre, z, dpre, dz


def test_nwot_is_the_log_determinant_of_the_relu_code_kernel():
    """Two ReLU layers whose kernels add, and an all-zero example whose pre-activations are
    exactly 0 (code 0: NASLib's `inp > 0`). The kernel must be non-singular: a duplicate
    code makes both sides -inf and the comparison vacuous."""
    from jnas import nn as jnn

    net = functional(
        lambda rngs: nnx.Sequential(
            jnn.linear(6, 16, rngs=rngs),
            jnn.relu,
            jnn.linear(16, 12, rngs=rngs),
            jnn.relu,
            jnn.linear(12, 3, rngs=rngs),
        )
    )
    params = net.init(jax.random.key(1))
    w = named_leaves(params)
    assert not any(np.any(w[f"layers/{i}/bias/value"]) for i in (0, 2))  # zero biases
    x = np.random.default_rng(1).normal(size=(9, 6)).astype(np.float32)
    x[4] = 0.0
    pre1 = x.astype(np.float64) @ w["layers/0/kernel/value"]
    pre2 = np.maximum(pre1, 0) @ w["layers/2/kernel/value"]
    k = np.zeros((9, 9))
    for pre in (pre1, pre2):
        c = (pre > 0).astype(np.float64)
        k += c @ c.T + (1 - c) @ (1 - c).T
    sign, want = np.linalg.slogdet(k)
    assert sign > 0
    assert np.isfinite(want)
    got = float(proxies.nwot(net.apply, params, (x, np.zeros(9, np.int32))))
    assert got == pytest.approx(want, rel=1e-5)


def test_fisher_sums_the_squared_channel_saliencies():
    net, params, (x, y), (w1, b1, w2, b2) = tapped_setup()
    pre, z, dpre, dz = np_forward(w1, b1, w2, b2, x, y, 3)
    want = sum(np.sum(0.5 * np.mean((a * g) ** 2, axis=0)) for a, g in ((pre, dpre), (z, dz)))
    assert float(proxies.fisher(net.apply, params, (x, y))) == pytest.approx(want, rel=1e-4)


@pytest.mark.parametrize("shape", [(6, 3, 2, 3), (6, 5, 3)])  # an image; a sequence
def test_fisher_sums_a_feature_maps_saliency_over_positions_per_channel(shape):
    """On a feature map [N, H, W, C] (or a sequence [N, L, C]) each channel's saliency is
    (sum over positions of a * dL/da)^2 per example (NASLib's `(act * grad).sum([2, 3])`),
    then halved, averaged over examples and summed: a 1x1 convolution (a dense layer per
    position), ReLU, global average pooling and a linear head, against NumPy."""
    from jnas import nn as jnn

    positions = tuple(range(1, len(shape) - 1))
    net = functional(
        lambda rngs: nnx.Sequential(
            jnn.linear(3, 5, rngs=rngs),
            jnn.relu,
            lambda h: h.mean(positions),
            jnn.linear(5, 4, rngs=rngs),
        )
    )
    params = net.init(jax.random.key(2))
    w = named_leaves(params)
    rng = np.random.default_rng(2)
    x = rng.normal(size=shape).astype(np.float32)
    y = np.asarray([0, 1, 2, 3, 1, 2])
    a1 = x.astype(np.float64) @ w["layers/0/kernel/value"] + w["layers/0/bias/value"]
    a2 = np.maximum(a1, 0).mean(positions) @ w["layers/3/kernel/value"] + w["layers/3/bias/value"]
    p = np.exp(a2 - a2.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    g2 = (p - np.eye(4)[y]) / 6
    count = np.prod(shape[1:-1])
    g1 = np.expand_dims(g2 @ w["layers/3/kernel/value"].T, positions) * (a1 > 0) / count
    per1 = (a1 * g1).sum(positions)  # [N, C]: summed over positions before squaring
    want = np.sum(0.5 * np.mean(per1**2, 0)) + np.sum(0.5 * np.mean((a2 * g2) ** 2, 0))
    assert float(proxies.fisher(net.apply, params, (x, y))) == pytest.approx(want, rel=1e-4)


def np_epe_nas(jac, labels, classes, k=1e-5):
    """EPE-NAS written the way NASLib's `eval_score_perclass` loops over classes."""
    per_class = {}
    for row, label in zip(jac, labels, strict=True):
        per_class.setdefault(int(label), []).append(row)
    scores = {}
    for c, rows in per_class.items():
        if classes > 100 and len(rows) == 1:
            continue  # NASLib: len() of the 0-d corrcoef raises, the class is skipped
        corrs = np.corrcoef(np.asarray(rows)) if len(rows) > 1 else np.array(1.0)
        s = np.sum(np.log(np.abs(corrs) + k))
        scores[c] = s / len(rows) if classes > 100 else s
    if classes <= 100:
        return sum(abs(s) for s in scores.values())
    return sum(abs(a - b) for a in scores.values() for b in scores.values()) / len(scores)


@pytest.mark.parametrize("classes", [3, 100, 101, 120])  # NASLib's rule changes past 100
def test_epe_nas_matches_the_per_class_loop(classes):
    net, params, (x, y), (w1, b1, w2, b2) = tapped_setup(classes=classes, n=12)
    if classes == 3:
        y = np.asarray([0, 0, 0, 0, 1, 1, 1, 1, 1, 0, 1, 2])  # class 2 seen once
    else:
        y = np.asarray([5, 5, 5, 7, 7, 7, 7, 9, 9, 99, 99, 3])
    pre, *_ = np_forward(w1, b1, w2, b2, x, y, classes)
    jac = ((pre > 0) * w2.sum(1)) @ w1.T  # d sum(z) / dx per example
    want = np_epe_nas(jac, y, classes)
    got = float(proxies.epe_nas(net.apply, params, (x, y), num_classes=classes))
    assert got == pytest.approx(want, rel=1e-4)


def test_flops_counts_the_multiply_accumulates():
    net, params, _, _ = tapped_setup()
    # 6x16 + 16x3 multiply-accumulates, 16 + 3 bias additions, for one example
    assert proxies.flops(net.apply, params, (1, 6)) == 6 * 16 + 16 * 3 + 16 + 3


class _ZenNet(nnx.Module):
    """1x1 conv (a dense layer per pixel) -> BN -> ReLU -> BN -> ReLU -> pool -> linear, from
    jnas' layers: the head's pooled map is the `features` tap, both BNs are `norm` taps."""

    def __init__(self, rngs):
        from jnas.nn._ops import batch_norm

        self.conv = nnx_linear(3, 5, rngs)
        self.bn1 = batch_norm(5, rngs=rngs)
        self.bn2 = batch_norm(5, rngs=rngs)
        self.head = nnx_linear(5, 2, rngs)

    def __call__(self, x):
        from jnas.nn._ops import classifier_head
        from jnas.nn._taps import relu

        return classifier_head(relu(self.bn1(self.conv(x))), self.bn2, self.head)


def nnx_linear(i, o, rngs):
    from jnas import nn as jnn

    return jnn.linear(i, o, rngs=rngs)


def test_zen_is_the_log_feature_change_plus_the_norms_log_scales():
    net = functional(_ZenNet)
    params = net.init(jax.random.key(0))
    key = jax.random.key(3)
    got = float(proxies.zen(key, net.apply, params, (6, 4, 4, 3)))
    # the same Gaussian draws, in NumPy
    k_w, k_x, k_e = jax.random.split(key, 3)
    leaves = jax.tree_util.tree_flatten_with_path(params)[0]
    keys = jax.random.split(k_w, len(leaves))
    w = {}
    for (p, a), k in zip(leaves, keys, strict=True):
        name = jax.tree_util.keystr(p, simple=True, separator="/")
        w[name] = np.asarray(jax.random.normal(k, a.shape), np.float64)
    x = np.asarray(jax.random.normal(k_x, (6, 4, 4, 3)), np.float64)
    e = np.asarray(jax.random.normal(k_e, (6, 4, 4, 3)), np.float64)

    def bn(h):
        return (h - h.mean((0, 1, 2))) / np.sqrt(h.var((0, 1, 2)) + 1e-5)  # scale 1, bias 0

    def forward(inp):
        h1 = inp @ w["conv/kernel/value"]  # biases zeroed
        h2 = np.maximum(bn(h1), 0)
        return np.maximum(bn(h2), 0), (h1, h2)

    f1, (h1, h2) = forward(x)
    f2, _ = forward(x + 0.01 * e)
    delta = np.mean(np.abs(f1 - f2).reshape(6, -1).sum(1))
    want = np.log(delta) + sum(0.5 * np.log(np.mean(h.var((0, 1, 2)))) for h in (h1, h2))
    assert got == pytest.approx(want, rel=1e-4)


class _ZenNetWithoutNorms(nnx.Module):
    """1x1 conv -> ReLU -> the classifier head with no batch norm: no `norm` tap."""

    def __init__(self, rngs):
        self.conv = nnx_linear(3, 5, rngs)
        self.head = nnx_linear(5, 2, rngs)

    def __call__(self, x):
        from jnas.nn._ops import classifier_head
        from jnas.nn._taps import relu

        return classifier_head(relu(self.conv(x)), lambda h: h, self.head)


def test_zen_without_batch_norms_is_the_log_feature_change_alone():
    net = functional(_ZenNetWithoutNorms)
    params = net.init(jax.random.key(0))
    # biases far from zero, so that one left in place would change the score
    params = jax.tree_util.tree_map_with_path(
        lambda p, a: a + 50.0 if "bias" in jax.tree_util.keystr(p) else a, params
    )
    key = jax.random.key(4)
    got = float(proxies.zen(key, net.apply, params, (3, 2, 2, 3), mixup=0.1))
    k_w, k_x, k_e = jax.random.split(key, 3)
    names = list(named_leaves(params))  # in the order zen draws their keys
    kernel = names.index("conv/kernel/value")
    w = np.asarray(jax.random.normal(jax.random.split(k_w, len(names))[kernel], (3, 5)), np.float64)
    x = np.asarray(jax.random.normal(k_x, (3, 2, 2, 3)), np.float64)
    e = np.asarray(jax.random.normal(k_e, (3, 2, 2, 3)), np.float64)
    f1, f2 = (np.maximum(v @ w, 0) for v in (x, x + 0.1 * e))  # biases zeroed
    want = np.log(np.mean(np.abs(f1 - f2).reshape(3, -1).sum(1)))
    assert got == pytest.approx(want, rel=1e-4)


def test_zen_zeroes_the_biases_of_a_plain_parameter_dict():
    """A pure function over a plain dict (no NNX `/value` leaves): its `kernel`s are redrawn
    from N(0, 1) and its `bias` is zeroed (Zen-NAS's Gaussian network); the bias set large
    here would otherwise dominate the features."""
    import jax.numpy as jnp

    from jnas.nn._ops import classifier_head

    def apply(p, x):
        conv = p["stem"]["conv"]  # nested: the bias is known by its leaf name at any depth
        h = x @ conv["kernel"] + conv["bias"][None, None, None]
        return classifier_head(h, lambda v: v, lambda v: v @ p["head"]["kernel"])

    params = {
        "stem": {"conv": {"kernel": jnp.ones((3, 5)), "bias": jnp.full((5,), 50.0)}},
        "head": {"kernel": jnp.ones((5, 2))},
    }
    key = jax.random.key(6)
    got = float(proxies.zen(key, apply, params, (3, 2, 2, 3), mixup=0.1))
    k_w, k_x, k_e = jax.random.split(key, 3)
    names = list(named_leaves(params))  # in the order zen draws their keys
    k = jax.random.split(k_w, len(names))[names.index("stem/conv/kernel")]
    w = np.asarray(jax.random.normal(k, (3, 5)), np.float64)
    x = np.asarray(jax.random.normal(k_x, (3, 2, 2, 3)), np.float64)
    e = np.asarray(jax.random.normal(k_e, (3, 2, 2, 3)), np.float64)
    f1, f2 = (np.maximum(v @ w, 0) for v in (x, x + 0.1 * e))  # no bias
    want = np.log(np.mean(np.abs(f1 - f2).reshape(3, -1).sum(1)))
    assert got == pytest.approx(want, rel=1e-4)
