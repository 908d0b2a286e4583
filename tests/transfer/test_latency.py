"""HELP's meta-learned latency predictor: Spearman against SciPy, the meta-learned predictor
against the same network trained from scratch and the FLOPs baseline on unseen devices,
constrained search against brute force, saved predictors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from jnas import bench, transfer
from jnas.predictors import average_ranks, spearman


def test_spearman_and_average_ranks_match_scipy_with_ties():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 12, 300).astype(np.float32)  # whole milliseconds: many ties
    b = (a + rng.normal(0, 3, 300)).astype(np.float32)
    np.testing.assert_allclose(average_ranks(jnp.asarray(a)), stats.rankdata(a))
    want = stats.spearmanr(a, b)[0]
    assert float(jax.jit(spearman)(jnp.asarray(a), jnp.asarray(b))) == pytest.approx(want, abs=1e-5)
    assert np.isnan(float(spearman(jnp.ones(5), jnp.arange(5.0))))
    with pytest.raises(ValueError, match="two vectors"):
        spearman(jnp.ones(3), jnp.ones(4))


@pytest.fixture(scope="module")
def latency(nasbench_dir):
    return bench.load_latency(nasbench_dir)


@pytest.fixture(scope="module")
def predictor(latency):
    pred, history = transfer.meta_train_latency(
        jax.random.key(0), latency, steps=300, eval_every=150, queries=128, hidden=(32, 32)
    )
    return pred, history


def test_meta_learned_predictor_ranks_unseen_devices_from_ten_measurements(
    latency, predictor, nasbench_dir
):
    pred, history = predictor
    assert [h["step"] for h in history] == [150, 300]
    test = transfer.HELP_SPLIT["meta_test"]
    rho = transfer.evaluate_latency(pred, latency, test)["spearman"]
    # the same network trained from scratch on the same 10 measurements
    x = transfer.architecture_features(latency)
    y = transfer.device_latencies(latency, test)
    refs = pred.references
    scratch = jax.vmap(
        lambda yd: transfer.fit_latency_from_scratch(
            jax.random.key(1), x, refs, yd[refs], hidden=(32, 32)
        )
    )(y)
    rho_scratch = [float(stats.spearmanr(s, t)[0]) for s, t in zip(scratch, y, strict=True)]
    flops = bench.load_nb201(nasbench_dir).column("cifar10", "flops_M", None)
    rho_flops = [float(stats.spearmanr(flops, t)[0]) for t in y]
    # independent check of the reported rho (SciPy on the predictions)
    predicted = transfer.adapt_latency(pred, x, y[0][refs])
    assert rho[0] == pytest.approx(stats.spearmanr(predicted, y[0])[0], abs=1e-4)
    assert np.mean(rho) > 0.9  # 300 meta-steps; 3,000 reach HELP's 0.932 (experiments/)
    assert np.mean(rho) > np.mean(rho_scratch) + 0.2
    assert np.mean(rho) > np.mean(rho_flops)


def test_adapted_latency_is_in_milliseconds_of_the_device(latency, predictor):
    pred, _ = predictor
    x = transfer.architecture_features(latency)
    y = np.asarray(latency.column("gold_6226", "latency_ms", None))
    ms = np.asarray(transfer.adapt_latency(pred, x, jnp.asarray(y[np.asarray(pred.references)])))
    assert abs(np.median(ms) / np.median(y) - 1) < 0.25
    with pytest.raises(ValueError, match="references"):
        transfer.adapt_latency(pred, x, jnp.ones(3))
    with pytest.raises(ValueError, match="multiple of eval_every"):  # not 200 steps run as 300
        transfer.meta_train_latency(jax.random.key(0), latency, steps=200, eval_every=150)


def test_constrained_best_is_the_brute_force_choice():
    rng = np.random.default_rng(1)
    ms, acc = rng.uniform(1, 10, 500), rng.uniform(50, 70, 500)
    acc[3] = np.nan
    for bound in (2.0, 5.0, 11.0):
        ok = np.where((ms <= bound) & ~np.isnan(acc))[0]
        want = ok[np.argmax(acc[ok])]
        got = transfer.constrained_best(jnp.asarray(ms), jnp.asarray(acc), bound)
        assert int(got) == want
    assert int(transfer.constrained_best(jnp.asarray(ms), jnp.asarray(acc), 0.5)) == -1


def test_saved_predictor_predicts_the_same(latency, predictor, tmp_path):
    pred, _ = predictor
    transfer.save_latency_predictor(pred, tmp_path / "help.npz")
    x = transfer.architecture_features(latency)
    back = transfer.load_latency_predictor(tmp_path / "help.npz", x.shape[1])
    m = jnp.linspace(1.0, 3.0, pred.references.shape[0])
    np.testing.assert_array_equal(
        transfer.adapt_latency(back, x, m), transfer.adapt_latency(pred, x, m)
    )
    with pytest.raises(ValueError, match="expects"):
        transfer.load_latency_predictor(tmp_path / "help.npz", 7)


def test_predictions_are_in_the_units_of_the_measurements(latency, predictor):
    """Both predictors standardise the measured references and scale back, so measuring in
    other units (a x ms + b) scales the prediction the same way; the from-scratch MLP
    interpolates its ten references (the measured ms themselves)."""
    pred, _ = predictor
    x = transfer.architecture_features(latency)
    y = jnp.asarray(latency.column("gold_6226", "latency_ms", None))
    refs = pred.references
    m = y[refs]
    meta = transfer.adapt_latency(pred, x, m)
    np.testing.assert_allclose(
        transfer.adapt_latency(pred, x, 3.0 * m + 2.0), 3 * meta + 2, rtol=1e-4
    )

    def scratch(measured):
        return transfer.fit_latency_from_scratch(
            jax.random.key(1), x, refs, measured, hidden=(32, 32)
        )

    base = scratch(m)
    np.testing.assert_allclose(base[refs], m, rtol=1e-3)
    np.testing.assert_allclose(scratch(3.0 * m + 2.0), 3 * base + 2, rtol=1e-3)


def test_constrained_best_keeps_a_latency_equal_to_the_bound():
    rng = np.random.default_rng(2)
    ms = rng.uniform(1, 10, 50).astype(np.float32)
    acc = rng.uniform(50, 70, 50).astype(np.float32)
    best = int(np.argmax(acc))
    got = transfer.constrained_best(jnp.asarray(ms), jnp.asarray(acc), jnp.float32(ms[best]))
    assert int(got) == best


def test_meta_training_keeps_the_first_best_validated_parameters(latency, monkeypatch):
    """HELP's model selection: of the parameters validated every `eval_every` steps, the
    first of the highest mean Spearman is returned (scores scripted here), not the last;
    without validation devices, or while every score is NaN, the last."""
    from jnas.transfer import _latency

    scores = iter([0.5, 0.9, 0.9, 0.1])

    def scripted(predictor, table, devices):
        return {"devices": list(devices), "spearman": [next(scores)]}

    monkeypatch.setattr(_latency, "evaluate_latency", scripted)

    def run(steps, valid=("titanx_1",)):
        return transfer.meta_train_latency(
            jax.random.key(4), latency, steps=steps, eval_every=1, queries=16, hidden=(8,),
            inner_steps=2, valid=valid,
        )  # fmt: skip

    best, history = run(4)
    assert [h["valid_spearman"] for h in history] == pytest.approx([0.5, 0.9, 0.9, 0.1])
    scores = iter([0.0, 1.0])  # a 2-step run: its last parameters are the same run's step 2
    at_two, _ = run(2)
    scores = iter([0.1, 0.2, 0.3, 0.4])  # rising scores: step 4's parameters
    at_four, _ = run(4)
    last, unvalidated = run(4, valid=())
    nan = float("nan")
    scores = iter([nan, nan, nan, nan])  # Spearman undefined throughout: the latest, not init
    undefined, _ = run(4)
    scores = iter([nan, 0.2, nan, 0.1])  # a finite score is kept over later NaNs
    mixed, _ = run(4)
    jax.tree.map(np.testing.assert_array_equal, undefined.params, at_four.params)
    jax.tree.map(np.testing.assert_array_equal, mixed.params, at_two.params)
    assert all(np.isnan(h["valid_spearman"]) for h in unvalidated)
    jax.tree.map(np.testing.assert_array_equal, best.params, at_two.params)
    jax.tree.map(np.testing.assert_array_equal, last.params, at_four.params)
    moved = jax.tree.map(lambda a, b: float(np.abs(a - b).max()), best.params, last.params)
    assert max(jax.tree.leaves(moved)) > 0  # steps 3 and 4 changed the parameters


def test_defaults_are_one_problem_written_out(latency, monkeypatch):
    """The defaults, written out: 10 reference architectures (HELP's 10 samples), an MLP of
    two 64-wide hidden layers adapted by 10 SGD steps at 0.1 and meta-learned by Adam at
    1e-3, 256 query rows per device and step; meta-training runs 3,000 steps validated every
    500 (the run's stored settings and chunking, captured before it starts), and
    `latency_meta_training` alone sets the same problem (one outer step equals the
    written-out call's). The from-scratch baseline trains 500 Adam steps at 1e-3."""
    from jnas.transfer import _latency

    captured = {}

    def capture(name, step, init, key, *, steps, chunk, settings, **kw):
        captured.update(settings, steps=steps, chunk=chunk)
        raise StopIteration

    monkeypatch.setattr(_latency, "run_steps", capture)
    with pytest.raises(StopIteration):
        transfer.meta_train_latency(jax.random.key(0), latency)
    want = {"references": 10, "hidden": [64, 64], "inner_lr": 0.1, "inner_steps": 10}
    assert {k: captured[k] for k in want} == want
    assert (captured["queries"], captured["steps"], captured["chunk"]) == (256, 3000, 500)
    assert captured["devices"] == list(transfer.HELP_SPLIT["meta_train"])
    assert captured["valid"] == list(transfer.HELP_SPLIT["meta_valid"])

    devices = ("pixel3", "gold_6240")
    default = transfer.latency_meta_training(jax.random.key(1), latency, devices)
    written = transfer.latency_meta_training(
        jax.random.key(1), latency, devices, references=10, hidden=(64, 64), inner_lr=0.1,
        inner_steps=10, queries=256,
    )  # fmt: skip
    np.testing.assert_array_equal(default.references, written.references)
    (s_default, l_default), (s_written, l_written) = (
        jax.jit(p.step)(p.learner.init(jax.random.key(2)), jax.random.key(3))
        for p in (default, written)
    )
    assert float(l_default) == float(l_written)
    jax.tree.map(np.testing.assert_array_equal, s_default.params, s_written.params)
    # the outer optimiser is Adam at 1e-3: its first step moves a weight 1e-3 |g| / (|g| + eps)
    init = default.learner.init(jax.random.key(2)).params
    moved = jax.tree.leaves(
        jax.tree.map(lambda a, b: np.abs(np.asarray(a - b)), s_default.params, init)
    )
    assert max(m.max() for m in moved) == pytest.approx(1e-3, rel=1e-3)
    assert all(m.max() <= 1e-3 * (1 + 1e-4) for m in moved)

    x = transfer.architecture_features(latency)
    refs = written.references
    measured = transfer.device_latencies(latency, devices)[0, refs]
    np.testing.assert_array_equal(
        transfer.fit_latency_from_scratch(jax.random.key(4), x, refs, measured),
        transfer.fit_latency_from_scratch(
            jax.random.key(4), x, refs, measured, hidden=(64, 64), steps=500, lr=1e-3
        ),
    )
