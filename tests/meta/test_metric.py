"""Metric-based meta-learners: Matching and Relation networks' scores against NumPy
re-derivations of the papers' formulas, and each learns few-shot classification of unseen
classes that chance cannot pass."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jnas import meta


def test_matching_logits_are_the_attention_weighted_labels():
    rng = np.random.default_rng(0)
    zq, zs = rng.normal(size=(4, 6)), rng.normal(size=(10, 6))
    labels = np.arange(10) % 5
    onehot = np.eye(5)[labels]
    cos = (zq / np.linalg.norm(zq, axis=1, keepdims=True)) @ (
        zs / np.linalg.norm(zs, axis=1, keepdims=True)
    ).T
    a = np.exp(cos) / np.exp(cos).sum(1, keepdims=True)
    want = np.log(a @ onehot)
    got = meta.matching_logits(None, jnp.asarray(zq), jnp.asarray(zs), jnp.asarray(onehot))
    np.testing.assert_allclose(got, want, rtol=1e-5)
    a10 = np.exp(10 * cos) / np.exp(10 * cos).sum(1, keepdims=True)
    got10 = meta.matching_logits(None, *(jnp.asarray(v) for v in (zq, zs, onehot)), 10.0)
    np.testing.assert_allclose(got10, np.log(a10 @ onehot), rtol=1e-5)
    # a class the attention misses entirely (exp(-2e4) underflows to 0) gets log(1e-12),
    # finite, so that a query of that class still has a finite cross-entropy
    far = meta.matching_logits(None, jnp.asarray([[1.0, 0.0]]), jnp.asarray([[1.0, 0.0], [-1.0, 0.0]]), jnp.eye(2), 1e4)  # fmt: skip
    np.testing.assert_allclose(far, [[0.0, np.log(1e-12)]], rtol=1e-6, atol=1e-6)


def test_matching_networks_learn_their_metric_scale():
    """`scale=`: the learner's logits are the scaled formula at the learned scale, and
    meta-training moves the scale (its gradient is not cut)."""
    embed = meta.mlp((4, 6))
    learner = meta.matching_net(embed, ways=3, scale=10.0, optimizer=optax.adam(0.1))
    state = learner.init(jax.random.key(0))
    assert float(state.params["extra"]["log_scale"]) == pytest.approx(np.log(10.0))
    rng = np.random.default_rng(1)
    support_x = jnp.asarray(rng.normal(size=(6, 4)), jnp.float32)
    support_y = jnp.asarray([0, 1, 2, 0, 1, 2])
    query_x = jnp.asarray(rng.normal(size=(3, 4)), jnp.float32)
    zs = embed.apply(state.params["embed"], support_x)
    zq = embed.apply(state.params["embed"], query_x)
    want = meta.matching_logits(None, zq, zs, jax.nn.one_hot(support_y, 3), 10.0)
    got = learner.predict(state.params, support_x, support_y, query_x)
    np.testing.assert_allclose(got, want, rtol=1e-5)
    task = meta.Task(support_x, support_y, query_x, jnp.asarray([0, 1, 2]))
    batch = jax.tree.map(lambda a: a[None], task)
    new, _ = learner.step(state, batch)
    assert int(new.step) == 1  # the state counts its outer steps
    assert float(new.params["extra"]["log_scale"]) != pytest.approx(np.log(10.0), abs=1e-4)
    with pytest.raises(ValueError, match="scale"):
        meta.matching_net(embed, ways=3, scale=0.0)
    meta.matching_net(embed, ways=3, scale=0.5)  # any positive scale


def _np_lstm(p, x, c):
    sig = lambda v: 1 / (1 + np.exp(-v))
    z = x @ np.asarray(p["w"], np.float64) + np.asarray(p["b"], np.float64)
    i, f, g, o = np.split(z, 4)
    c = sig(f) * c + sig(i) * np.tanh(g)
    return sig(o) * np.tanh(c), c


@pytest.mark.parametrize("scale", [None, 7.0])
def test_full_context_embeddings_follow_the_papers_equations(scale):
    """Matching networks' FCE (Vinyals et al. 2016, appendix A.2) re-derived in NumPy loops:
    a bidirectional LSTM over the support set plus a skip, and an attention LSTM reading
    it K times per query; the classifier is the cosine attention on top of both (the
    cosines times the learned scale, when there is one)."""
    features, k_reads = 5, 3  # 5 wide, 6 support examples: the shapes do not coincide
    learner = meta.matching_net(meta.mlp((4, features)), ways=3, fce=True, features=features,
                                read_steps=k_reads, scale=scale)  # fmt: skip
    params = learner.init(jax.random.key(0)).params
    rng = np.random.default_rng(3)
    support_x = jnp.asarray(rng.normal(size=(6, 4)), jnp.float32)
    support_y = jnp.asarray([0, 1, 2, 2, 1, 0])
    query_x = jnp.asarray(rng.normal(size=(2, 4)), jnp.float32)
    got = learner.predict(params, support_x, support_y, query_x)
    embed = meta.mlp((4, features))
    zs = np.asarray(embed.apply(params["embed"], support_x), np.float64)
    zq = np.asarray(embed.apply(params["embed"], query_x), np.float64)
    p = params["extra"]
    fwd, bwd = np.zeros_like(zs), np.zeros_like(zs)
    h, c = np.zeros(features), np.zeros(features)
    for i in range(6):
        h, c = _np_lstm(p["fwd"], np.concatenate([zs[i], h]), c)
        fwd[i] = h
    h, c = np.zeros(features), np.zeros(features)
    for i in reversed(range(6)):
        h, c = _np_lstm(p["bwd"], np.concatenate([zs[i], h]), c)
        bwd[i] = h
    g = zs + fwd + bwd
    f = np.zeros_like(zq)
    for q in range(2):
        h, c = np.zeros(features), np.zeros(features)
        for _ in range(k_reads):
            a = np.exp(g @ h) / np.exp(g @ h).sum()
            h_hat, c = _np_lstm(p["att"], np.concatenate([zq[q], h, a @ g]), c)
            h = h_hat + zq[q]
        f[q] = h
    unit = lambda z: z / np.linalg.norm(z, axis=1, keepdims=True)
    att = np.exp((1.0 if scale is None else scale) * unit(f) @ unit(g).T)
    att /= att.sum(1, keepdims=True)
    want = np.log(att @ np.eye(3)[np.asarray(support_y)])
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="features"):
        meta.matching_net(meta.mlp((4, features)), ways=3, fce=True)


def test_relation_scores_pair_each_query_with_each_class_sum():
    learner = meta.relation_net(meta.mlp((3, 4)), ways=2, features=4, hidden=5)
    params = learner.init(jax.random.key(0)).params
    support_x = jnp.asarray(np.random.default_rng(1).normal(size=(4, 3)), jnp.float32)
    support_y = jnp.asarray([0, 1, 0, 1])
    query_x = jnp.asarray(np.random.default_rng(2).normal(size=(3, 3)), jnp.float32)
    got = learner.predict(params, support_x, support_y, query_x)
    embed, rel = meta.mlp((3, 4)), meta.mlp((8, 5, 1))
    zs, zq = embed.apply(params["embed"], support_x), embed.apply(params["embed"], query_x)
    classes = [zs[0] + zs[2], zs[1] + zs[3]]
    for i in range(3):
        for c in range(2):
            pair = jnp.concatenate([zq[i], classes[c]])[None]
            want = jax.nn.sigmoid(rel.apply(params["extra"], pair))[0, 0]
            assert float(got[i, c]) == pytest.approx(float(want), rel=1e-5)


def test_relation_networks_train_on_the_mse_to_the_one_hot_label_and_report_accuracy():
    """Sung et al. regress each (query, class) score on 1 for the query's class and 0 for
    the others (mean squared error); the metric is the accuracy of each query's highest
    score; the scores come from `predict`, the labels chosen so that 4 of 6 are right."""
    learner = meta.relation_net(meta.mlp((3, 4)), ways=3, features=4)
    params = learner.init(jax.random.key(0)).params
    rng = np.random.default_rng(1)
    support_x = jnp.asarray(rng.normal(size=(6, 3)), jnp.float32)
    support_y = jnp.asarray([0, 1, 2, 0, 1, 2])
    query_x = jnp.asarray(rng.normal(size=(6, 3)), jnp.float32)
    scores = np.asarray(learner.predict(params, support_x, support_y, query_x), np.float64)
    labels = scores.argmax(1)
    labels[4:] = (labels[4:] + 1) % 3  # the last two wrong
    task = meta.Task(support_x, support_y, query_x, jnp.asarray(labels))
    out = learner.evaluate(params, jax.tree.map(lambda a: a[None], task))
    assert float(out["loss_after"][0]) == pytest.approx(np.mean((scores - np.eye(3)[labels]) ** 2), rel=1e-5)  # fmt: skip
    assert float(out["metric_after"][0]) == pytest.approx(4 / 6)


def test_convolutional_relation_module_scores_each_query_map_with_each_class_map_sum():
    """The paper's conv module on conv4's 2x2 maps: the pairs (query map, sum of the class's
    shot maps) built by loops, in the learner's order (query-major), through the module;
    conv4 gives 2x2x64 maps for 28x28 images."""
    embed = meta.conv4(None, channels=8, pool=False)
    learner = meta.relation_net(embed, ways=2, features=8, module="conv")
    params = learner.init(jax.random.key(0)).params
    rng = np.random.default_rng(1)
    support_x = jnp.asarray(rng.normal(size=(4, 28, 28, 1)), jnp.float32)
    support_y = jnp.asarray([0, 1, 1, 0])
    query_x = jnp.asarray(rng.normal(size=(3, 28, 28, 1)), jnp.float32)
    got = np.asarray(learner.predict(params, support_x, support_y, query_x))
    zs = embed.apply(params["embed"], support_x)
    zq = embed.apply(params["embed"], query_x)
    assert zs.shape == (4, 2, 2, 8)
    classes = [zs[0] + zs[3], zs[1] + zs[2]]
    pairs = jnp.stack(
        [jnp.concatenate([zq[i], classes[c]], -1) for i in range(3) for c in range(2)]
    )
    module = meta.relation_module(16, channels=64, hidden=8)
    want = np.asarray(jax.nn.sigmoid(module.apply(params["extra"], pairs))).reshape(3, 2)
    np.testing.assert_allclose(got, want, rtol=1e-5)
    assert meta.conv4(None, pool=False).apply(meta.conv4(None, pool=False).init(jax.random.key(0)), support_x).shape == (4, 2, 2, 64)  # fmt: skip
    with pytest.raises(ValueError, match=r"\[N, H, W, features\] with features=8; got \(3, 8\)"):
        # pooled embeddings for the conv module
        meta.relation_net(meta.conv4(None, channels=8), ways=2, features=8, module="conv").predict(
            learner.init(jax.random.key(0)).params, support_x, support_y, query_x
        )
    maps_to_mlp = meta.relation_net(embed, ways=2, features=8)  # feature maps, MLP module
    with pytest.raises(ValueError, match=r"\[N, features\] with features=8; got \(3, 2, 2, 8\)"):
        maps_to_mlp.predict(maps_to_mlp.init(jax.random.key(0)).params, support_x, support_y, query_x)  # fmt: skip


def test_relation_module_is_the_papers_in_numpy():
    """Sung et al.'s convolutional relation module in NumPy: 2 x [3x3 conv (stride 1, padding
    1, bias), batch norm on the batch's statistics, ReLU, 2x2 max pool rounding up], the
    global max over what is left, linear + ReLU, linear to one logit; 5x5 maps (odd, so
    the pools round up: 5 -> 3 -> 2)."""
    from flax import nnx

    def conv(x, k, b):  # x [N, H, W, C], k [3, 3, C, O], stride 1, padding 1
        xp = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
        h, w = x.shape[1:3]
        return b + sum(xp[:, a : a + h, c : c + w] @ k[a, c] for a in range(3) for c in range(3))

    def norm(x, scale, bias):
        mean, var = x.mean((0, 1, 2)), x.var((0, 1, 2))
        return (x - mean) / np.sqrt(var + 1e-5) * scale + bias

    def pool(x):  # 2x2, stride 2, a partial window at an odd edge
        n, h, w, c = x.shape
        xp = np.pad(x, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), constant_values=-np.inf)
        return xp.reshape(n, (h + 1) // 2, 2, (w + 1) // 2, 2, c).max((2, 4))

    module = meta.RelationModule(4, channels=3, hidden=2, rngs=nnx.Rngs(0))
    rng = np.random.default_rng(0)
    for n in module.norms:  # not the initial 1 and 0, so the affine part is read too
        n.scale[...] = jnp.asarray(rng.uniform(0.5, 1.5, 3), jnp.float32)
        n.bias[...] = jnp.asarray(rng.normal(size=3), jnp.float32)
    x = rng.normal(size=(4, 5, 5, 4)).astype(np.float32)
    want = x
    for c, n in zip(module.convs, module.norms, strict=True):
        y = conv(want, np.asarray(c.kernel[...]), np.asarray(c.bias[...]))
        want = pool(np.maximum(norm(y, np.asarray(n.scale[...]), np.asarray(n.bias[...])), 0))
    assert want.shape == (4, 2, 2, 3)
    hidden = np.maximum(want.max((1, 2)) @ np.asarray(module.fc1.kernel[...]) + np.asarray(module.fc1.bias[...]), 0)  # fmt: skip
    want = hidden @ np.asarray(module.fc2.kernel[...]) + np.asarray(module.fc2.bias[...])
    np.testing.assert_allclose(module(jnp.asarray(x)), want, rtol=1e-4, atol=1e-5)


def _clusters(key, classes=230):
    """Classes differ in 4 features; 12 more are large noise (a random embedding sees
    mostly noise: meta-training must learn to ignore it)."""
    k_mean, k_noise, k_junk = jax.random.split(key, 3)
    signal = jax.random.normal(k_mean, (classes, 1, 4)) + 0.3 * jax.random.normal(
        k_noise, (classes, 12, 4)
    )
    return jnp.concatenate([signal, 3.0 * jax.random.normal(k_junk, (classes, 12, 12))], -1)


@pytest.mark.parametrize(
    "method",
    [
        "matching_net",
        pytest.param("matching_fce", marks=pytest.mark.slow),  # 20 s; equations checked above
        "relation_net",
        pytest.param("snail", marks=pytest.mark.slow),  # 46 s
    ],
)
def test_learns_unseen_classes_from_one_shot(method):
    data = _clusters(jax.random.key(0))
    train, test = data[:200], data[200:]
    embed = meta.mlp((16, 32, 16))
    if method == "matching_net":
        learner = meta.matching_net(embed, ways=5, optimizer=optax.adam(3e-3))
    elif method == "matching_fce":
        learner = meta.matching_net(embed, ways=5, fce=True, features=16, optimizer=optax.adam(3e-3))  # fmt: skip
    elif method == "snail":
        # a quarter of the paper's block sizes; vmapped tasks (an MLP embedding)
        learner = meta.snail(embed, ways=5, shots=1, features=16, width=0.25,
                             optimizer=optax.adam(3e-3), task_map="vmap")  # fmt: skip
    else:
        learner = meta.relation_net(
            embed, ways=5, features=16, hidden=64, optimizer=optax.adam(3e-3)
        )
    state = learner.init(jax.random.key(1))
    sample = meta.few_shot(train, ways=5, shots=1, queries=5)
    step = jax.jit(lambda s, k: learner.step(s, meta.task_batch(sample, k, 8)))
    evaluate = jax.jit(learner.evaluate)
    before = evaluate(
        state.params, meta.task_batch(meta.few_shot(test, 5, 1, 5), jax.random.key(9), 50)
    )["metric_after"].mean()
    for i in range(600 if method == "snail" else 300):  # SNAIL learns slower (0.39 at 300)
        state, _ = step(state, jax.random.key(100 + i))
    tasks = meta.task_batch(meta.few_shot(test, 5, 1, 5), jax.random.key(9), 50)
    after = evaluate(state.params, tasks)["metric_after"].mean()
    assert after > 0.6  # chance: 0.2
    assert after > before + 0.2  # meta-training, not the random embedding, gets there


def test_meta_command_runs_matching_networks(tmp_path, monkeypatch, capsys):
    from jnas import cli

    monkeypatch.setenv("JNAS_XLA_CACHE", "")
    out = tmp_path / "m"
    args = ["meta", "matching_net", "--dataset", "digits", "--ways", "2", "--steps", "2"]
    args += ["--meta-batch", "2", "--test-tasks", "4", "--queries", "3", "--out", str(out)]
    assert cli.main(args) == 0
    printed = capsys.readouterr().out
    assert "accuracy: " in printed
    assert "before" not in printed  # nothing adapts: one figure
    assert (out / "summary.json").exists()


def test_snail_is_causal_and_reads_the_support_labels():
    """SNAIL's sequence model: the output at step t never depends on later steps (perturbing
    them changes nothing before them, exactly); the query's logits change with the support
    set's labels."""
    model = meta.snail_model(8, 3, 7)
    params = model.init(jax.random.key(0))
    apply = jax.jit(model.apply)  # one program for every sequence below
    x = jax.random.normal(jax.random.key(1), (7, 11))
    out = apply(params, x)
    assert out.shape == (7, 3)
    for t in range(6):
        later = x.at[t + 1 :].add(jax.random.normal(jax.random.key(t), (6 - t, 11)))
        np.testing.assert_array_equal(apply(params, later)[: t + 1], out[: t + 1])
        assert not np.allclose(apply(params, later)[t + 1 :], out[t + 1 :])
    learner = meta.snail(meta.mlp((4, 8)), ways=3, shots=2, features=8)
    p = learner.init(jax.random.key(2)).params
    sx = jax.random.normal(jax.random.key(3), (6, 4))
    qx = jax.random.normal(jax.random.key(4), (2, 4))
    predict = jax.jit(learner.predict)
    a = predict(p, sx, jnp.asarray([0, 0, 1, 1, 2, 2]), qx)
    b = predict(p, sx, jnp.asarray([1, 1, 2, 2, 0, 0]), qx)
    assert a.shape == (2, 3)
    assert not np.allclose(a, b)


def test_snail_computes_the_shared_support_once_and_equals_each_querys_whole_sequence():
    """`model(prefix, last)` (the prefix's activations once, each query's position on top)
    equals running each query's whole causal sequence and reading its last row, in value
    and in gradient; with 6 prefix rows the third dense block's dilation (8) reaches before
    the start, where the query sees zeros."""
    model = meta.snail_model(8, 3, 7)
    params = model.init(jax.random.key(0))
    prefix = jax.random.normal(jax.random.key(1), (6, 11))
    last = jax.random.normal(jax.random.key(2), (4, 11))

    def shared(p):
        return model.apply(p, prefix, last)

    def whole(p):  # the plain causal pass, one sequence per query
        return jnp.stack([model.apply(p, jnp.concatenate([prefix, q[None]]))[-1] for q in last])

    np.testing.assert_allclose(
        jax.jit(shared)(params), jax.jit(whole)(params), rtol=1e-5, atol=1e-6
    )
    g_shared = jax.jit(jax.grad(lambda p: jnp.sum(jnp.sin(shared(p)))))(params)
    g_whole = jax.jit(jax.grad(lambda p: jnp.sum(jnp.sin(whole(p)))))(params)
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6), g_shared, g_whole
    )
    with pytest.raises(ValueError, match=r"`last` must be \[Q, 11\]"):
        model.apply(params, prefix, last[:, :5])
    # prefixes as long as a dilation (2, 4): the query's dense block reads the first row
    for n in (2, 4):
        np.testing.assert_allclose(
            model.apply(params, prefix[:n], last),
            jnp.stack([model.apply(params, jnp.concatenate([prefix[:n], q[None]]))[-1] for q in last]),
            rtol=1e-5,
            atol=1e-6,
        )  # fmt: skip


def _snail_sizes(params) -> tuple[int, tuple[int, ...]]:
    """(dense blocks per TC block, the first attention block's query kernel shape)."""
    paths = [(jax.tree_util.keystr(p), x.shape) for p, x in jax.tree_util.tree_leaves_with_path(params)]  # fmt: skip
    convs = sum("conv" in p and "kernel" in p for p, _ in paths)
    return convs // 2, next(s for p, s in paths if "[0]" in p and "query" in p and "kernel" in p)


def test_snail_sizes_follow_the_sequence_length_and_width():
    """A TC block stacks ceil(log2 T) dense blocks (at least one), T the support pairs plus
    the query (7-way 1-shot: T = 8, three; 2-way 2-shot: T = 5, three); `width` scales the
    paper's sizes (Att(64, 32) first), 1 by default, each at least one unit; a width <= 0,
    or shots and features below one or not ints, are refused by name."""
    key = jax.random.key(0)

    def model_sizes(*args, **kw):
        return _snail_sizes(jax.eval_shape(meta.snail_model(*args, **kw).init, key))

    def learner_sizes(**kw):
        learner = meta.snail(meta.mlp((2, 3)), features=3, **kw)
        return _snail_sizes(jax.eval_shape(lambda k: learner.init(k).params["extra"], key))

    for seq_len, blocks in ((2, 1), (3, 2), (5, 3), (8, 3), (9, 4)):
        assert model_sizes(1, 2, seq_len)[0] == blocks
    assert learner_sizes(ways=7, shots=1) == (3, (10, 64))
    assert learner_sizes(ways=2, shots=2) == (3, (5, 64))
    assert learner_sizes(ways=2, shots=1)[0] == 2
    assert model_sizes(8, 3, 7) == (3, (11, 64))
    assert model_sizes(8, 3, 7, width=0.25) == (3, (11, 16))
    assert model_sizes(8, 3, 7, width=1e-3) == (3, (11, 1))
    for bad in (0.0, -1.0):
        with pytest.raises(ValueError, match="width"):
            meta.snail_model(8, 3, 7, width=bad)
    for name, bad in (("shots", 0), ("shots", 2.0), ("features", 0)):
        with pytest.raises(ValueError, match=name):
            meta.snail(meta.mlp((2, 3)), **{"ways": 2, "shots": 1, "features": 3, name: bad})
    meta.snail(meta.mlp((2, 1)), ways=2, shots=1, features=1)  # one shot, one feature


def test_the_meta_command_builds_snail_for_its_shots():
    from jnas.recipes.meta import make_learner

    learner = make_learner("snail", image=True, ways=2, steps=1, shots=3, channels=4)
    params = learner.init(jax.random.key(0)).params
    sx = jax.random.normal(jax.random.key(1), (6, 28, 28, 1))
    qx = jax.random.normal(jax.random.key(2), (4, 28, 28, 1))
    logits = learner.predict(params, sx, jnp.asarray([0, 0, 0, 1, 1, 1]), qx)
    assert logits.shape == (4, 2)
    # three dense blocks per TC block: ceil(log2(2 * 3 + 1))
    assert sum("conv" in str(path) for path, _ in jax.tree_util.tree_leaves_with_path(
        params["extra"]) if "kernel" in str(path)) == 6  # fmt: skip


def test_fce_lstms_start_as_pytorchs_and_relation_modules_have_the_papers_sizes():
    """The full-context LSTMs are uniform in +-1/sqrt(hidden) as `torch.nn.LSTM` (its
    documented initialisation); the relation module's two fully connected layers are 8 and
    1 wide by default (Sung et al. 2018, section 3.4), after 64-channel blocks for images."""
    f = 16
    params = meta.init_fce(jax.random.key(0), f)
    for name, inputs in (("fwd", 2 * f), ("bwd", 2 * f), ("att", 3 * f)):
        w, b = np.asarray(params[name]["w"]), np.asarray(params[name]["b"])
        assert w.shape == (inputs, 4 * f)
        assert b.shape == (4 * f,)
        for v in (w, b):
            assert np.abs(v).max() <= 1 / np.sqrt(f)
            assert v.min() < -0.75 / np.sqrt(f)
            assert v.max() > 0.75 / np.sqrt(f)
    # three LSTMs, three draws (the forward and backward ones read the same input width;
    # one key for two shapes would repeat the smaller one's numbers in the larger)
    assert not np.allclose(params["fwd"]["w"], params["bwd"]["w"])
    for name in ("fwd", "bwd"):
        assert not np.allclose(params["att"]["w"][: 2 * f], params[name]["w"])
    # the attention LSTM reads the support set 5 times by default
    rng = np.random.default_rng(0)
    episode = (jnp.asarray(rng.normal(size=(4, 3)), jnp.float32), jnp.asarray([0, 1, 0, 1]),
               jnp.asarray(rng.normal(size=(2, 3)), jnp.float32))  # fmt: skip

    def fce_logits(**kw):
        learner = meta.matching_net(meta.mlp((3, 4)), ways=2, fce=True, features=4, **kw)
        return learner.predict(learner.init(jax.random.key(0)).params, *episode)

    default = fce_logits()
    np.testing.assert_array_equal(default, fce_logits(read_steps=5))
    assert not np.allclose(default, fce_logits(read_steps=4))

    def shapes(learner):
        extra = learner.init(jax.random.key(0)).params["extra"]
        return [x.shape for x in jax.tree.leaves(extra)]

    # [query, class] of 3 features each -> 8 -> 1
    assert shapes(meta.relation_net(meta.mlp((2, 3)), ways=2, features=3)) == [
        (8,),
        (6, 8),
        (1,),
        (8, 1),
    ]
    conv = shapes(meta.relation_net(meta.conv4(None, pool=False), 2, 64, module="conv"))
    for shape in ((3, 3, 128, 64), (3, 3, 64, 64), (64, 8), (8, 1)):
        assert shape in conv
    for bad in (3.0, 0):
        with pytest.raises(ValueError, match="features"):
            meta.relation_net(meta.mlp((2, 3)), ways=2, features=bad)
        with pytest.raises(ValueError, match="features"):
            meta.matching_net(meta.mlp((2, 3)), ways=2, fce=True, features=bad)
    meta.relation_net(meta.mlp((2, 1)), ways=2, features=1)  # one feature is a width
    meta.matching_net(meta.mlp((2, 1)), ways=2, fce=True, features=1)


def _sigmoid(a):
    return 1 / (1 + np.exp(-a))


def test_snail_blocks_are_the_papers_in_numpy():
    """Mishra et al. 2018: an AttentionBlock(K, V) concatenates softmax(q k^T / sqrt(K)) v,
    causally masked; a DenseBlock(d, D) concatenates tanh(f) * sigmoid(g) of a kernel-2
    convolution over positions t - dilation and t (zeros before the start); the few-shot
    model stacks Att(64, 32), TC(128), Att(256, 128), TC(128), Att(512, 256), each TC of
    DenseBlocks with dilations 2, 4, ..., 2^ceil(log2 T)."""
    from flax import nnx

    from jnas.meta._snail import SNAIL, AttentionBlock, DenseBlock

    x = np.random.default_rng(0).normal(size=(6, 5)).astype(np.float32)
    att = AttentionBlock(5, 4, 3, rngs=nnx.Rngs(0))
    q, k, v = (x @ np.asarray(m.kernel[...]) for m in (att.query, att.key, att.value))
    logits = np.where(np.tril(np.ones((6, 6), bool)), q @ k.T / 2.0, -np.inf)
    weights = np.exp(logits - logits.max(1, keepdims=True))
    weights /= weights.sum(1, keepdims=True)
    np.testing.assert_allclose(att(jnp.asarray(x)), np.c_[x, weights @ v], rtol=1e-5, atol=1e-5)
    dense = DenseBlock(5, 3, 2, rngs=nnx.Rngs(1))
    past = np.r_[np.zeros((2, 5), np.float32), x[:4]]
    out = np.c_[past, x] @ np.asarray(dense.conv.kernel[...])
    want = np.c_[x, np.tanh(out[:, :3]) * _sigmoid(out[:, 3:])]
    np.testing.assert_allclose(dense(jnp.asarray(x)), want, rtol=1e-5, atol=1e-5)
    model = nnx.eval_shape(lambda: SNAIL(8, 3, 7, rngs=nnx.Rngs(0)))
    layout = [
        ("att", b.query.out_features, b.value.out_features)
        if isinstance(b, AttentionBlock)
        else ("dense", b.filters, b.dilation)
        for b in model.blocks
    ]
    tc = [("dense", 128, 2), ("dense", 128, 4), ("dense", 128, 8)]  # ceil(log2 7) = 3
    assert layout == [("att", 64, 32), *tc, ("att", 256, 128), *tc, ("att", 512, 256)]
    assert model.out.in_features == 8 + 3 + 32 + 3 * 128 + 128 + 3 * 128 + 256


def test_conv4_has_finn_et_als_omniglot_parameters_and_2x2_maps():
    """4 x [3x3 conv with bias, 64 filters, stride 2; BN scale and shift], a 5-way linear
    head: 640 + 3 x 36,928 + 4 x 128 + 325 = 112,261 parameters; 28x28 -> 14, 7, 4, 2."""
    model = meta.conv4(5)
    params = model.init(jax.random.key(0))
    assert sum(int(np.size(a)) for a in jax.tree.leaves(params)) == 112_261
    maps = meta.conv4(None, pool=False).apply(
        meta.conv4(None, pool=False).init(jax.random.key(0)), jnp.zeros((2, 28, 28, 1))
    )
    assert maps.shape == (2, 2, 2, 64)
    assert model.apply(params, jnp.zeros((2, 28, 28, 1))).shape == (2, 5)


def test_the_models_defaults_are_the_papers_and_bad_sizes_are_refused():
    """The factories' and classes' defaults: `conv4()` and `Conv4(5)` are Finn et al.'s
    5-way Omniglot network (112,261 parameters; `Conv4(None)` pools to the 64-d embedding);
    `mlp()` is the 1-40-40-1 sinusoid regressor (1,761); the relation module, factory and
    class, has Sung et al.'s 64 channels and 8 hidden units (128 input channels: 73,792 +
    36,928 + 256 + 520 + 9 = 111,505); MetaNAS' supernet draws alpha from 1e-3 N(0, 1), as
    DARTS; `mlp` refuses fewer than two sizes or a size below one."""
    from flax import nnx

    from jnas.nn import count_params
    from jnas.spaces import NB201

    key = jax.random.key(0)

    def count(params) -> int:
        return sum(int(np.size(a)) for a in jax.tree.leaves(params))

    def module(make) -> int:  # the class's parameters, counted as for the NB201 table
        return count_params(nnx.eval_shape(lambda: make(nnx.Rngs(0))))

    assert count(jax.eval_shape(meta.conv4().init, key)) == 112_261
    assert module(lambda rngs: meta.Conv4(5, rngs=rngs)) == 112_261
    embed = meta.from_module(lambda rngs: meta.Conv4(None, rngs=rngs))
    params = jax.eval_shape(embed.init, key)
    assert count(params) == 112_261 - 325
    assert jax.eval_shape(embed.apply, params, jnp.zeros((2, 28, 28, 1))).shape == (2, 64)
    assert count(jax.eval_shape(meta.mlp().init, key)) == 1_761
    assert count(jax.eval_shape(meta.relation_module(128).init, key)) == 111_505
    assert module(lambda rngs: meta.RelationModule(128, rngs=rngs)) == 111_505
    net = meta.supernet_model(NB201(), channels=2, cells_per_stage=1, num_classes=3, in_channels=1)
    alpha = np.asarray(net.init(key)["alpha"])
    assert alpha.shape == (6, 5)
    assert 0.7e-3 < alpha.std() < 1.4e-3
    for bad in ((3,), (2, 0), (2, 2.0)):
        with pytest.raises(ValueError, match="sizes"):
            meta.mlp(bad)
    meta.mlp((1, 1))  # the smallest: one input, one output


def test_metanas_supernet_model_mixes_each_edges_ops_by_its_alpha_rows_softmax():
    """`supernet_model` is the space's supernet under {"w", "alpha"} params, each edge's
    ops weighted by the softmax of its own row of alpha (DARTS' mixed op), computed here
    in NumPy and passed to the supernet directly."""
    from jnas.oneshot import make_supernet
    from jnas.spaces import NB201

    config = {"channels": 2, "cells_per_stage": 1, "num_classes": 3, "in_channels": 1}
    model = meta.supernet_model(NB201(), alpha_scale=1.0, **config)
    params = model.init(jax.random.key(0))
    alpha = np.asarray(params["alpha"], np.float64)
    weights = np.exp(alpha) / np.exp(alpha).sum(1, keepdims=True)
    x = jax.random.normal(jax.random.key(1), (3, 8, 8, 1))
    want = make_supernet(NB201(), config).apply(params["w"], x, jnp.asarray(weights, jnp.float32))
    np.testing.assert_allclose(model.apply(params, x), want, rtol=1e-5, atol=1e-6)
