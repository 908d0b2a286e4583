"""One-shot methods: exact hypergradients, jit/vmap/device equivalences, derivation, runs."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jnas import _execution, oneshot, parallel
from jnas._execution import CLASSIC_EMITTERS, cpu_compiler_options
from jnas.data import Split
from jnas.spaces import NB201

# A 3-node, 4-op NB201 space keeps compiles short on CPU; the full space shares the code.
SPACE = NB201(ops=("none", "skip_connect", "nor_conv_3x3", "avg_pool_3x3"), num_nodes=3)
TINY = {"channels": 4, "cells_per_stage": 1, "num_classes": 3, "epochs": 2, "steps_per_epoch": 4}


def batch(seed, n=8, size=8):
    k1, k2 = jax.random.split(jax.random.key(seed))
    return jax.random.normal(k1, (n, size, size, 3)), jax.random.randint(k2, (n,), 0, 3)


def allclose(a, b, **kw):
    return all(jax.tree.leaves(jax.tree.map(lambda x, y: bool(jnp.allclose(x, y, **kw)), a, b)))


def f64(tree):
    """Every float32 leaf of `tree` as float64 (call with x64 enabled); others unchanged."""
    return jax.tree.map(lambda a: a.astype(jnp.float64) if a.dtype == jnp.float32 else a, tree)


@pytest.fixture
def x64_problem():
    """A tiny supernet's loss in float64, its weights, α and two batches (float64 is on
    only while the test using it runs)."""
    with jax.enable_x64(True):
        net = oneshot.make_supernet(SPACE, {"channels": 2, "cells_per_stage": 1, "num_classes": 3})
        params = f64(net.init_params(jax.random.key(0)))
        alpha = jax.random.normal(jax.random.key(1), (3, 4), jnp.float64)
        train = f64(batch(2))
        val = f64(batch(3))

        def loss(p, a, b):
            logits = net.apply(p, b[0], jax.nn.softmax(a, -1))
            return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), b[1][:, None], 1))

        yield loss, params, alpha, train, val


def test_exact_hypergradient_matches_finite_differences_in_float64(x64_problem):
    loss, params, alpha, train, val = x64_problem
    xi = 0.1
    with jax.enable_x64(True):

        @jax.jit  # seven evaluations below: one compile, not seven op-by-op passes
        def outer(a):
            g = jax.grad(loss)(params, a, train)
            return loss(jax.tree.map(lambda w, d: w - xi * d, params, g), a, val)

        value, grad = jax.jit(functools.partial(oneshot.hypergradient, loss, method="exact"))(
            params, alpha, train, val, xi
        )
        assert grad.dtype == jnp.float64
        np.testing.assert_allclose(value, outer(alpha), rtol=1e-12)
        h = 1e-5
        for seed in range(3):  # directional derivatives by central differences
            d = jax.random.normal(jax.random.key(10 + seed), alpha.shape, jnp.float64)
            numeric = (outer(alpha + h * d) - outer(alpha - h * d)) / (2 * h)
            np.testing.assert_allclose(jnp.sum(grad * d), numeric, rtol=1e-6, atol=1e-10)


def test_exact_hypergradient_runs_the_training_pass_once():
    """The inner gradient is linearized once (its value is the virtual step's gradient,
    its linear map the mixed term): compiled, it holds fewer convolutions than the
    textbook form that takes the gradient and then its derivative along grad_w' L_val,
    whose two training passes XLA cannot merge across the scanned layers (the supernet
    scans the cells of a stage), and it gives that form's value."""

    def conv(x, w):
        return jax.lax.conv_general_dilated(
            x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
        )

    def loss(p, a, b):
        layers = jnp.stack([p["w2"], 0.5 * p["w2"]])
        y, _ = jax.lax.scan(
            lambda h, w: (conv(jax.nn.relu(h), w), None), conv(b[0], p["w1"]), layers
        )
        return jnp.mean((y * jax.nn.softmax(a)[0] - b[1]) ** 2)

    def textbook(params, alpha, train, val, xi):
        g = jax.grad(loss)(params, alpha, train)
        unrolled = jax.tree.map(lambda w, d: w - xi * d, params, g)
        val_loss, (dw, da) = jax.value_and_grad(loss, (0, 1))(unrolled, alpha, val)
        _, mixed = jax.jvp(lambda p: jax.grad(loss, (0, 1))(p, alpha, train)[1], (params,), (dw,))
        return val_loss, da - xi * mixed

    k = jax.random.split(jax.random.key(0), 6)
    params = {
        "w1": jax.random.normal(k[0], (3, 3, 3, 4)),
        "w2": jax.random.normal(k[1], (3, 3, 4, 4)),
    }
    alpha = jax.random.normal(k[2], (4,))
    train = (jax.random.normal(k[3], (2, 6, 6, 3)), jax.random.normal(k[4], (2, 6, 6, 4)))
    val = (jax.random.normal(k[5], (2, 6, 6, 3)), jax.random.normal(k[4], (2, 6, 6, 4)))
    args = (params, alpha, train, val, 0.1)
    ours = functools.partial(oneshot.hypergradient, loss, method="exact")

    def convolutions(f):
        return jax.jit(f).lower(*args).compile().as_text().count(" convolution(")

    assert convolutions(ours) < convolutions(textbook)
    with jax.enable_x64(True):
        args = (*f64(args[:4]), 0.1)
        for a, b in zip(jax.jit(ours)(*args), jax.jit(textbook)(*args), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-12)


@pytest.mark.slow  # DARTS' own approximation; the exact hypergradient is checked fast above
def test_darts_finite_difference_approximation_converges_to_the_exact_hypergradient(x64_problem):
    loss, params, alpha, train, val = x64_problem
    with jax.enable_x64(True):
        # compiled (op by op the supernet took minutes); one program for all three steps
        hypergradient = jax.jit(oneshot.hypergradient, static_argnums=(0, 6))
        _, exact = hypergradient(loss, params, alpha, train, val, 0.1, "exact")
        _, first = jax.value_and_grad(loss, 1)(params, alpha, val)
        errors = {}
        for eps in (1e-2, 1e-4, 1e-6):
            _, approx = hypergradient(
                loss, params, alpha, train, val, 0.1, "finite_difference", fd_epsilon=eps
            )
            errors[eps] = float(jnp.linalg.norm(exact - approx) / jnp.linalg.norm(exact))
    # eq. 8 is a central difference: it tends to the exact value as the step shrinks ...
    assert errors[1e-4] < 1e-5
    assert errors[1e-6] < 1e-7
    # ... and the paper's step (0.01) is an approximation whose error the exact form avoids
    assert errors[1e-2] > errors[1e-4]
    # the second-order term matters, so the test tells first from second order
    assert float(jnp.linalg.norm(exact - first)) > 1e-3 * float(jnp.linalg.norm(exact))
    with pytest.raises(ValueError, match="method"):
        oneshot.hypergradient(loss, params, alpha, train, val, 0.1, "magic")


@pytest.mark.parametrize(
    "name",
    [pytest.param("darts-v1", marks=pytest.mark.slow), "gdas"],  # one composed step suffices
)
def test_step_jit_equals_eager(name, key):
    method = oneshot.REGISTRY[name].make(SPACE, **TINY)
    state = method.init(key)
    eager, m_eager = method.step(jax.random.key(5), state, batch(1), batch(2))
    jitted, m_jit = jax.jit(method.step)(jax.random.key(5), state, batch(1), batch(2))
    assert allclose(eager, jitted, rtol=1e-4, atol=1e-6)
    assert allclose(m_eager, m_jit, rtol=1e-4, atol=1e-6)
    assert int(jitted.step) == 1
    assert not jnp.allclose(jitted.alpha, state.alpha)


@pytest.mark.parametrize(
    "name",
    [pytest.param("darts-v2", marks=pytest.mark.slow), "gdas"],  # 50 s of compile
)
def test_vmapped_seeds_equal_separate_runs(name):
    # In float64: some seeds' α gradients are ~1e-7 (GDAS), where Adam's first step
    # lr * g / (|g| + eps) turns float32 rounding that differs between the batched and
    # the single program into a 1e-5-size change of α.
    with jax.enable_x64(True):
        method = oneshot.REGISTRY[name].make(SPACE, **TINY)
        keys = jax.random.split(jax.random.key(7), 2)
        train = jax.tree.map(lambda *b: jnp.stack(b), *[batch(s) for s in (1, 2)])
        val = jax.tree.map(lambda *b: jnp.stack(b), *[batch(s) for s in (4, 5)])
        step_keys = jax.random.split(jax.random.key(8), 2)

        states, _ = jax.jit(jax.vmap(method.step))(
            step_keys, f64(jax.vmap(method.init)(keys)), train, val
        )
        assert states.alpha.dtype == jnp.float64
        assert train[0].dtype == jnp.float64
        for i in range(2):
            alone, _ = jax.jit(method.step)(
                step_keys[i],
                f64(method.init(keys[i])),
                (train[0][i], train[1][i]),
                (val[0][i], val[1][i]),
            )
            one = jax.tree.map(lambda a, i=i: a[i], states)
            assert allclose(one, alone, rtol=1e-9, atol=1e-12)


@pytest.mark.multidevice
def test_eight_devices_data_parallel_equals_one_device(key):
    assert jax.device_count() == 8, "conftest forces 8 CPU devices"
    method = oneshot.darts(SPACE, **TINY)
    train, val = batch(1, n=16), batch(2, n=16)
    state = method.init(key)
    step = jax.jit(method.step)
    one = state
    for _ in range(3):
        one, _ = step(None, one, train, val)
    mesh = parallel.mesh()
    many = parallel.replicate(state, mesh)
    s_train, s_val = parallel.shard_leading(train, mesh), parallel.shard_leading(val, mesh)
    assert len(s_train[0].sharding.device_set) == 8
    for _ in range(3):
        many, _ = step(None, many, s_train, s_val)
    assert many.alpha.sharding.is_fully_replicated  # every device holds the same α
    np.testing.assert_allclose(many.alpha, one.alpha, rtol=1e-4, atol=1e-6)
    assert allclose(many.params, one.params, rtol=1e-3, atol=1e-5)
    assert SPACE.to_string(method.derive(many)) == SPACE.to_string(method.derive(one))
    with pytest.raises(ValueError, match="does not split"):
        parallel.shard_leading(batch(1, n=12), mesh)


def test_gdas_samples_hard_one_hots_with_softmax_gradients(key):
    alpha = jax.random.normal(key, (6, 5))
    hard, index = oneshot.hard_gumbel(jax.random.key(1), alpha, 1.0)
    np.testing.assert_array_equal(hard, jax.nn.one_hot(index, 5))
    # straight through: the gradient is the relaxed softmax's
    g = jax.random.normal(jax.random.key(2), (6, 5))
    grad_hard = jax.grad(lambda a: jnp.sum(oneshot.hard_gumbel(jax.random.key(1), a, 1.0)[0] * g))(
        alpha
    )
    gumbel = jax.random.gumbel(jax.random.key(1), alpha.shape)
    grad_soft = jax.grad(
        lambda a: jnp.sum(jax.nn.softmax(jax.nn.log_softmax(a, -1) + gumbel, -1) * g)
    )(alpha)
    np.testing.assert_allclose(grad_hard, grad_soft, rtol=1e-5, atol=1e-7)
    # GDAS' search script: tau_max - (tau_max - tau_min) * epoch / (total_epoch - 1), held
    # at tau_min past the last epoch
    steps = (0, 9, 10, 1255, 2499, 5000)
    taus = [float(oneshot.gdas_tau(jnp.asarray(s), 10, 250, 10.0, 0.1)) for s in steps]
    expected = [10.0 - 9.9 * min(s // 10, 249) / 249 for s in steps]
    np.testing.assert_allclose(taus, expected, rtol=1e-5)


def test_hard_path_computes_the_same_as_the_weighted_sum(key):
    """One-hot weights through the switch (one op) == through the full weighted sum."""
    net = oneshot.make_supernet(SPACE, {"channels": 4, "cells_per_stage": 1})
    params = net.init_params(key)
    x = batch(1)[0]
    index = jnp.asarray([3, 1, 2])
    w = jax.nn.one_hot(index, 4)
    np.testing.assert_allclose(
        net.apply(params, x, w, index), net.apply(params, x, w), rtol=1e-5, atol=1e-5
    )


def test_factories_reject_bad_hyper_parameters():
    with pytest.raises(ValueError, match="order"):
        oneshot.darts(SPACE, order=3)
    with pytest.raises(ValueError, match="epochs"):
        oneshot.gdas(SPACE, epochs=0)
    with pytest.raises(ValueError, match="tau_min"):
        oneshot.gdas(SPACE, tau_min=0.0)
    with pytest.raises(ValueError, match="supernet"):
        oneshot.darts(SPACE, chanels=4)


def _digits_like(seed, n):
    x, y = batch(seed, n=n)
    return Split(x, y)


def test_search_resumes_to_the_same_records_and_state(tmp_path, key):
    method = oneshot.darts(SPACE, **TINY)
    train, valid = _digits_like(1, 32), _digits_like(2, 32)
    run = functools.partial(oneshot.search, method, key, train, valid, batch_size=8, space=SPACE)
    full_state, full = run(epochs=3, out=tmp_path / "full")
    run(epochs=2, out=tmp_path / "cut")  # "killed" after two epochs
    state, records = run(epochs=3, out=tmp_path / "cut", resume=True)
    assert [r["epoch"] for r in records] == [0, 1, 2]
    assert records == full
    assert allclose(state, full_state, rtol=0, atol=0)
    lines = (tmp_path / "cut" / "records.jsonl").read_text().splitlines()
    assert len(lines) == 3
    # both against the epochs run by hand: epoch e on fold_in(k_epochs, e), its cell derived
    # with fold_in(k_derive, e) (two runs of `search` would share a slip in either)
    from jnas.oneshot._loop import epoch_fn

    k_init, k_epochs, k_derive = jax.random.split(key, 3)
    by_hand, epoch = method.init(k_init), epoch_fn(method, 8)
    for e in range(3):
        by_hand, _ = epoch(by_hand, jax.random.fold_in(k_epochs, e), train, valid)
        cell = method.derive(by_hand, jax.random.fold_in(k_derive, e), (valid.x[:8], valid.y[:8]))
        assert full[e]["arch"] == SPACE.to_string(cell)
    assert allclose(full_state, by_hand, rtol=1e-6, atol=1e-7)


@pytest.mark.multidevice
@pytest.mark.parametrize("mode", ["loop", "scan"])
def test_data_parallel_search_steps_on_split_batches_and_equals_one_device(tmp_path, key, mode):
    """`search(mesh=...)`: every step's batches are split over the mesh (the step sees
    each device holding 2 of the 8 rows), and a resumed run on the mesh ends where a
    single-device run ends (losses, α, the derived cells)."""
    assert jax.device_count() == 8, "conftest forces 8 CPU devices"
    method = oneshot.darts(SPACE, **TINY)
    seen = []

    def step(k, state, train, val):
        for rows in (train[0], train[1], val[0], val[1]):
            jax.debug.inspect_array_sharding(
                rows, callback=lambda s, n=rows.shape: seen.append(s.devices_indices_map(n))
            )
        return method.step(k, state, train, val)

    spy = method._replace(step=step)
    train, valid = _digits_like(1, 32), _digits_like(2, 32)
    mesh = parallel.mesh(jax.devices()[:4])
    run = functools.partial(
        oneshot.search, spy, key, train, valid, batch_size=8, space=SPACE, steps_mode=mode
    )
    one_state, one = run(epochs=3)
    assert seen
    assert all(len(m) == 1 for m in seen)  # one device holds all 8 rows
    seen.clear()
    run(epochs=2, out=tmp_path / "run", mesh=mesh)
    state, records = run(epochs=3, out=tmp_path / "run", mesh=mesh, resume=True)
    assert seen
    for indices in seen:  # rows 0-1, 2-3, 4-5, 6-7 on the four devices
        assert sorted(ix[0].indices(8)[:2] for ix in indices.values()) == [
            (0, 2),
            (2, 4),
            (4, 6),
            (6, 8),
        ]
    assert state.alpha.sharding.device_set == set(mesh.devices.flat)
    assert [r["arch"] for r in records] == [r["arch"] for r in one]
    for r, o in zip(records, one, strict=True):
        np.testing.assert_allclose(r["w_loss"], o["w_loss"], rtol=1e-5)
        np.testing.assert_allclose(r["alpha"], o["alpha"], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(state.alpha, one_state.alpha, rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="batch_size"):
        oneshot.epoch_fn(method, 6, mesh=mesh)


def test_scan_and_loop_epochs_agree(key):
    method = oneshot.darts(SPACE, **TINY)
    train, valid = _digits_like(1, 32), _digits_like(2, 32)
    state = method.init(key)
    a, ma = oneshot.epoch_fn(method, 8, steps_mode="scan")(state, key, train, valid)
    b, mb = oneshot.epoch_fn(method, 8, steps_mode="loop")(state, key, train, valid)
    assert allclose(a, b, rtol=1e-4, atol=1e-5)
    assert allclose(ma, mb, rtol=1e-4, atol=1e-5)


def test_cpu_compiler_options_reach_every_compile_of_the_step(key, monkeypatch):
    """DARTS (both orders), SNAS and DrNAS ask XLA:CPU for its classic emitters (why:
    `CLASSIC_EMITTERS`); `jit_step`
    and both epoch layouts pass a method's options to XLA: an option XLA does not know
    fails each of them (here let through as if known), so none is dropped on the way.
    Other backends get none."""
    monkeypatch.setattr(_execution, "_known_option", lambda name, value: True)
    assert oneshot.darts(SPACE, **TINY).cpu_compiler_options == CLASSIC_EMITTERS
    assert oneshot.darts(SPACE, order=2, **TINY).cpu_compiler_options == CLASSIC_EMITTERS
    assert oneshot.snas(SPACE, **TINY).cpu_compiler_options == CLASSIC_EMITTERS
    assert oneshot.drnas(SPACE, **TINY).cpu_compiler_options == CLASSIC_EMITTERS
    assert oneshot.gdas(SPACE, **TINY).cpu_compiler_options == ()
    method = oneshot.darts(SPACE, **TINY, cpu_compiler_options=(("xla_not_an_option", True),))
    state = method.init(key)
    train, valid = _digits_like(1, 16), _digits_like(2, 16)
    with pytest.raises(jax.errors.JaxRuntimeError, match="xla_not_an_option"):
        oneshot.jit_step(method)(key, state, batch(1), batch(2))
    for mode in ("scan", "loop"):
        with pytest.raises(jax.errors.JaxRuntimeError, match="xla_not_an_option"):
            oneshot.epoch_fn(method, 8, steps_mode=mode)(state, key, train, valid)
    with pytest.raises(ValueError, match="cpu_compiler_options"):  # a dict, not pairs
        oneshot.darts(SPACE, **TINY, cpu_compiler_options={"xla_cpu_use_fusion_emitters": 0})
    assert cpu_compiler_options(CLASSIC_EMITTERS) == {"xla_cpu_use_fusion_emitters": False}
    monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
    assert cpu_compiler_options(CLASSIC_EMITTERS) is None


def test_cpu_compiler_options_leave_out_what_this_xla_does_not_know():
    """XLA refuses a whole compile over one option it does not know; jax 0.11's XLA:CPU
    has no classic emitters (Python 3.12 installs it), so DARTS-V1 must still compile
    there: unknown options are left out, known ones kept."""
    assert cpu_compiler_options((("xla_not_an_option", True),)) is None
    level = (("xla_backend_optimization_level", 1), ("xla_not_an_option", True))
    assert cpu_compiler_options(level) == {"xla_backend_optimization_level": 1}
    classic = jax.__version_info__ < (0, 11)  # XLA:CPU's classic emitters left in jax 0.11
    expected = {"xla_cpu_use_fusion_emitters": False} if classic else None
    assert cpu_compiler_options(CLASSIC_EMITTERS) == expected


def test_nan_metrics_stop_with_the_step_named():
    with pytest.raises(FloatingPointError, match="epoch 4, step 2"):
        oneshot.check_finite({"w_loss": np.array([1.0, 0.5, np.nan])}, 4)


@pytest.mark.multidevice
@pytest.mark.slow  # 8 devices == 1 stays fast for the data-parallel step below
def test_seeds_sharded_over_devices_equal_one_device():
    """Population parallel: 8 vmapped supernets, one per device, train as on one device.

    (α by SGD: Adam's first step is lr * sign(grad), ill-conditioned where a gradient is
    ~0 and the two programs round differently.)"""
    import optax

    method = oneshot.gdas(SPACE, **TINY, alpha_optimizer=optax.sgd(1.0))
    keys = jax.random.split(jax.random.key(3), 8)
    train = jax.tree.map(lambda *b: jnp.stack(b), *[batch(s) for s in range(8)])
    val = jax.tree.map(lambda *b: jnp.stack(b), *[batch(s) for s in range(8, 16)])
    step_keys = jax.random.split(jax.random.key(4), 8)
    step = jax.jit(jax.vmap(method.step))
    states = jax.jit(jax.vmap(method.init))(keys)
    one, _ = step(step_keys, states, train, val)
    mesh = parallel.mesh()
    many, _ = parallel.over_seeds(method.step, mesh)(
        *parallel.shard_leading((step_keys, states, train, val), mesh)
    )
    assert len(many.alpha.sharding.device_set) == 8
    assert not many.alpha.sharding.is_fully_replicated  # each device holds its own seed
    # one seed's matrix products per device round unlike eight batched on one device:
    # up to 1.6e-6 measured, where the step moves α by more than 1e-4
    np.testing.assert_allclose(many.alpha, one.alpha, rtol=1e-4, atol=1e-5)
    assert not np.allclose(many.alpha, states.alpha, atol=1e-4)  # α did move
    assert allclose(many.params, one.params, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize(
    "name",
    ["darts-v1", pytest.param("gdas", marks=pytest.mark.slow)],  # same cast path
)
def test_bfloat16_compute_keeps_float32_master_weights(name, key):
    fp32 = oneshot.REGISTRY[name].make(SPACE, **TINY)
    bf16 = oneshot.REGISTRY[name].make(SPACE, **TINY, compute_dtype=jnp.bfloat16)
    state = fp32.init(key)
    a, m_a = jax.jit(fp32.step)(jax.random.key(5), state, batch(1), batch(2))
    b, m_b = jax.jit(bf16.step)(jax.random.key(5), state, batch(1), batch(2))
    assert {x.dtype for x in jax.tree.leaves(b.params)} == {jnp.dtype(jnp.float32)}
    assert b.alpha.dtype == jnp.float32
    np.testing.assert_allclose(m_b["w_loss"], m_a["w_loss"], rtol=2e-2)
    # Adam's first step moves each α by ~lr * sign(grad): bfloat16 rounding may flip the
    # sign of a near-zero gradient (a 2 * lr change) but leaves most entries as in float32
    diff = np.abs(np.asarray(b.alpha) - np.asarray(a.alpha))
    assert diff.max() <= 2 * 3e-4 + 1e-5
    assert np.mean(diff < 1e-5) >= 0.75
    assert diff.max() > 0
    logits = bf16.apply(b.params, batch(3)[0], jax.nn.softmax(b.alpha, -1))
    assert logits.dtype == jnp.float32
    with pytest.raises(ValueError, match="compute_dtype"):
        oneshot.darts(SPACE, **TINY, compute_dtype=jnp.int8)
