"""The published search settings, against PyTorch's update rules written out in NumPy:
NB201's weight SGD (gradient-norm clip 5, L2 5e-4, Nesterov momentum 0.9) on a cosine
rate from 0.025 to 0.001, its α Adam (3e-4, betas 0.5 / 0.999, L2 1e-3), and DARTS'
recurrent settings (SGD 20, L2 5e-7, clip 0.25; α Adam 3e-3, L2 1e-3); the run lengths,
GDAS' temperatures, DARTS' finite-difference ε and α's initial scale."""

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jnas import oneshot
from jnas.oneshot._base import optimizers
from jnas.spaces import NB201


def _clip(g, max_norm):
    """torch.nn.utils.clip_grad_norm_ (eps 1e-6 aside: these norms are far from it)."""
    norm = np.sqrt(sum(float(np.sum(x * x)) for x in g))
    return [x * min(1.0, max_norm / norm) for x in g]


def _torch_sgd(params, grads, lrs, *, clip, wd, momentum, nesterov):
    """torch.optim.SGD (dampening 0) after clipping, step by step."""
    p, buf = [x.copy() for x in params], None
    for g, lr in zip(grads, lrs, strict=True):
        g = [gi + wd * pi for gi, pi in zip(_clip(g, clip), p, strict=True)]
        if momentum:
            buf = g if buf is None else [momentum * b + gi for b, gi in zip(buf, g, strict=True)]
            d = [gi + momentum * b for gi, b in zip(g, buf, strict=True)] if nesterov else buf
        else:
            d = g
        p = [pi - lr * di for pi, di in zip(p, d, strict=True)]
    return p


def _torch_adam(param, grads, *, lr, wd, b1, b2, eps=1e-8):
    """torch.optim.Adam with L2 weight decay (added to the gradient), step by step."""
    p, m, v = param.copy(), np.zeros_like(param), np.zeros_like(param)
    for t, g in enumerate(grads, 1):
        g = g + wd * p
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        p = p - lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
    return p


def _run(opt, params, grads):
    state = opt.init(params)
    for g in grads:
        updates, state = opt.update(g, state, params)
        params = optax.apply_updates(params, updates)
    return params


def _data(seed, scale):
    rng = np.random.default_rng(seed)
    params = [rng.normal(size=(3, 4)), rng.normal(size=5)]
    grads = [[scale * rng.normal(size=(3, 4)), scale * rng.normal(size=5)] for _ in range(4)]
    return params, grads


def test_nb201_weight_rate_is_cosine_from_0025_to_0001_over_every_step():
    schedule = oneshot.nb201_w_lr(epochs=5, steps_per_epoch=8)
    for t in (0, 7, 20, 33, 40):
        want = 0.001 + (0.025 - 0.001) * 0.5 * (1 + np.cos(np.pi * t / 40))
        assert float(schedule(t)) == pytest.approx(want, rel=1e-5)


@pytest.mark.parametrize("scale", [0.1, 10.0])  # clipped or not (norm 5)
def test_nb201_weight_sgd_is_pytorchs_nesterov_sgd_after_the_clip(scale):
    params, grads = _data(0, scale)
    lrs = [0.025, 0.02, 0.015, 0.01]
    want = _torch_sgd(params, grads, lrs, clip=5.0, wd=5e-4, momentum=0.9, nesterov=True)
    opt = oneshot.nb201_w_optimizer(optax.piecewise_constant_schedule(
        0.025, {1: 0.8, 2: 0.75, 3: 2 / 3}))  # fmt: skip
    got = _run(opt, [jnp.asarray(p) for p in params], [[jnp.asarray(x) for x in g] for g in grads])
    for a, b in zip(got, want, strict=True):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=1e-6)


def test_nb201_alpha_adam_has_betas_05_0999_and_l2_decay():
    rng = np.random.default_rng(1)
    alpha = rng.normal(size=(6, 5))
    grads = [rng.normal(size=(6, 5)) for _ in range(4)]
    want = _torch_adam(alpha, grads, lr=3e-4, wd=1e-3, b1=0.5, b2=0.999)
    got = _run(oneshot.nb201_alpha_optimizer(), jnp.asarray(alpha), [jnp.asarray(g) for g in grads])
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)


def test_unset_optimizers_are_nb201s():
    """`optimizers` fills in exactly these when a method's config leaves them None."""
    lr, w_opt, a_opt = optimizers(5, 8, None, None, None)
    assert float(lr(20)) == pytest.approx(float(oneshot.nb201_w_lr(5, 8)(20)))
    params, grads = _data(3, 10.0)
    want = _torch_sgd(params, grads, [float(lr(t)) for t in range(4)], clip=5.0, wd=5e-4,
                      momentum=0.9, nesterov=True)  # fmt: skip
    got = _run(
        w_opt, [jnp.asarray(p) for p in params], [[jnp.asarray(x) for x in g] for g in grads]
    )
    for a, b in zip(got, want, strict=True):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=1e-6)
    alpha = np.ones((2, 3))
    want_a = _torch_adam(alpha, [alpha * 0.5] * 3, lr=3e-4, wd=1e-3, b1=0.5, b2=0.999)
    np.testing.assert_allclose(_run(a_opt, jnp.asarray(alpha), [jnp.asarray(alpha * 0.5)] * 3),
                               want_a, rtol=1e-5, atol=1e-7)  # fmt: skip


@pytest.mark.parametrize("scale", [0.01, 1.0])  # clipped or not (norm 0.25)
def test_darts_recurrent_settings_are_its_train_search_arguments(scale):
    settings = oneshot.darts_rnn_optimizers()
    assert settings["w_lr"] == 20.0
    params, grads = _data(2, scale)
    want = _torch_sgd(params, grads, [20.0] * 4, clip=0.25, wd=5e-7, momentum=0.0,
                      nesterov=False)  # fmt: skip
    got = _run(settings["w_optimizer"], [jnp.asarray(p) for p in params],
               [[jnp.asarray(x) for x in g] for g in grads])  # fmt: skip
    for a, b in zip(got, want, strict=True):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=1e-5)
    rng = np.random.default_rng(4)
    alpha, a_grads = rng.normal(size=(8, 5)), [rng.normal(size=(8, 5)) for _ in range(3)]
    want_a = _torch_adam(alpha, a_grads, lr=3e-3, wd=1e-3, b1=0.9, b2=0.999)
    got_a = _run(settings["alpha_optimizer"], jnp.asarray(alpha), [jnp.asarray(g) for g in a_grads])
    np.testing.assert_allclose(got_a, want_a, rtol=1e-5, atol=1e-6)


def _defaults(fn):
    return {k: p.default for k, p in inspect.signature(fn).parameters.items()}


def test_search_defaults_are_nb201s_runs():
    """NB201's search runs: 50 epochs of 391 steps (25,000 training images, batch 64) for
    DARTS and the relaxed methods, 250 epochs for GDAS with τ from 10 to 0.1 (NB201's GDAS
    script and config); DARTS-V2's finite-difference ε is 0.01 / |∇| (DARTS' `architect.py`)."""
    from jnas.oneshot._bilevel import hypergradient, relaxed_search

    for fn, epochs in ((oneshot.darts, 50), (relaxed_search, 50), (oneshot.gdas, 250)):
        got = _defaults(fn)
        assert (got["epochs"], got["steps_per_epoch"]) == (epochs, 391), fn
    gdas = _defaults(oneshot.gdas)
    assert (gdas["tau_max"], gdas["tau_min"]) == (10.0, 0.1)
    assert _defaults(hypergradient)["fd_epsilon"] == 0.01


def test_alpha_starts_as_1e3_times_a_standard_normal():
    """DARTS' `1e-3 * torch.randn(E, K)`: the default α is 1e-3 times the α drawn with
    scale 1 from the same key (whose entries spread as a standard normal)."""
    tiny = {"channels": 4, "cells_per_stage": 1, "num_classes": 3}
    key = jax.random.key(0)
    alpha = oneshot.darts(NB201(), **tiny).init(key).alpha
    unit = oneshot.darts(NB201(), alpha_init_scale=1.0, **tiny).init(key).alpha
    assert alpha.shape == (6, 5)
    np.testing.assert_allclose(alpha, 1e-3 * unit, rtol=1e-6)
    assert 0.6 < float(jnp.std(unit)) < 1.5
