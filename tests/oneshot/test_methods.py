"""Every one-shot method: the contract (a valid scan carry, a valid derived cell), and each
method's defining piece against a reference."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jnas import nn, oneshot
from jnas.oneshot import dirichlet_kl_to_uniform
from jnas.search import lstm_controller
from jnas.spaces import NB201

SPACE = NB201(ops=("none", "skip_connect", "nor_conv_3x3", "avg_pool_3x3"), num_nodes=3)
TINY = {"channels": 4, "cells_per_stage": 1, "num_classes": 3, "epochs": 2, "steps_per_epoch": 4}
SAMPLING = {"rsws", "spos", "oneshot-dropout", "setn", "enas"}


def batch(seed, n=8, size=8):
    k1, k2 = jax.random.split(jax.random.key(seed))
    return jax.random.normal(k1, (n, size, size, 3)), jax.random.randint(k2, (n,), 0, 3)


def structure(tree):
    return jax.tree.structure(tree), [(x.shape, x.dtype) for x in jax.tree.leaves(tree)]


@pytest.mark.parametrize("name", sorted(set(oneshot.REGISTRY) - {"darts-v2"}))
def test_method_contract(name):
    extra = (
        {"num_evaluations": 16, "population_size": 8}
        if name == "spos"
        else {"num_candidates": 8}
        if name in SAMPLING
        else {}
    )
    method = oneshot.REGISTRY[name].make(SPACE, **TINY, **extra)
    state = jax.jit(method.init)(jax.random.key(0))
    step = jax.jit(method.step)
    new, metrics = step(jax.random.key(3), state, batch(1), batch(2))
    new, metrics = step(jax.random.key(5), new, batch(3), batch(4))
    assert structure(new) == structure(state)  # a valid lax.scan carry
    assert int(new.step) == 2
    assert all(np.isfinite(float(v)) for v in metrics.values())
    assert not all(
        jax.tree.leaves(
            jax.tree.map(lambda a, b: bool(jnp.array_equal(a, b)), new.params, state.params)
        )
    )
    derive = jax.jit(method.derive)
    a = derive(new, jax.random.key(6), batch(7))
    b = derive(new, jax.random.key(6), batch(7))
    assert SPACE.to_string(a) == SPACE.to_string(b)
    assert bool(SPACE.is_valid(a))
    if name in SAMPLING:
        with pytest.raises(ValueError, match="batch"):
            method.derive(new)


def test_snas_resource_penalty_moves_weight_off_costly_ops():
    import optax

    method = oneshot.snas(SPACE, **TINY, resource_weight=100.0, alpha_optimizer=optax.sgd(0.1))
    state = method.init(jax.random.key(0))
    new, metrics = jax.jit(method.step)(jax.random.key(3), state, batch(1), batch(2))
    conv = SPACE.ops.index("nor_conv_3x3")
    before = jax.nn.softmax(state.alpha, -1)[:, conv]
    after = jax.nn.softmax(new.alpha, -1)[:, conv]
    assert bool(jnp.all(after < before - 1e-3))
    costs = oneshot.op_costs(SPACE)
    assert float(metrics["resource"]) == pytest.approx(
        float(jnp.sum(jax.nn.softmax(state.alpha, -1) * costs)), rel=1e-5
    )
    weights = oneshot.relaxed_gumbel(jax.random.key(1), state.alpha, 0.5)
    np.testing.assert_allclose(weights.sum(-1), 1.0, rtol=1e-6)
    with pytest.raises(ValueError, match="no cost"):
        oneshot.op_costs(SPACE, {"none": 0.0})


def test_dirichlet_kl_matches_monte_carlo():
    from scipy.stats import dirichlet

    beta = jnp.asarray([[0.7, 2.0, 3.5, 1.2]])
    exact = float(dirichlet_kl_to_uniform(beta))
    x = np.random.default_rng(0).dirichlet(np.asarray(beta[0], np.float64), 200_000)  # NumPy's
    x = np.clip(x, 1e-12, None)
    x /= x.sum(-1, keepdims=True)
    mc = np.mean(dirichlet.logpdf(x.T, np.asarray(beta[0])) - dirichlet.logpdf(x.T, np.ones(4)))
    assert exact == pytest.approx(mc, abs=0.02)
    assert float(dirichlet_kl_to_uniform(jnp.ones((3, 4)))) == pytest.approx(0.0, abs=1e-5)


def test_two_path_gates_follow_the_binary_gate_gradient():
    alpha = jax.random.normal(jax.random.key(0), (3, 4))
    key = jax.random.key(1)
    gates = oneshot.two_path_gates(key, alpha)
    chosen = jnp.argmax(gates, -1)
    np.testing.assert_allclose(gates, jax.nn.one_hot(chosen, 4), atol=1e-6)
    g = jax.random.normal(jax.random.key(2), (3, 4))  # dL/dgates
    grad = jax.grad(lambda a: jnp.sum(oneshot.two_path_gates(key, a) * g))(alpha)
    for e in range(3):
        pair = np.flatnonzero(np.abs(np.asarray(grad[e])) > 0)
        assert len(pair) == 2  # exactly the two sampled paths get gradient
        assert int(chosen[e]) in pair
        p = np.asarray(jax.nn.softmax(alpha[e, pair]))
        expect = [
            sum(float(g[e, pair[j]]) * p[j] * ((i == j) - p[i]) for j in range(2)) for i in range(2)
        ]
        np.testing.assert_allclose(np.asarray(grad[e, pair]), expect, rtol=1e-5, atol=1e-7)


def test_two_path_gates_draw_their_pair_and_gate_as_proxylessnas_does():
    """ProxylessNAS' "two" mode (Cai et al. 2019, its `MixedEdge.binarize`): two distinct
    ops drawn by softmax(alpha) without replacement, then one of them by the softmax of
    their two alphas. The joint law of (pair, gate) over 20,000 draws on two edges against
    its NumPy derivation, P({i, j}) = p_i p_j / (1 - p_i) + p_j p_i / (1 - p_j) and
    P(gate i | {i, j}) = p_i / (p_i + p_j) (a chi-square test per edge). The pair is read
    off the gradient: only its two ops get one."""
    from scipy import stats

    alpha = jnp.asarray([[1.0, 0.0, -1.0, 0.5], [-0.5, 1.5, 0.0, 0.2]])
    cotangent = jnp.arange(4.0)[None].repeat(2, 0)  # distinct: both pair ops get gradient

    def draw(k):
        gates, vjp = jax.vjp(lambda a: oneshot.two_path_gates(k, a), alpha)
        return jnp.argmax(gates, -1), vjp(cotangent)[0] != 0

    keys = jax.random.split(jax.random.key(4), 20_000)
    gate, in_pair = (np.asarray(a) for a in jax.vmap(draw)(keys))
    assert (in_pair.sum(-1) == 2).all()
    assert in_pair[np.arange(len(keys))[:, None], np.arange(2)[None], gate].all()
    for e in range(2):
        p = np.exp(np.asarray(alpha[e], np.float64))
        p /= p.sum()
        counts, expected = [], []
        for i, j in itertools.combinations(range(4), 2):
            pair = p[i] * p[j] / (1 - p[i]) + p[j] * p[i] / (1 - p[j])
            drawn = in_pair[:, e, i] & in_pair[:, e, j]
            for op in (i, j):
                counts.append(np.sum(drawn & (gate[:, e] == op)))
                expected.append(len(keys) * pair * p[op] / (p[i] + p[j]))
        assert sum(counts) == len(keys)
        assert stats.chisquare(counts, expected).pvalue > 1e-3, (e, counts, expected)


def test_linear_op_costs_recover_additive_costs():
    space = NB201()
    true = np.asarray(jax.random.uniform(jax.random.key(0), (6, 5)))
    ops = np.asarray(jax.vmap(space.to_decisions)(space.enumerate()))
    values = true[np.arange(6), ops].sum(-1) + 3.0
    fitted = oneshot.linear_op_costs(space, values)
    np.testing.assert_allclose(fitted, true - true.min(-1, keepdims=True), atol=1e-4)
    with pytest.raises(ValueError, match="one entry per cell"):
        oneshot.linear_op_costs(space, values[:10])


def test_lstm_controller_is_a_normalised_policy():
    sizes = (2, 3, 2)
    ctrl = lstm_controller(sizes, hidden=8)
    params = ctrl.init(jax.random.key(0))
    total = sum(
        float(jnp.exp(ctrl.log_prob(params, jnp.asarray(d))[0]))
        for d in itertools.product(*(range(s) for s in sizes))
    )
    assert total == pytest.approx(1.0, rel=1e-5)
    decisions, logp, _ = jax.jit(ctrl.sample)(params, jax.random.key(1))
    assert all(0 <= int(d) < s for d, s in zip(decisions, sizes, strict=True))
    assert float(logp) == pytest.approx(float(ctrl.log_prob(params, decisions)[0]), rel=1e-6)
    draws = jax.vmap(lambda k: ctrl.sample(params, k)[0])(jax.random.split(jax.random.key(2), 4000))
    freq = np.mean(np.asarray(draws[:, 0]) == 0)
    p0 = sum(
        float(jnp.exp(ctrl.log_prob(params, jnp.asarray((0, b, c)))[0]))
        for b in range(3)
        for c in range(2)
    )
    assert freq == pytest.approx(p0, abs=0.03)


@pytest.mark.parametrize("name", ["rsws", "spos"])
def test_uniform_single_path_trains_only_the_sampled_cell(name):
    """RSWS and SPOS train one uniformly sampled cell a step: under plain SGD the
    convolution kernels of edges whose sampled op is not a convolution do not move, those
    on the path do (a mixture of all ops, or a fixed path, fails this)."""
    import optax

    conv = SPACE.ops.index("nor_conv_3x3")
    edges = {
        k: np.asarray(SPACE.supernet_index(SPACE.sample(jax.random.key(k)))) for k in range(300)
    }
    # NB201 (3 nodes): edges 1<-0, 2<-0, 2<-1; the supernet stacks kernels by source node
    none = SPACE.ops.index("none")  # node 1 must carry signal into the convolution
    only_last = next(
        k for k, e in edges.items() if e[2] == conv and (e[:2] != conv).all() and e[0] != none
    )
    no_conv = next(k for k, e in edges.items() if (e != conv).all())
    extra = {"num_evaluations": 16, "population_size": 8} if name == "spos" else {}
    method = oneshot.REGISTRY[name].make(SPACE, **TINY, w_optimizer=optax.sgd(0.1), **extra)
    state = jax.jit(method.init)(jax.random.key(0))
    step = jax.jit(method.step)

    def moved(key):
        new, _ = step(jax.random.key(key), state, batch(1), batch(2))
        kernels = lambda s: s.params["stages"][0]["kernels"]["nor_conv_3x3"]
        return [
            not np.array_equal(a, b)
            for a, b in zip(
                jax.tree.leaves(kernels(state)), jax.tree.leaves(kernels(new)), strict=True
            )
        ]

    assert moved(only_last) == [False, True]  # source node 0's edges off the path
    assert moved(no_conv) == [False, False]


def test_setn_samples_its_templates_from_alpha():
    """SETN derives the best of cells drawn from softmax(α): with α peaked on one cell every
    template is that cell, whatever the weights; a uniform sampler (RSWS's) is not."""
    method = oneshot.REGISTRY["setn"].make(SPACE, **TINY, num_candidates=8)
    state = jax.jit(method.init)(jax.random.key(0))
    derive = jax.jit(method.derive)
    for target in (
        "|avg_pool_3x3~0|+|skip_connect~0|nor_conv_3x3~1|",
        "|none~0|+|nor_conv_3x3~0|skip_connect~1|",
    ):
        index = SPACE.supernet_index(SPACE.from_string(target))
        peaked = state._replace(alpha=20.0 * jax.nn.one_hot(index, len(SPACE.ops)))
        for k in range(3):
            assert SPACE.to_string(derive(peaked, jax.random.key(k), batch(k))) == target
    uniform = {SPACE.to_string(derive(state, jax.random.key(k), batch(9))) for k in range(4)}
    assert len(uniform) > 1  # near-uniform α: the templates, and so the picks, vary


def test_enas_controller_follows_the_reward():
    """ENAS' controller takes a REINFORCE step on (reward - baseline): the sampled cell
    grows likelier when its validation accuracy (in [0, 1]) beats the baseline, less likely
    when it falls short (entropy bonus off, so nothing else moves the controller)."""
    method = oneshot.REGISTRY["enas"].make(
        SPACE, **TINY, num_candidates=8, entropy_weight=0.0, hidden=8, controller_lr=0.05
    )
    state = jax.jit(method.init)(jax.random.key(0))
    step = jax.jit(method.step)
    ctrl = lstm_controller(SPACE.decision_sizes, hidden=8)
    key = jax.random.key(4)
    _, k_c = jax.random.split(key)  # the step's key schedule: (weights path, reward path)
    arch = ctrl.sample(state.controller, k_c)[0]
    before = float(ctrl.log_prob(state.controller, arch)[0])
    for baseline, direction in ((-1.0, 1), (2.0, -1)):
        start = state._replace(
            step=jnp.ones((), jnp.int32),  # past the first baseline
            baseline=jnp.asarray(baseline),
        )
        new, metrics = step(key, start, batch(1), batch(2))
        assert 0.0 <= float(metrics["reward"]) <= 1.0
        after = float(ctrl.log_prob(new.controller, arch)[0])
        assert direction * (after - before) > 1e-3, (baseline, before, after)


def test_oneshot_dropout_drops_ops_step_by_step():
    """One-shot path dropout trains the whole supernet with ops dropped at random: under
    plain SGD a convolution's kernels move in some steps and stay in others (no dropout
    moves them every step; a single fixed path never)."""
    import optax

    method = oneshot.REGISTRY["oneshot-dropout"].make(
        SPACE, **TINY, num_candidates=8, drop_rate=0.5, w_optimizer=optax.sgd(0.1)
    )
    state = jax.jit(method.init)(jax.random.key(0))
    step = jax.jit(method.step)
    kernels = lambda s: jax.tree.leaves(s.params["stages"][0]["kernels"]["nor_conv_3x3"])
    moved = [
        any(
            not np.array_equal(a, b)
            for a, b in zip(
                kernels(state),
                kernels(step(jax.random.key(k), state, batch(1), batch(2))[0]),
                strict=True,
            )
        )
        for k in range(16)
    ]
    assert 2 <= sum(moved) <= 14, moved


def test_path_dropout_keeps_each_op_with_its_rate_and_rescues_empty_edges():
    """One-Shot path dropout (Bender et al. 2018) on K ops: each op kept independently
    with probability 1 - d, and an edge that drops all K keeps one drawn uniformly. Over
    20,000 draws at d = 0.7 (all dropped 24 % of the time) the number of ops kept per
    edge against its law, P(1) = K (1 - d) d^(K-1) + d^K and P(k) = C(K, k) (1 - d)^k
    d^(K-k) for k > 1, and each op's kept share against (1 - d) + d^K / K."""
    from math import comb

    from scipy import stats

    d, n = 0.7, 20_000
    relax = oneshot.path_dropout_relaxation(SPACE, d)
    slots, k = tuple(SPACE.supernet_shape)
    keys = jax.random.split(jax.random.key(6), n)
    kept = np.asarray(jax.vmap(lambda key: relax.sample(key, None, 0)[0])(keys))
    assert set(np.unique(kept)) <= {0.0, 1.0}
    law = [k * (1 - d) * d ** (k - 1) + d**k] + [
        comb(k, m) * (1 - d) ** m * d ** (k - m) for m in range(2, k + 1)
    ]
    for e in range(slots):
        counts = np.bincount(kept[:, e].sum(-1).astype(int), minlength=k + 1)
        assert counts[0] == 0
        assert stats.chisquare(counts[1:], n * np.asarray(law)).pvalue > 1e-3, counts
    share = kept.mean(0)
    np.testing.assert_allclose(share, (1 - d) + d**k / k, atol=4 * np.sqrt(0.25 / n))


@pytest.mark.parametrize("tau", [0.5, 2.0])
def test_gumbel_relaxations_draw_from_their_distributions(tau):
    """SNAS' weights on two ops follow the binary Concrete law (Maddison et al. 2017):
    w_1 = sigmoid((a_1 - a_2 + L) / tau), L logistic, so P(w_1 <= u) = sigmoid(tau *
    logit(u) - (a_1 - a_2)) (a Kolmogorov-Smirnov test against it); GDAS' hard draws pick
    op k with probability softmax(alpha)_k (a chi-square test)."""
    from scipy import stats

    alpha = jnp.asarray([[0.8, -0.4]])
    keys = jax.random.split(jax.random.key(5), 20_000)
    w = np.asarray(jax.vmap(lambda k: oneshot.relaxed_gumbel(k, alpha, tau))(keys))[:, 0, 0]

    def cdf(u):
        u = np.clip(np.asarray(u, np.float64), 1e-12, 1 - 1e-12)
        return 1 / (1 + np.exp(-(tau * np.log(u / (1 - u)) - 1.2)))

    assert stats.kstest(w, cdf).pvalue > 1e-3
    alpha4 = jnp.asarray([[1.0, 0.0, -1.0, 0.5]])
    index = jax.vmap(lambda k: oneshot.hard_gumbel(k, alpha4, tau)[1])(keys)[:, 0]
    counts = np.bincount(np.asarray(index), minlength=4)
    p = np.exp(np.asarray(alpha4[0], np.float64))
    expected = p / p.sum() * len(keys)
    assert stats.chisquare(counts, expected).pvalue > 1e-3


@pytest.mark.parametrize(
    ("table", "make", "unit"),
    [
        ("NB201_OP_COST", lambda n, r: nn.nb201_op(n, 16, 16, 1, rngs=r), "nor_conv_3x3"),
        ("DARTS_OP_COST", lambda n, r: nn.darts_op(n, 16, 1, rngs=r), "sep_conv_3x3"),
    ],
)
def test_op_cost_tables_are_the_ops_counted_multiply_accumulates(table, make, unit):
    """The default cost tables of SNAS' resource and ProxylessNAS' latency penalties are
    each op's multiply-accumulates relative to one op, at C = 16: counted on the ops
    themselves (`jnas.nn.count_flops`, which equals NB201's published FLOPs)."""
    from flax import nnx

    from jnas.oneshot import _penalties

    def macs(name):
        return nn.count_flops(make(name, nnx.Rngs(0)), (1, 8, 8, 16))

    base = macs(unit)
    for name, cost in getattr(_penalties, table).items():
        assert macs(name) / base == pytest.approx(cost, rel=1e-3), name


def test_default_op_costs_of_the_recurrent_and_size_spaces():
    """DARTS' recurrent cell: every kept edge costs its node's one W_i product, whatever the
    activation ("none" keeps no edge); the NATS size space: each width over the widest (64)."""
    from jnas.spaces import DARTSRecurrent, NATSSize

    rnn = np.asarray(oneshot.op_costs(DARTSRecurrent()))
    assert DARTSRecurrent().ops == ("none", "tanh", "relu", "sigmoid", "identity")
    np.testing.assert_array_equal(rnn, np.broadcast_to([0.0, 1, 1, 1, 1], rnn.shape))
    size = np.asarray(oneshot.op_costs(NATSSize()))
    np.testing.assert_allclose(size, np.broadcast_to(np.arange(1, 9) / 8, (5, 8)), rtol=1e-7)
