"""Meta-learned surrogates: Bayesian optimisation that starts from earlier tasks' evaluations.

- **RGPE** (Feurer, Letham & Bakshy 2018, "Scalable meta-learning for Bayesian optimization
  using ranking-weighted Gaussian process ensembles"): one GP per source task, fitted once on
  that task's evaluations, and the target's own GP, combined as a weighted sum of their
  standardised posteriors. A model's weight is the probability, over posterior samples at the
  target's evaluated architectures, that it misorders the fewest pairs of them (the target's
  GP judged by its leave-one-out posterior, so it cannot win by memorising; a source's
  draws joint over those architectures, as the paper's, see `rgpe_weights`); a source
  whose median loss exceeds the target's 95th percentile is dropped (the paper's guard
  against weight dilution). The classical transfer baseline.
- **FSBO** (Wistuba & Grabocka, ICLR 2021, "Few-shot Bayesian optimization with deep kernel
  surrogates"): a GP whose kernel is an RBF on an MLP's embedding of the encoding. The MLP and
  the kernel's hyper-parameters are meta-learned by maximising the GP's marginal likelihood
  on batches of the source tasks' evaluations (tasks batched by `vmap`, the exact gradient
  through the Cholesky factor), then fine-tuned on the target's evaluations (Adam, a fixed
  number of steps, inside the searcher's `ask`) before each proposal. Labels are
  standardised per batch, which makes the scale augmentation of the paper unnecessary.

Both are `Searcher`s on `jnas.search.model_based`'s SMBO loop (candidates: mutations of the
best cells and fresh samples); their artefacts (`SourceData`, `DeepKernel`) are pytrees,
`save_deep_kernel` / `load_deep_kernel` write and read the meta-learned kernel.
"""

from __future__ import annotations

import json
import os
import pathlib
from typing import Any, NamedTuple, cast

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jnas._checks import check_positive
from jnas.predictors import GP, gp_fit, gp_predict, hamming_distance
from jnas.search import Searcher, acquisition, encoder, model_based
from jnas.spaces import Indexed, require
from jnas.transfer._resume import fingerprint, run_steps, step_values

_LOG_2PI = float(np.log(2 * np.pi))


class SourceData(NamedTuple):
    """The source tasks' evaluations: what earlier searches measured."""

    x: jax.Array  # float32[T, M, D]: encodings of each task's evaluated architectures
    y: jax.Array  # float32[T, M]: their fitness on that task (higher is better)


def source_data(
    key: jax.Array,
    space: Any,
    scores: jax.Array,
    *,
    num_points: int = 100,
    encoding: str = "one_hot",
    searcher: Searcher | None = None,
) -> SourceData:
    """`num_points` evaluated architectures per source task (`scores[T, N]` over a table's
    rows, e.g. `transfer.suite_scores`), encoded as the searchers will encode them
    (`encoding`: `"one_hot"` or `"path"`).

    Without `searcher`: rows with a finite score drawn without replacement. With one: what
    an earlier search measured, the first `num_points` evaluations of `searcher` run on each
    task (the task's scores as fitness, tasks vmapped; a NaN row is told as the failed
    evaluation it is and kept at the task's lowest score, so labels stay finite). A search's
    evaluations crowd around its good cells, as real earlier searches' do, where random rows
    spread over the whole ranking."""
    require("source_data", space, Indexed)
    check_positive("source_data", num_points=num_points)
    scores = jnp.asarray(scores, jnp.float32)
    if scores.ndim != 2:
        raise ValueError(f"source_data: `scores` must be [tasks, rows]; got shape {scores.shape}")
    finite = np.isfinite(np.asarray(scores)).sum(1)
    if finite.min() < (1 if searcher is not None else num_points):
        raise ValueError(
            f"source_data: `num_points` {num_points} exceeds a task's finite rows ({finite.min()})"
        )
    encode = encoder(space, encoding, "source_data")

    def drawn(k: jax.Array, s: jax.Array) -> jax.Array:
        ok = jnp.isfinite(s)
        return jax.random.choice(k, s.shape[0], (num_points,), replace=False, p=ok / ok.sum())

    def searched(k: jax.Array, s: jax.Array, searcher: Searcher) -> jax.Array:
        k_init, k_run = jax.random.split(k)
        state = searcher.init(k_init)
        batch = jax.eval_shape(lambda kk: space.index(searcher.ask(kk, state)[0]), k_run).shape[0]

        def step(state: Any, kk: jax.Array) -> tuple[Any, jax.Array]:
            archs, state = searcher.ask(kk, state)
            rows = space.index(archs)
            return searcher.tell(state, archs, s[rows]), rows

        steps = -(-num_points // batch)
        _, rows = jax.lax.scan(step, state, jax.random.split(k_run, steps))
        return rows.reshape(-1)[:num_points]

    def one(k: jax.Array, s: jax.Array) -> tuple[jax.Array, jax.Array]:
        rows = drawn(k, s) if searcher is None else searched(k, s, searcher)
        y = s[rows]
        return jax.vmap(encode)(space.from_index(rows)), jnp.where(jnp.isnan(y), jnp.nanmin(s), y)

    x, y = jax.vmap(one)(jax.random.split(key, scores.shape[0]), scores)
    return SourceData(x, y)


def _encoding_width(space: Any, encoding: str, where: str) -> int:
    """D, the width of the space's `encoding` (traced, nothing computed)."""
    one = jax.eval_shape(
        lambda k: encoder(space, encoding, where)(space.sample(k)), jax.random.key(0)
    )
    return int(one.shape[0])


def _check_sources(where: str, space: Any, sources: SourceData, encoding: str) -> None:
    width = _encoding_width(space, encoding, where)
    x, y = sources
    if x.ndim != 3 or y.shape != x.shape[:2] or x.shape[2] != width:
        raise ValueError(
            f"{where}: `sources` must be SourceData(x [T, M, {width}], y [T, M]) in the "
            f"{encoding!r} encoding of the space; got x {x.shape}, y {y.shape}"
        )
    if not np.all(np.isfinite(np.asarray(y))):
        raise ValueError(f"{where}: `sources.y` holds non-finite values (a failed evaluation?)")


# --------------------------------------------------------------------------- RGPE


def loo_posterior(gp: GP) -> tuple[jax.Array, jax.Array]:
    """Leave-one-out predictive mean and std of a fitted GP at its own training rows, in its
    standardised units (Rasmussen & Williams eq. 5.12: mu_i = z_i - [K^-1 z]_i / [K^-1]_ii,
    var_i = 1 / [K^-1]_ii); rows outside the mask read mean 0, std 1."""
    n, chol = gp.alpha.shape[0], _factor(gp)
    kinv = jax.scipy.linalg.cho_solve((chol, True), jnp.eye(n, dtype=chol.dtype))
    d = jnp.diag(kinv)
    z = chol @ (chol.T @ gp.alpha)  # K alpha: the standardised targets it was fitted to
    return z - gp.alpha / d, jnp.sqrt(1.0 / d)


class SourceGP(NamedTuple):
    """A source task's fitted GP with its inverse Gram matrix precomputed, so that predicting
    inside an `ask` needs only products (no triangular solve)."""

    x: jax.Array  # float32[M, D]
    alpha: jax.Array  # float32[M]
    kinv: jax.Array  # float32[M, M]
    lengthscale: jax.Array  # float32[]


def fit_source_gps(sources: SourceData) -> SourceGP:
    """RGPE's base models: one Hamming-kernel GP per source task on all its evaluations
    (hyper-parameters by marginal likelihood), stacked along a leading axis."""
    return jax.vmap(_source_gp)(sources.x, sources.y)


def _source_gp(x: jax.Array, y: jax.Array) -> SourceGP:
    gp = gp_fit(x, y, jnp.ones(y.shape, bool))
    eye = jnp.eye(y.shape[0], dtype=jnp.float32)
    return SourceGP(
        gp.x, gp.alpha, jax.scipy.linalg.cho_solve((_factor(gp), True), eye), gp.lengthscale
    )


def _factor(gp: GP) -> jax.Array:
    """The GP's Cholesky factor (`gp_fit`'s; `gp_fit_factored` keeps only its inverse)."""
    if gp.chol is None:
        raise ValueError("RGPE needs a GP from `gp_fit` (with its Cholesky factor)")
    return gp.chol


def _source_predict(gp: SourceGP, rows: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Posterior mean and std of a source GP at `rows`, in its standardised units."""
    k_star = jnp.exp(-hamming_distance(rows, gp.x) / gp.lengthscale)
    var = 1.0 - jnp.sum((k_star @ gp.kinv) * k_star, -1)
    return k_star @ gp.alpha, jnp.sqrt(jnp.maximum(var, 1e-12))


def _source_posterior(gp: SourceGP, rows: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Joint posterior mean [N] and covariance [N, N] of a source GP at `rows`."""
    k_star = jnp.exp(-hamming_distance(rows, gp.x) / gp.lengthscale)
    k_rows = jnp.exp(-hamming_distance(rows, rows) / gp.lengthscale)
    return k_star @ gp.alpha, k_rows - k_star @ gp.kinv @ k_star.T


def psd_sqrt(a: jax.Array, iters: int = 30) -> jax.Array:
    """The symmetric square root S (S S = a) of a positive semi-definite matrix by the coupled
    Newton-Schulz iteration (Higham 2008, eq. 6.35), matrix products only: no factorisation
    or triangular solve (which wedge XLA:CPU's thread pool in batched use inside `ask`, see
    `rgpe_weights`). A jitter of 1e-4 of the mean variance joins the diagonal (the usual
    jitter of GP sampling, larger for float32: in exact arithmetic the iteration converges
    for any PSD matrix, in float32 it drifts on near-singular ones), so draws `S z` have
    covariance a + jitter."""
    eye = jnp.eye(a.shape[-1], dtype=a.dtype)
    a = (a + a.T) / 2 + 1e-4 * jnp.trace(a) / a.shape[-1] * eye
    norm = jnp.sqrt(jnp.sum(jnp.square(a)))

    def step(carry, _):
        y, z = carry
        t = 1.5 * eye - 0.5 * z @ y
        return (y @ t, t @ z), None

    (y, _), _ = jax.lax.scan(step, (a / norm, eye), None, iters)
    return y * jnp.sqrt(norm)


def source_draws(key: jax.Array, sources: SourceGP, x: jax.Array, num_samples: int) -> jax.Array:
    """float32[T, S, N]: `num_samples` joint posterior draws of each source GP (standardised
    units) at the rows `x` [N, D]: mean + z S with S = `psd_sqrt` of the covariance."""
    mean, cov = jax.vmap(_source_posterior, in_axes=(0, None))(sources, x)  # [T, N(, N)]
    noise = jax.random.normal(key, (mean.shape[0], num_samples, x.shape[0]))
    return mean[:, None] + noise @ jax.vmap(psd_sqrt)(cov)  # S symmetric: z S ~ N(0, S S)


def ranking_losses(samples: jax.Array, y: jax.Array, mask: jax.Array) -> jax.Array:
    """[..., S] misordered pairs: for each draw f [N] of `samples[..., S, N]`, the number of
    ordered pairs (i, j) of valid rows with (f_i < f_j) != (y_i < y_j)."""
    lead = (1,) * (samples.ndim - 1)
    valid = (mask[:, None] & mask[None, :]).reshape(lead + mask.shape * 2)
    truth = (y[:, None] < y[None, :]).reshape(lead + y.shape * 2)
    wrong = (samples[..., :, None] < samples[..., None, :]) != truth
    return jnp.sum(wrong & valid, axis=(-1, -2))


def rgpe_weights(
    key: jax.Array,
    sources: SourceGP,
    target: GP,
    x: jax.Array,
    y: jax.Array,
    mask: jax.Array,
    num_samples: int = 256,
    joint: bool = True,
) -> jax.Array:
    """float32[T + 1]: RGPE's weights of the T source GPs (`fit_source_gps`) and the target's GP (last)
    given the target's evaluations (x, y) where `mask`: the share of posterior draws in which
    each model misorders the fewest pairs (ties broken at random); a source whose median loss
    exceeds the target's 95th-percentile loss gets weight 0.

    `joint=True` (default): as in the paper, a source's draws are joint over the target's
    rows (`source_draws`: the covariance's square root by matrix products only).
    `joint=False`: per row from each source's marginal posterior (cheaper). Marginal draws
    were the default while a 100-seed warm-start rotation that hung idle in
    `block_until_ready` (a program never isolated) was suspected of them; RGPE with joint
    draws has since run to the end 8 times at 100 seeds, once beside two busy processes.
    The target's draws are per row from its leave-one-out posteriors either way."""
    k_src, k_tgt, k_tie = jax.random.split(key, 3)
    num_src = sources.alpha.shape[0]  # stacked source GPs (`rgpe` builds them)
    if joint:
        src = source_draws(k_src, sources, x, num_samples)
    else:
        mean_s, std_s = jax.vmap(_source_predict, in_axes=(0, None))(sources, x)  # [T, N]
        noise = jax.random.normal(k_src, (num_src, num_samples, x.shape[0]))
        src = mean_s[:, None] + std_s[:, None] * noise
    mean, std = loo_posterior(target)
    tgt = mean[None] + std[None] * jax.random.normal(k_tgt, (num_samples, mean.shape[0]))
    losses = ranking_losses(jnp.concatenate([src, tgt[None]]), y, mask).astype(jnp.float32)
    keep = jnp.median(losses[:-1], axis=1) <= jnp.percentile(losses[-1], 95)
    big = jnp.float32(mask.shape[0] ** 2 + 1)
    losses = losses.at[:-1].set(jnp.where(keep[:, None], losses[:-1], big))
    losses = losses + 0.5 * jax.random.uniform(k_tie, losses.shape)  # integer losses: ties only
    winner = jnp.argmin(losses, axis=0)
    return jnp.mean(jax.nn.one_hot(winner, num_src + 1), axis=0)


def rgpe_predict(
    sources: SourceGP, target: GP, weights: jax.Array, rows: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """RGPE's ensemble at `rows` (Feurer et al. 2018, eq. 2), each GP in its own standardised
    units (the target's: its labels standardised as `gp_fit` does): mean sum_i w_i mu_i and
    std sqrt(sum_i w_i^2 sigma_i^2) over the sources and the target (last weight)."""
    ms, ss = jax.vmap(_source_predict, in_axes=(0, None))(sources, rows)
    mt, st = gp_predict(target, rows)
    mt, st = (mt - target.mean) / target.scale, st / target.scale
    mean = weights[:-1] @ ms + weights[-1] * mt
    std = jnp.sqrt(jnp.square(weights[:-1]) @ jnp.square(ss) + jnp.square(weights[-1] * st))
    return mean, std


def rgpe(
    space: Any,
    sources: SourceData,
    *,
    num_samples: int = 256,
    joint: bool = True,
    encoding: str = "one_hot",
    acquisition_fn: str = "ei",
    batch_size: int = 1,
    num_init: int = 1,
    num_candidates: int = 100,
    num_parents: int = 10,
    max_points: int = 100,
) -> Searcher:
    """BO with RGPE's ranking-weighted ensemble of the sources' GPs and the target's GP
    (Hamming-kernel GPs on `encoding`, hyper-parameters by marginal likelihood). With the
    sources' GPs as a prior, the model proposes from the first evaluation on
    (`num_init=1`). `joint`: the sources' draws joint over the target's rows, as the paper
    (default), or per row from their marginals (see `rgpe_weights`)."""
    check_positive("rgpe", num_samples=num_samples)
    _check_sources("rgpe", space, sources, encoding)
    source_gps = fit_source_gps(sources)

    def score(key, x, y, mask, candidates):
        k_w, k_acq = jax.random.split(key)
        y0 = jnp.where(mask, y, 0.0)
        target = gp_fit(x, y0, mask)
        w = rgpe_weights(k_w, source_gps, target, x, y0, mask, num_samples, joint)
        mean, std = rgpe_predict(source_gps, target, w, candidates)
        best = (jnp.max(jnp.where(mask, y, -jnp.inf)) - target.mean) / target.scale
        return acquisition(acquisition_fn, mean, std + 1e-9, best, k_acq)

    return model_based(
        space,
        score,
        encoding=encoding,
        batch_size=batch_size,
        num_init=num_init,
        num_candidates=num_candidates,
        num_parents=num_parents,
        max_points=max_points,
        where="rgpe",
    )


# --------------------------------------------------------------------------- FSBO


class DeepKernel(NamedTuple):
    """A deep kernel k(a, b) = s2 exp(-|phi(a) - phi(b)|^2 / (2 l^2)), phi an MLP (ReLU
    between layers), with observation noise; every field is learned."""

    layers: tuple[tuple[jax.Array, jax.Array], ...]  # (W [in, out], b [out]) per layer
    log_lengthscale: jax.Array
    log_signal: jax.Array
    log_noise: jax.Array


def init_deep_kernel(
    key: jax.Array, features: int, hidden: tuple[int, ...] = (32, 32)
) -> DeepKernel:
    """A deep kernel on `features`-wide encodings: He-initialised layers of widths
    `hidden`; lengthscale, signal 1 and noise 0.1."""
    check_positive(
        "init_deep_kernel", features=features, **{f"hidden[{i}]": h for i, h in enumerate(hidden)}
    )
    widths = (features, *hidden)
    keys = jax.random.split(key, len(hidden))
    layers = tuple(
        (
            jax.random.normal(k, (a, b)) * jnp.sqrt(2.0 / a),
            jnp.zeros((b,)),
        )
        for k, a, b in zip(keys, widths[:-1], widths[1:], strict=True)
    )
    zero = jnp.zeros(())
    return DeepKernel(layers, zero, zero, jnp.log(jnp.asarray(0.1)))


def _embed(kernel: DeepKernel, x: jax.Array) -> jax.Array:
    h = x
    for i, (w, b) in enumerate(kernel.layers):
        h = h @ w + b[None]
        if i < len(kernel.layers) - 1:
            h = jax.nn.relu(h)
    return h


def _gram(kernel: DeepKernel, a: jax.Array, b: jax.Array) -> jax.Array:
    fa, fb = _embed(kernel, a), _embed(kernel, b)
    d = jnp.sum(jnp.square(fa[:, None, :] - fb[None, :, :]), -1)
    return jnp.exp(kernel.log_signal) * jnp.exp(-0.5 * d / jnp.exp(2 * kernel.log_lengthscale))


def _standardise(y: jax.Array, mask: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    m = mask.astype(jnp.float32)
    n = jnp.maximum(jnp.sum(m), 1.0)
    mean = jnp.sum(jnp.where(mask, y, 0.0)) / n
    scale = jnp.sqrt(jnp.sum(jnp.where(mask, jnp.square(y - mean), 0.0)) / n) + 1e-6
    return jnp.where(mask, (y - mean) / scale, 0.0), mean, scale


def _masked_chol(kernel: DeepKernel, x: jax.Array, mask: jax.Array) -> jax.Array:
    m = mask.astype(jnp.float32)
    k = _gram(kernel, x, x) * m[:, None] * m[None, :]
    noise = jnp.exp(kernel.log_noise) + 1e-4
    return jnp.linalg.cholesky(k + jnp.diag(m * noise + (1 - m)))


def deep_kernel_nll(kernel: DeepKernel, x: jax.Array, y: jax.Array, mask: jax.Array) -> jax.Array:
    """The GP's negative log marginal likelihood of the rows where `mask`, labels standardised
    over those rows, divided by their count (rows outside the mask do not enter)."""
    z, _, _ = _standardise(y, mask)
    chol = _masked_chol(kernel, x, mask)
    a = jax.scipy.linalg.cho_solve((chol, True), z)
    n = jnp.maximum(jnp.sum(mask), 1)
    m = mask.astype(jnp.float32)
    nll = 0.5 * z @ a + jnp.sum(jnp.log(jnp.diag(chol)) * m) + 0.5 * n * _LOG_2PI
    return nll / n


def deep_kernel_predict(
    kernel: DeepKernel, x: jax.Array, y: jax.Array, mask: jax.Array, x_new: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """Posterior mean and std (of the latent function, in y's units) at rows `x_new` given
    the evaluations (x, y) where `mask`."""
    z, mean, scale = _standardise(y, mask)
    chol = _masked_chol(kernel, x, mask)
    k_star = _gram(kernel, x_new, x) * mask.astype(jnp.float32)[None, :]
    mu = k_star @ jax.scipy.linalg.cho_solve((chol, True), z)
    v = jax.scipy.linalg.solve_triangular(chol, k_star.T, lower=True)
    var = jnp.maximum(jnp.exp(kernel.log_signal) - jnp.sum(v * v, 0), 1e-12)
    return mean + scale * mu, scale * jnp.sqrt(var)


def fit_deep_kernel(
    kernel: DeepKernel,
    x: jax.Array,
    y: jax.Array,
    mask: jax.Array,
    *,
    steps: int = 50,
    learning_rate: float = 1e-3,
) -> DeepKernel:
    """`steps` Adam steps on `deep_kernel_nll` of one task's evaluations from `kernel` (FSBO's
    fine-tuning on the target; jittable, steps static)."""
    opt = optax.adam(learning_rate)

    def step(carry, _):
        params, state = carry
        grads = jax.grad(deep_kernel_nll)(params, x, y, mask)
        updates, state = opt.update(grads, state, params)
        return (optax.apply_updates(params, updates), state), None

    (tuned, _), _ = jax.lax.scan(step, (kernel, opt.init(kernel)), None, length=steps)
    return cast(DeepKernel, tuned)  # optax's updates keep the pytree's type


def meta_train_deep_kernel(
    key: jax.Array,
    sources: SourceData,
    *,
    hidden: tuple[int, ...] = (32, 32),
    steps: int = 2000,
    batch: int = 50,
    learning_rate: float = 1e-3,
    out: str | os.PathLike | None = None,
    resume: bool = False,
    checkpoint_every: int = 100,
) -> tuple[DeepKernel, jax.Array]:
    """FSBO's meta-training: from `init_deep_kernel` (of the key's first split), `steps` Adam
    steps on the mean over the source tasks (vmapped) of `deep_kernel_nll` on a random
    `batch` of each task's evaluations (step i's from `fold_in(k, i)`, k the key's second
    split). Returns the kernel and the per-step loss
    (float32[steps]). With `out`, a checkpoint every `checkpoint_every` steps; `resume=True`
    continues a killed run (or extends a finished one to more `steps`) from its folder."""
    check_positive("meta_train_deep_kernel", steps=steps, batch=batch)
    num_points = sources.y.shape[1]
    if batch > num_points:
        raise ValueError(
            f"meta_train_deep_kernel: `batch` {batch} exceeds the sources' {num_points} points"
        )
    k_init, k_steps = jax.random.split(key)
    opt = optax.adam(learning_rate)
    everything = jnp.ones((batch,), bool)

    def loss(params: DeepKernel, k: jax.Array) -> jax.Array:
        def task(kt, x, y):
            rows = jax.random.choice(kt, num_points, (batch,), replace=False)
            return deep_kernel_nll(params, x[rows], y[rows], everything)

        keys = jax.random.split(k, sources.y.shape[0])
        return jnp.mean(jax.vmap(task)(keys, sources.x, sources.y))

    def init(k: jax.Array) -> tuple[DeepKernel, Any]:
        kernel = init_deep_kernel(k, sources.x.shape[2], hidden)
        return kernel, opt.init(kernel)

    def step(carry: Any, i: jax.Array) -> tuple[Any, jax.Array]:
        params, state = carry
        value, grads = jax.value_and_grad(loss)(params, jax.random.fold_in(k_steps, i))
        updates, state = opt.update(grads, state, params)
        return (optax.apply_updates(params, updates), state), value

    settings = {
        "hidden": list(hidden),
        "batch": batch,
        "learning_rate": learning_rate,
        "key": fingerprint(jax.random.key_data(key)),
        "sources": fingerprint(sources.x, sources.y),
    }
    (trained, _), records = run_steps(
        "meta_train_deep_kernel",
        step,
        init,
        k_init,
        steps=steps,
        chunk=min(checkpoint_every, steps),
        out=out,
        resume=resume,
        settings=settings,
    )
    return cast(DeepKernel, trained), jnp.asarray(step_values(records))


def fsbo(
    space: Any,
    kernel: DeepKernel,
    *,
    finetune_steps: int = 50,
    finetune_lr: float = 1e-3,
    encoding: str = "one_hot",
    acquisition_fn: str = "ei",
    batch_size: int = 1,
    num_init: int = 1,
    num_candidates: int = 100,
    num_parents: int = 10,
    max_points: int = 100,
) -> Searcher:
    """BO with FSBO's deep-kernel GP: the meta-learned `kernel` fine-tuned on the target's
    evaluations (`finetune_steps` Adam steps from the meta-learned values at every `ask`),
    then expected improvement (or `acquisition_fn`) over the candidates."""
    check_positive("fsbo", finetune_steps=finetune_steps)
    width = _encoding_width(space, encoding, "fsbo")
    if kernel.layers[0][0].shape[0] != width:
        raise ValueError(
            f"fsbo: `kernel` takes {kernel.layers[0][0].shape[0]}-wide encodings; the space's "
            f"{encoding!r} encoding is {width} wide"
        )

    def score(key, x, y, mask, candidates):
        y0 = jnp.where(mask, y, 0.0)
        tuned = fit_deep_kernel(
            kernel, x, y0, mask, steps=finetune_steps, learning_rate=finetune_lr
        )
        mean, std = deep_kernel_predict(tuned, x, y0, mask, candidates)
        best = jnp.max(jnp.where(mask, y, -jnp.inf))
        return acquisition(acquisition_fn, mean, std + 1e-9, best, key)

    return model_based(
        space,
        score,
        encoding=encoding,
        batch_size=batch_size,
        num_init=num_init,
        num_candidates=num_candidates,
        num_parents=num_parents,
        max_points=max_points,
        where="fsbo",
    )


def save_deep_kernel(kernel: DeepKernel, path: str | os.PathLike) -> None:
    """Writes the kernel as one `.npz` (written whole, then renamed into place)."""
    arrays = {f"w{i}": np.asarray(w) for i, (w, _) in enumerate(kernel.layers)}
    arrays |= {f"b{i}": np.asarray(b) for i, (_, b) in enumerate(kernel.layers)}
    scalars = {
        "log_lengthscale": float(kernel.log_lengthscale),
        "log_signal": float(kernel.log_signal),
        "log_noise": float(kernel.log_noise),
        "layers": len(kernel.layers),
    }
    p = pathlib.Path(path)
    tmp = p.with_name(p.name + ".tmp.npz")
    np.savez(tmp, settings=np.asarray(json.dumps(scalars)), **arrays)  # pyright: ignore[reportArgumentType]
    os.replace(tmp, p)


def load_deep_kernel(path: str | os.PathLike) -> DeepKernel:
    """Reads `save_deep_kernel`'s file."""
    with np.load(path) as f:
        settings = json.loads(str(f["settings"]))
        n = int(settings["layers"])
        layers = tuple((jnp.asarray(f[f"w{i}"]), jnp.asarray(f[f"b{i}"])) for i in range(n))
    for i in range(1, n):
        if layers[i][0].shape[0] != layers[i - 1][0].shape[1]:
            raise ValueError(f"load_deep_kernel: {path}: layer {i}'s input width does not chain")
    return DeepKernel(
        layers,
        jnp.asarray(settings["log_lengthscale"], jnp.float32),
        jnp.asarray(settings["log_signal"], jnp.float32),
        jnp.asarray(settings["log_noise"], jnp.float32),
    )
