"""Meta-learners: exact meta-gradients (finite differences in float64), the masks that
make ANIL / T-NAS, Reptile's and first-order MAML's updates, vmap == unrolled, jit == eager,
resumable meta-training, NaN detection, learning on the sinusoid."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jnas import meta
from jnas.spaces import NB201


def _f64(tree):
    return jax.tree.map(
        lambda a: a.astype(jnp.float64) if jnp.issubdtype(a.dtype, jnp.floating) else a, tree
    )


def _grad_of_step(learner, state, tasks):
    """The outer gradient a step applies, read back through an SGD(1) outer optimiser."""
    new, _ = jax.jit(learner.step)(state, tasks)
    return jax.tree.map(lambda a, b: a - b, state.params, new.params)


def _meta_loss(learner, params, tasks):
    return learner.evaluate(params, tasks)["loss_after"].mean()


def _check_against_fd(learner, state, tasks, directions, eps=1e-6, rtol=1e-6):
    """<meta-gradient, d> == central finite difference of the meta-loss along d.

    BN over a tiny batch after a ReLU makes the loss piecewise smooth with steep kinks, so
    the step is small (1e-7 in float64 still resolves the difference to ~1e-8)."""
    grad = _grad_of_step(learner, state, tasks)
    loss = jax.jit(lambda p: _meta_loss(learner, p, tasks))
    for d in directions:
        plus = jax.tree.map(lambda p, v: p + eps * v, state.params, d)
        minus = jax.tree.map(lambda p, v: p - eps * v, state.params, d)
        fd = (loss(plus) - loss(minus)) / (2 * eps)
        exact = sum(
            jnp.vdot(g, v) for g, v in zip(jax.tree.leaves(grad), jax.tree.leaves(d), strict=True)
        )
        assert abs(float(fd)) > 1e-6  # the direction matters
        np.testing.assert_allclose(float(exact), float(fd), rtol=rtol, atol=1e-9)


def _directions(params, key, n, select=lambda path: True):
    paths = meta.leaf_paths(params)
    leaves, treedef = jax.tree.flatten(params)
    out = []
    for i in range(n):
        ks = jax.random.split(jax.random.fold_in(key, i), len(leaves))
        out.append(
            treedef.unflatten(
                [
                    jax.random.normal(k, leaf.shape, leaf.dtype)
                    if select(p)
                    else jnp.zeros_like(leaf)
                    for k, leaf, p in zip(ks, leaves, paths, strict=True)
                ]
            )
        )
    return out


def test_maml_meta_gradient_matches_finite_differences_in_float64(key):
    with jax.enable_x64(True):
        learner = meta.maml(
            meta.mlp((1, 8, 8, 1)),
            loss="mse",
            inner_lr=0.05,
            inner_steps=2,
            outer_optimizer=optax.sgd(1.0),
        )
        state = _f64(learner.init(key))
        state = state._replace(opt_state=learner.init(key).opt_state)
        tasks = _f64(meta.task_batch(meta.sinusoid(5, 5), key, 3))
        _check_against_fd(learner, state, tasks, _directions(state.params, key, 3))
        # ... and differs from first-order MAML's gradient (second-order terms matter)
        fo = meta.fomaml(
            meta.mlp((1, 8, 8, 1)),
            loss="mse",
            inner_lr=0.05,
            inner_steps=2,
            outer_optimizer=optax.sgd(1.0),
        )
        g2 = jax.tree.leaves(_grad_of_step(learner, state, tasks))
        g1 = jax.tree.leaves(_grad_of_step(fo, state, tasks))
        assert max(float(jnp.abs(a - b).max()) for a, b in zip(g1, g2, strict=True)) > 1e-4


def _mixed_op_model(dim: int = 5, ways: int = 3) -> meta.Model:
    """A two-edge DARTS-style network on vectors: each edge mixes tanh-linear, relu-linear
    and identity by softmax(α[edge]); params {"w", "alpha"} as MetaNAS takes them."""

    def init(k):
        ks = jax.random.split(k, 6)
        w = {
            f"e{e}": {
                "tanh": jax.random.normal(ks[2 * e], (dim, dim)) / dim**0.5,
                "relu": jax.random.normal(ks[2 * e + 1], (dim, dim)) / dim**0.5,
            }
            for e in range(2)
        }
        w["head"] = jax.random.normal(ks[4], (dim, ways)) / dim**0.5
        return {"w": w, "alpha": 0.5 * jax.random.normal(ks[5], (2, 3))}

    def apply(params, x):
        h, weights = x, jax.nn.softmax(params["alpha"], -1)
        for e in range(2):
            w = params["w"][f"e{e}"]
            ops = jnp.stack([jnp.tanh(h @ w["tanh"]), jax.nn.relu(h @ w["relu"]), h])
            h = jnp.tensordot(weights[e], ops, 1)
        return h @ params["w"]["head"]

    return meta.Model(init, apply)


def test_metanas_meta_gradient_in_weights_and_alpha_matches_finite_differences(key):
    """The exact meta-gradient through an inner step that adapts w and α with their own
    step sizes; mixed ops on vectors keep the compile to seconds (the NB201 supernet's
    version below is `slow`)."""
    with jax.enable_x64(True):
        learner = meta.metanas(
            _mixed_op_model(),
            inner_lr={"w": 0.1, "alpha": 0.5},
            inner_steps=2,
            outer="maml",
            outer_optimizer=optax.sgd(1.0),
            task_map="vmap",
        )
        state = learner.init(key)
        state = state._replace(params=_f64(state.params))
        pool = jax.random.normal(key, (6, 4, 5), jnp.float64)
        tasks = meta.task_batch(meta.few_shot(pool, ways=3, shots=1, queries=2), key, 2)
        directions = [
            *_directions(state.params, key, 2, lambda p: p == "alpha"),
            *_directions(state.params, key, 1),
        ]
        _check_against_fd(learner, state, tasks, directions)
        # α's own inner step size is used: a different one changes the meta-gradient in α
        other = meta.metanas(
            _mixed_op_model(),
            inner_lr={"w": 0.1, "alpha": 0.05},
            inner_steps=2,
            outer="maml",
            outer_optimizer=optax.sgd(1.0),
            task_map="vmap",
        )
        a = _grad_of_step(learner, state, tasks)["alpha"]
        b = _grad_of_step(other, state, tasks)["alpha"]
        assert float(jnp.abs(a - b).max()) > 1e-4


@pytest.mark.slow  # 80-110 s of compile: second order through the conv supernet in float64
def test_metanas_supernet_meta_gradient_matches_finite_differences(key):
    with jax.enable_x64(True):
        net = meta.supernet_model(
            NB201(), channels=2, cells_per_stage=1, num_classes=3, in_channels=1, alpha_scale=0.5
        )
        learner = meta.metanas(
            net,
            inner_lr={"w": 0.1, "alpha": 0.5},
            inner_steps=1,
            outer="maml",
            outer_optimizer=optax.sgd(1.0),
            task_map="vmap",
        )
        state = learner.init(key)
        state = state._replace(params=_f64(state.params))
        pool = jax.random.normal(key, (6, 4, 4, 4, 1), jnp.float64)
        tasks = meta.task_batch(meta.few_shot(pool, ways=3, shots=1, queries=2), key, 2)
        directions = [
            *_directions(state.params, key, 2, lambda p: p == "alpha"),
            *_directions(state.params, key, 1),
        ]
        _check_against_fd(learner, state, tasks, directions, eps=1e-7, rtol=1e-5)


@pytest.mark.slow  # 80-110 s of compile; Reptile's update and per-group steps are tested fast
def test_metanas_paper_setting_adam_inside_reptile_outside_with_own_step_sizes(key):
    """Elsken et al.'s setting: Adam (β1 = 0) adapts w and α on support + query minibatches;
    the Reptile step moves w all the way (1.0) and α 0.6 of the way to the task mean."""
    net = meta.supernet_model(
        NB201(), channels=2, cells_per_stage=1, num_classes=3, in_channels=1, alpha_scale=0.5
    )
    learner = meta.metanas(
        net,
        inner_optimizer=optax.adam(0.01, b1=0.0),
        inner_steps=2,
        train_on="all",
        inner_batch=4,
        outer="reptile",
        outer_optimizer=optax.multi_transform(
            {"w": optax.sgd(1.0), "alpha": optax.sgd(0.6)}, {"w": "w", "alpha": "alpha"}
        ),
    )
    state = learner.init(key)
    pool = jax.random.normal(key, (6, 4, 4, 4, 1))
    tasks = meta.task_batch(meta.few_shot(pool, ways=3, shots=1, queries=2), key, 2)
    ones = [jax.tree.map(lambda a, i=i: a[i], tasks) for i in range(2)]
    adapted = []
    for t in ones:  # by hand: Adam on the interleaved support + query, batches of 4
        x, y = meta.interleave(
            jnp.concatenate([t.support_x, t.query_x]), jnp.concatenate([t.support_y, t.query_y])
        )
        p, tx = state.params, optax.adam(0.01, b1=0.0)
        opt = tx.init(p)
        for step in range(2):
            idx = (step * 4 + jnp.arange(4)) % 9
            xb, yb = x[idx], y[idx]
            g = jax.grad(lambda q, xb=xb, yb=yb: meta.cross_entropy(net.apply(q, xb), yb)[0])(p)
            u, opt = tx.update(g, opt, p)
            p = optax.apply_updates(p, u)
        adapted.append(p)
    mean = jax.tree.map(lambda a, b: (a + b) / 2, *adapted)
    new, _ = jax.jit(learner.step)(state, tasks)
    np.testing.assert_allclose(
        new.params["alpha"],
        state.params["alpha"] + 0.6 * (mean["alpha"] - state.params["alpha"]),
        rtol=1e-4,
        atol=1e-6,
    )
    for a, b in zip(jax.tree.leaves(new.params["w"]), jax.tree.leaves(mean["w"]), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    assert not np.allclose(new.params["alpha"], state.params["alpha"])


def test_fomaml_uses_the_query_gradient_at_the_adapted_weights(key):
    learner = meta.fomaml(
        meta.mlp((1, 8, 1)),
        loss="mse",
        inner_lr=0.05,
        inner_steps=3,
        outer_optimizer=optax.sgd(1.0),
    )
    state = learner.init(key)
    tasks = meta.task_batch(meta.sinusoid(5, 5), key, 4)
    grads = [
        jax.grad(lambda p, t=t: meta.mse(meta.mlp((1, 8, 1)).apply(p, t.query_x), t.query_y)[0])(
            learner.adapt(state.params, t)
        )
        for t in (jax.tree.map(lambda a, i=i: a[i], tasks) for i in range(4))
    ]
    expected = jax.tree.map(lambda *g: sum(g) / 4, *grads)
    got = _grad_of_step(learner, state, tasks)
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(expected), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_adapt_is_plain_sgd_on_the_support_set(key):
    model = meta.mlp((1, 8, 1))
    learner = meta.maml(model, loss="mse", inner_lr=0.05, inner_steps=2)
    params = model.init(key)
    task = meta.sinusoid(5, 5)(key)
    p = params
    for _ in range(2):
        g = jax.grad(lambda q: meta.mse(model.apply(q, task.support_x), task.support_y)[0])(p)
        p = jax.tree.map(lambda a, b: a - 0.05 * b, p, g)
    for a, b in zip(jax.tree.leaves(learner.adapt(params, task)), jax.tree.leaves(p), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def _cross_entropy_and_accuracy(logits, labels):
    """NumPy: mean cross-entropy (log-sum-exp written out) and accuracy."""
    z = np.asarray(logits, np.float64)
    z = z - z.max(-1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(-1, keepdims=True))
    labels = np.asarray(labels)
    nll = -log_p[np.arange(len(labels)), labels]
    return nll.mean(), np.mean(np.argmax(z, -1) == labels)


def test_evaluate_reports_query_loss_and_accuracy_before_and_after_adapting(key):
    """`evaluate`'s four numbers per task against NumPy's cross-entropy and accuracy of the
    model's query logits at θ (before) and at the support-adapted weights (after)."""
    model = meta.mlp((4, 6, 3))
    learner = meta.maml(model, inner_lr=0.5, inner_steps=2)
    params = model.init(key)
    pool = jax.random.normal(key, (6, 7, 4))
    tasks = meta.task_batch(meta.few_shot(pool, 3, 2, 3), key, 2)
    got = learner.evaluate(params, tasks)
    for i in range(2):
        task = jax.tree.map(lambda a, i=i: a[i], tasks)
        before = _cross_entropy_and_accuracy(model.apply(params, task.query_x), task.query_y)
        adapted = learner.adapt(params, task)
        after = _cross_entropy_and_accuracy(model.apply(adapted, task.query_x), task.query_y)
        for name, want in zip(("loss_before", "metric_before"), before, strict=True):
            np.testing.assert_allclose(got[name][i], want, rtol=1e-5, err_msg=name)
        for name, want in zip(("loss_after", "metric_after"), after, strict=True):
            np.testing.assert_allclose(got[name][i], want, rtol=1e-5, err_msg=name)
    assert not np.allclose(got["loss_before"], got["loss_after"])  # adapting changed the loss


def test_reptile_moves_towards_the_mean_adapted_weights(key):
    learner = meta.reptile(
        meta.mlp((1, 8, 1)),
        loss="mse",
        inner_lr=0.05,
        inner_steps=3,
        outer_optimizer=optax.sgd(0.5),
    )
    state = learner.init(key)
    tasks = meta.task_batch(meta.sinusoid(5, 5), key, 4)
    adapted = [
        learner.adapt(state.params, jax.tree.map(lambda a, i=i: a[i], tasks)) for i in range(4)
    ]
    mean = jax.tree.map(lambda *a: sum(a) / 4, *adapted)
    expected = jax.tree.map(lambda t, m: t + 0.5 * (m - t), state.params, mean)
    new, _ = learner.step(state, tasks)
    for a, b in zip(jax.tree.leaves(new.params), jax.tree.leaves(expected), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_inner_optimizer_sees_only_the_adapted_leaves_by_name(key):
    """Adam on the last layer (chosen by path through multi_transform), SGD on the middle
    one, the first layer masked out of adaptation: equal to the same optax rules run by
    hand on the whole tree with the first layer frozen."""
    model = meta.mlp((1, 8, 8, 1))

    def rules(frozen):
        def label(path, _):
            name = jax.tree_util.keystr(path, simple=True, separator="/")
            return (
                "frozen"
                if frozen and name.startswith("layers/0/")
                else "adam"
                if name.startswith("layers/2/")
                else "sgd"
            )

        return optax.multi_transform(
            {
                "adam": optax.adam(0.05, b1=0.0),
                "sgd": optax.sgd(0.02),
                "frozen": optax.set_to_zero(),
            },
            lambda tree: jax.tree_util.tree_map_with_path(label, tree),
        )

    learner = meta.meta_learner(
        model,
        meta.InnerLoop(
            steps=3, optimizer=rules(False), adapt=lambda path: not path.startswith("layers/0/")
        ),
        loss="mse",
    )
    params = model.init(key)
    task = meta.sinusoid(5, 5)(key)
    hand, p = rules(True), params
    opt_state = hand.init(p)
    for _ in range(3):
        g = jax.grad(lambda q: meta.mse(model.apply(q, task.support_x), task.support_y)[0])(p)
        updates, opt_state = hand.update(g, opt_state, p)
        p = optax.apply_updates(p, updates)
    got = learner.adapt(params, task)
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(p), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    leaves = dict(zip(meta.leaf_paths(got), jax.tree.leaves(got), strict=True))
    before = dict(zip(meta.leaf_paths(params), jax.tree.leaves(params), strict=True))
    np.testing.assert_array_equal(leaves["layers/0/kernel/value"], before["layers/0/kernel/value"])
    assert not np.allclose(leaves["layers/2/kernel/value"], before["layers/2/kernel/value"])


def test_interleave_balances_classes():
    y = jnp.array([0, 0, 0, 1, 1, 1, 2, 2, 2, 0, 1, 2])
    x = jnp.arange(12)
    xi, yi = meta.interleave(x, y)
    np.testing.assert_array_equal(yi, [0, 1, 2] * 4)
    np.testing.assert_array_equal(xi, [0, 3, 6, 1, 4, 7, 2, 5, 8, 9, 10, 11])
    f = jnp.linspace(0, 1, 12)
    np.testing.assert_array_equal(meta.interleave(x, f)[0], x)  # regression: order kept


def test_reptile_train_shots_adapts_on_minibatches_of_support_and_query(key):
    """Reptile's "train shots": SGD steps on consecutive, class-interleaved minibatches of
    the support and query sets together, then θ moves to the mean adapted weights."""
    model = meta.mlp((4, 6, 3))
    pool = jax.random.normal(key, (6, 7, 4))
    tasks = meta.task_batch(meta.few_shot(pool, 3, 1, 4), key, 2)
    learner = meta.reptile(
        model,
        inner_lr=0.1,
        inner_steps=3,
        train_on="all",
        inner_batch=6,
        outer_optimizer=optax.sgd(1.0),
    )
    state = learner.init(key)
    expected = []
    for i in range(2):
        t = jax.tree.map(lambda a, i=i: a[i], tasks)
        x = jnp.concatenate([t.support_x, t.query_x])
        y = jnp.concatenate([t.support_y, t.query_y])
        order = [0, 1, 2] + [3 + 4 * c + (n - 1) for n in range(1, 5) for c in range(3)]
        x, y = x[jnp.array(order)], y[jnp.array(order)]
        np.testing.assert_array_equal(y, [0, 1, 2] * 5)
        p = state.params
        for step in range(3):
            idx = (step * 6 + jnp.arange(6)) % 15
            xb, yb = x[idx], y[idx]
            g = jax.grad(lambda q, xb=xb, yb=yb: meta.cross_entropy(model.apply(q, xb), yb)[0])(p)
            p = jax.tree.map(lambda a, b: a - 0.1 * b, p, g)
        expected.append(p)
    mean = jax.tree.map(lambda *a: sum(a) / 2, *expected)
    new, _ = learner.step(state, tasks)
    for a, b in zip(jax.tree.leaves(new.params), jax.tree.leaves(mean), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_anil_adapts_only_the_head(key):
    learner = meta.anil(meta.conv4(3, channels=4), inner_lr=0.5)
    params = jax.jit(learner.init)(key).params
    pool = jax.random.uniform(key, (5, 4, 8, 8, 1))
    task = meta.few_shot(pool, ways=3, shots=1, queries=1)(key)
    adapted = learner.adapt(params, task)
    for path, a, b in zip(
        meta.leaf_paths(params), jax.tree.leaves(params), jax.tree.leaves(adapted), strict=True
    ):
        assert np.array_equal(a, b) != path.startswith("head/"), path


@pytest.mark.slow  # a supernet step's compile; the meta mask and the α meta-gradient are
# checked fast by ANIL's and MetaNAS' tests
def test_tnas_meta_learns_only_alpha_and_adapts_both(key):
    net = meta.supernet_model(NB201(), channels=2, cells_per_stage=1, num_classes=3, in_channels=1)
    learner = meta.tnas(net, inner_lr={"w": 0.1, "alpha": 0.5})
    state = learner.init(key)
    pool = jax.random.uniform(key, (5, 4, 6, 6, 1))
    tasks = meta.task_batch(meta.few_shot(pool, ways=3, shots=1, queries=1), key, 2)
    new, _ = jax.jit(learner.step)(state, tasks)
    for a, b in zip(
        jax.tree.leaves(state.params["w"]), jax.tree.leaves(new.params["w"]), strict=True
    ):
        np.testing.assert_array_equal(a, b)
    assert not np.allclose(state.params["alpha"], new.params["alpha"])
    adapted = jax.jit(learner.adapt)(state.params, jax.tree.map(lambda a: a[0], tasks))
    assert not np.allclose(adapted["alpha"], state.params["alpha"])
    assert any(
        not np.allclose(a, b)
        for a, b in zip(
            jax.tree.leaves(adapted["w"]), jax.tree.leaves(state.params["w"]), strict=True
        )
    )
    cell = meta.derive(NB201(), adapted)
    np.testing.assert_array_equal(NB201().to_decisions(cell), np.argmax(adapted["alpha"], -1))


@pytest.mark.parametrize(
    "method",  # MAML's second-order step: slow; the task map is one mechanism for all
    [pytest.param("maml", marks=pytest.mark.slow), "reptile", "protonet"],
)
def test_vmapped_tasks_equal_unrolled_tasks_and_jit_equals_eager(key, method):
    pool = jax.random.uniform(key, (6, 5, 8, 8, 1))
    tasks = meta.task_batch(meta.few_shot(pool, ways=3, shots=2, queries=2), key, 3)

    def make(task_map):  # SGD outside: Adam would blow float noise in the zero gradients of
        # the conv biases before BN up to +-lr
        if method == "protonet":
            return meta.protonet(
                meta.conv4(None, channels=4), 3, task_map=task_map, optimizer=optax.sgd(0.1)
            )
        return getattr(meta, method)(
            meta.conv4(3, channels=4),
            inner_lr=0.3,
            inner_steps=2,
            task_map=task_map,
            outer_optimizer=optax.sgd(0.1),
        )

    v, u = make("vmap"), make("unroll")
    state = v.init(key)
    sv, mv = jax.jit(v.step)(state, tasks)
    su, mu = u.step(state, tasks)
    for a, b in zip(jax.tree.leaves((sv, mv)), jax.tree.leaves((su, mu)), strict=True):
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-6)
    ev, eu = v.evaluate(state.params, tasks), jax.jit(u.evaluate)(state.params, tasks)
    for k in ev:
        np.testing.assert_allclose(ev[k], eu[k], rtol=2e-4, atol=1e-6)


@pytest.mark.parametrize("shots", [1, 2])
def test_protonet_logits_are_negative_squared_distances_to_prototypes(key, shots):
    embed = meta.conv4(None, channels=4)
    learner = meta.protonet(embed, 3)
    params = learner.init(key).params
    pool = jax.random.uniform(key, (5, 6, 8, 8, 1))
    task = meta.few_shot(pool, ways=3, shots=shots, queries=3)(key)
    zs, zq = embed.apply(params, task.support_x), embed.apply(params, task.query_x)
    protos = jnp.stack([zs[task.support_y == c].mean(0) for c in range(3)])
    logits = -((zq[:, None] - protos[None]) ** 2).sum(-1)
    expected = optax.softmax_cross_entropy_with_integer_labels(logits, task.query_y).mean()
    got = learner.evaluate(params, jax.tree.map(lambda a: a[None], task))["loss_after"][0]
    np.testing.assert_allclose(got, expected, rtol=1e-5)


@pytest.mark.slow  # 30 s; the meta-gradient is checked by finite differences above, and the
# README's and the CLI's meta-training runs learn (experiments/meta_sinusoid.py: the figures)
def test_maml_learns_the_sinusoid_and_beats_its_initialisation(key):
    learner = meta.maml(meta.mlp(), loss="mse", inner_lr=0.01, inner_steps=1)
    sampler = meta.sinusoid(10, 10)
    state, records = meta.meta_train(
        learner, sampler, key, steps=1500, meta_batch=25, log_every=500
    )
    assert records[-1]["loss"] < records[0]["loss"]
    result = meta.evaluate_tasks(learner, state.params, sampler, jax.random.key(7), num_tasks=200)
    before, after = result["loss_before"], result["loss_after"]
    assert after[0] + after[1] < before[0] - before[1]  # CIs apart
    assert after[0] < 0.6 * before[0]


def test_evaluate_tasks_gives_the_same_tasks_and_values_whatever_per_call(key):
    """Task identity is (group, index) of `batch`-sized groups, as `task_batch` draws them;
    `per_call` (1 task per compiled call: a long inner loop unrolled) changes no value."""
    learner = meta.reptile(
        meta.mlp((1, 8, 1)), loss="mse", inner_lr=0.02, inner_steps=2, eval_inner_steps=40
    )
    params = learner.init(key).params
    sampler = meta.sinusoid(5, 5)
    one = meta.evaluate_tasks(learner, params, sampler, key, num_tasks=7, batch=4, per_call=1)
    many = meta.evaluate_tasks(learner, params, sampler, key, num_tasks=7, batch=4, per_call=4)
    by_hand = [
        learner.evaluate(params, meta.task_batch(sampler, jax.random.fold_in(key, b), 4))
        for b in range(2)
    ]
    values = np.concatenate([np.asarray(v["loss_after"]) for v in by_hand])[:7]
    for name in one:
        np.testing.assert_allclose(one[name], many[name], rtol=1e-5)
    np.testing.assert_allclose(one["loss_after"], meta.mean_ci(values), rtol=1e-5)


def test_mean_ci_is_the_normal_95_percent_interval_of_the_mean(key):
    """By hand: [1, 2, 3, 4] has mean 2.5 and sample standard deviation sqrt(5/3), so the
    half-width is 1.96 sqrt(5/3) / 2; one value has no interval (NaN); `evaluate_tasks`
    refuses fewer than 2 tasks (or a float) and takes 2."""
    mean, half = meta.mean_ci([1, 2, 3, 4])
    assert mean == 2.5
    assert half == pytest.approx(1.96 * np.sqrt(5 / 3) / 2, rel=1e-12)
    assert meta.mean_ci([7.0])[0] == 7.0
    assert np.isnan(meta.mean_ci([7.0])[1])
    learner = meta.maml(meta.mlp((1, 4, 1)), loss="mse", inner_lr=0.02)
    params = learner.init(key).params
    for bad in (1, 2.0):
        with pytest.raises(ValueError, match="num_tasks"):
            meta.evaluate_tasks(learner, params, meta.sinusoid(5, 5), key, num_tasks=bad)
    two = meta.evaluate_tasks(learner, params, meta.sinusoid(5, 5), key, num_tasks=2)
    assert np.isfinite(two["loss_after"]).all()


def test_meta_train_resumes_to_the_same_state_and_records(key, tmp_path):
    learner = meta.maml(meta.mlp((1, 8, 1)), loss="mse", inner_lr=0.02)
    sampler = meta.sinusoid(5, 5)
    full, full_records = meta.meta_train(
        learner, sampler, key, steps=6, meta_batch=4, log_every=2, out=tmp_path / "a"
    )
    meta.meta_train(learner, sampler, key, steps=4, meta_batch=4, log_every=2, out=tmp_path / "b")
    logged = []
    resumed, records = meta.meta_train(
        learner, sampler, key, steps=6, meta_batch=4, log_every=2, out=tmp_path / "b",
        resume=True, on_log=logged.append,
    )  # fmt: skip
    assert records == full_records
    assert logged == records[2:]  # `on_log` sees each new record (the resumed chunk's)
    assert len(records) == 3
    for a, b in zip(jax.tree.leaves(full), jax.tree.leaves(resumed), strict=True):
        np.testing.assert_array_equal(a, b)
    # both against a Python loop: step s meta-trains on the tasks of fold_in(k_steps, s)
    # (two runs of meta_train would agree on any slip in the chunks' step offsets)
    k_init, k_steps = jax.random.split(key)
    state, losses = learner.init(k_init), []
    for s in range(6):
        state, metrics = learner.step(
            state, meta.task_batch(sampler, jax.random.fold_in(k_steps, s), 4)
        )
        losses.append(float(metrics["loss"]))
    for a, b in zip(jax.tree.leaves(full), jax.tree.leaves(state), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert [r["step"] for r in records] == [2, 4, 6]
    assert int(state.step) == int(full.step) == int(resumed.step) == 6  # outer steps taken
    np.testing.assert_allclose([r["loss"] for r in records], np.reshape(losses, (3, 2)).mean(1),
                               rtol=1e-5)  # fmt: skip


def test_nan_losses_stop_meta_training(key):
    learner = meta.maml(meta.mlp((1, 8, 1)), loss="mse", inner_lr=1e30)
    with pytest.raises(
        FloatingPointError, match=r"\(steps 0\.\.1, chunk = 2 steps\): non-finite `loss`"
    ):
        meta.meta_train(learner, meta.sinusoid(5, 5), key, steps=4, meta_batch=2, log_every=2)


def test_meta_training_and_evaluation_defaults_are_the_few_shot_literatures():
    """Meta-batches of 32 tasks (MAML's Omniglot runs), a record every 100 steps, and 600
    held-out tasks in groups of 50 (the few-shot papers' evaluation)."""
    import inspect

    def defaults(fn):
        return {k: p.default for k, p in inspect.signature(fn).parameters.items()}

    assert defaults(meta.meta_train)["meta_batch"] == 32
    assert defaults(meta.meta_train)["log_every"] == 100
    assert (defaults(meta.evaluate_tasks)["num_tasks"], defaults(meta.evaluate_tasks)["batch"]) == (
        600,
        50,
    )


def test_bad_configurations_fail_early_with_the_argument_named():
    model = meta.mlp((1, 4, 1))
    with pytest.raises(ValueError, match="inner_steps"):
        meta.maml(model, inner_steps=0)
    with pytest.raises(ValueError, match="outer"):
        meta.meta_learner(model, outer=meta.OuterLoop("sgd"))
    with pytest.raises(ValueError, match="inner_lr"):
        meta.maml(model, inner_lr=-1.0)
    with pytest.raises(ValueError, match="inner_lr"):
        meta.maml(model, inner_lr=0.0)
    with pytest.raises(ValueError, match="not both"):
        meta.maml(model, inner_lr=0.1, inner_optimizer=optax.sgd(0.1))
    with pytest.raises(ValueError, match="train_on"):
        meta.maml(model, train_on="all")
    with pytest.raises(ValueError, match="inner_batch"):
        meta.reptile(model, inner_batch=0)
    with pytest.raises(ValueError, match="inner_batch"):
        meta.reptile(model, inner_batch=2.0)
    meta.reptile(model, inner_batch=1)  # one example per step is a minibatch
    with pytest.raises(ValueError, match="selects no parameters"):
        meta.anil(model, head="nothing")
    with pytest.raises(ValueError, match="loss"):
        meta.maml(model, loss="hinge")
    with pytest.raises(ValueError, match="task_map"):
        meta.maml(model, task_map="pmap")
    with pytest.raises(ValueError, match="'w', 'alpha'"):
        meta.metanas(model)
    with pytest.raises(ValueError, match="`ways`"):
        meta.protonet(meta.conv4(None), 1)
