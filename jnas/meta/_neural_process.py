"""Conditional neural processes (Garnelo, Rosenbaum, Maddison, Ramalho, Saxton, Shanahan,
Teh, Rezende & Eslami, ICML 2018): the generative family of meta-learners.

An encoder embeds each context pair (x, y); their mean r summarises the task; a decoder maps
(x*, r) to a Gaussian over y* (mean, and a standard deviation bounded below by 0.1 as the
paper does). Trained on episodes by the query points' Gaussian negative log-likelihood; no
inner loop: a new task is "adapted to" by one forward pass over its support set.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import jax.scipy.stats
import optax

from jnas.meta._core import MetaLearner, MetaState, map_tasks
from jnas.meta._models import Model, mlp
from jnas.meta._tasks import Task


class CNPModel(NamedTuple):
    """The encoder h([x, y]) -> r_i and the decoder g([x*, mean_i r_i]) -> (mean, raw std)."""

    encoder: Model
    decoder: Model

    def distribution(
        self, params: dict, support_x: jax.Array, support_y: jax.Array, query_x: jax.Array
    ) -> tuple[jax.Array, jax.Array]:
        """(mean, std) of y at `query_x` given the context set; shapes [Q, y_dim]."""
        y_dim = support_y.shape[-1]
        pairs = jnp.concatenate([support_x, support_y], -1)
        r = self.encoder.apply(params["encoder"], pairs).mean(0)
        r = jnp.broadcast_to(r, (query_x.shape[0], r.shape[0]))
        out = self.decoder.apply(params["decoder"], jnp.concatenate([query_x, r], -1))
        return out[:, :y_dim], 0.1 + 0.9 * jax.nn.softplus(out[:, y_dim:])


def cnp_model(x_dim: int = 1, y_dim: int = 1, width: int = 128) -> CNPModel:
    """Encoder and decoder MLPs of three `width`-unit hidden layers (the paper's 1-D
    regression setting)."""
    for name, v in (("x_dim", x_dim), ("y_dim", y_dim), ("width", width)):
        if not isinstance(v, int) or v < 1:
            raise ValueError(f"cnp: `{name}` must be an int >= 1; got {v!r}")
    return CNPModel(
        mlp((x_dim + y_dim, width, width, width)),
        mlp((x_dim + width, width, width, 2 * y_dim)),
    )


def gaussian_nll(mean: jax.Array, std: jax.Array, y: jax.Array) -> jax.Array:
    """Mean negative log-likelihood of y under N(mean, std^2), per point."""
    return -jnp.mean(jax.scipy.stats.norm.logpdf(y, mean, std))


def cnp(
    x_dim: int = 1,
    y_dim: int = 1,
    *,
    width: int = 128,
    optimizer: optax.GradientTransformation | None = None,
    task_map: str = "vmap",
) -> MetaLearner:
    """A conditional neural process for `x_dim` -> `y_dim` regression: encoder and decoder
    MLPs of three `width`-unit hidden layers (the paper's 1-D regression setting), Adam
    1e-4 by default (`cnp_model(...).distribution` gives the predictive std too). `evaluate`'s loss is the query NLL, its metric the MSE of the mean;
    `predict` returns the predictive mean."""
    model = cnp_model(x_dim, y_dim, width)
    optimizer = optimizer or optax.adam(1e-4)

    def query(params: dict, task: Task) -> tuple[jax.Array, jax.Array]:
        mean, std = model.distribution(params, task.support_x, task.support_y, task.query_x)
        return gaussian_nll(mean, std, task.query_y), jnp.mean(jnp.square(mean - task.query_y))

    def init(key: jax.Array) -> MetaState:
        k_enc, k_dec = jax.random.split(key)
        params = {"encoder": model.encoder.init(k_enc), "decoder": model.decoder.init(k_dec)}
        return MetaState(params, optimizer.init(params), jnp.zeros((), jnp.int32))

    def step(state: MetaState, tasks: Task):
        def objective(params):
            nll, err = map_tasks(lambda t: query(params, t), tasks, task_map)
            return nll.mean(), err.mean()

        (value, err), grads = jax.value_and_grad(objective, has_aux=True)(state.params)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        return (
            MetaState(optax.apply_updates(state.params, updates), opt_state, state.step + 1),
            {"loss": value, "metric": err},
        )

    def adapt(params, task: Task, steps: int | None = None):
        return params

    def evaluate(params, tasks: Task, steps: int | None = None, norm: str = "transductive"):
        nll, err = map_tasks(lambda t: query(params, t), tasks, task_map)
        return {"loss_before": nll, "metric_before": err, "loss_after": nll, "metric_after": err}

    def predict(params, support_x, support_y, query_x, steps=None, norm="transductive"):
        return model.distribution(params, support_x, support_y, query_x)[0]

    return MetaLearner(init, step, adapt, evaluate, predict)


class LNPModel(NamedTuple):
    """A latent neural process (Garnelo, Schwarz, Rosenbaum, Viola, Rezende, Eslami & Teh,
    2018, "Neural Processes"): the latent encoder h([x, y]) -> s_i, whose mean gives
    q(z | context) = N(mu, sigma^2) through `latent` ([mean s] -> (mu, raw sigma)), an
    optional deterministic path as the CNP's (Kim et al. 2019's NP baseline), and the
    decoder g([x*, z(, r)]) -> (mean, raw std)."""

    encoder: Model
    latent: Model
    decoder: Model
    deterministic: Model | None
    latent_dim: int

    def posterior(
        self, params: dict, x: jax.Array, y: jax.Array, mask: jax.Array | None = None
    ) -> tuple[jax.Array, jax.Array]:
        """(mu, sigma) of q(z | the (x, y) pairs where `mask`), sigma in (0.1, 1) as the
        paper's code bounds it."""
        s = self.encoder.apply(params["encoder"], jnp.concatenate([x, y], -1))
        w = jnp.ones(x.shape[:1], s.dtype) if mask is None else mask.astype(s.dtype)
        pooled = jnp.sum(s * w[:, None], 0) / jnp.maximum(jnp.sum(w), 1.0)
        out = self.latent.apply(params["latent"], pooled)
        return out[: self.latent_dim], 0.1 + 0.9 * jax.nn.sigmoid(out[self.latent_dim :])

    def decode(
        self,
        params: dict,
        z: jax.Array,
        support_x: jax.Array,
        support_y: jax.Array,
        query_x: jax.Array,
    ) -> tuple[jax.Array, jax.Array]:
        """(mean, std) of y at `query_x` for one latent draw `z`; shapes [Q, y_dim]."""
        y_dim = support_y.shape[-1]
        parts = [query_x, jnp.broadcast_to(z, (query_x.shape[0], z.shape[0]))]
        if self.deterministic is not None:
            pairs = jnp.concatenate([support_x, support_y], -1)
            r = self.deterministic.apply(params["deterministic"], pairs).mean(0)
            parts.append(jnp.broadcast_to(r, (query_x.shape[0], r.shape[0])))
        out = self.decoder.apply(params["decoder"], jnp.concatenate(parts, -1))
        return out[:, :y_dim], 0.1 + 0.9 * jax.nn.softplus(out[:, y_dim:])


def gaussian_kl(mu_q: jax.Array, sd_q: jax.Array, mu_p: jax.Array, sd_p: jax.Array) -> jax.Array:
    """KL(N(mu_q, sd_q^2) || N(mu_p, sd_p^2)) summed over independent dimensions."""
    return jnp.sum(
        jnp.log(sd_p / sd_q)
        + (jnp.square(sd_q) + jnp.square(mu_q - mu_p)) / (2 * jnp.square(sd_p))
        - 0.5
    )


def lnp_model(
    x_dim: int = 1,
    y_dim: int = 1,
    width: int = 128,
    latent_dim: int = 128,
    *,
    deterministic: bool = False,
) -> LNPModel:
    """Encoder MLP of three `width`-unit layers, latent head [width -> width -> 2 latent_dim],
    decoder of three `width`-unit layers (the paper's 1-D regression setting)."""
    for name, v in (
        ("x_dim", x_dim),
        ("y_dim", y_dim),
        ("width", width),
        ("latent_dim", latent_dim),
    ):
        if not isinstance(v, int) or v < 1:
            raise ValueError(f"lnp: `{name}` must be an int >= 1; got {v!r}")
    extra = width if deterministic else 0
    return LNPModel(
        mlp((x_dim + y_dim, width, width, width)),
        mlp((width, width, 2 * latent_dim)),
        mlp((x_dim + latent_dim + extra, width, width, 2 * y_dim)),
        mlp((x_dim + y_dim, width, width, width)) if deterministic else None,
        latent_dim,
    )


def lnp(
    x_dim: int = 1,
    y_dim: int = 1,
    *,
    width: int = 128,
    latent_dim: int = 128,
    deterministic: bool = False,
    samples: int = 32,
    optimizer: optax.GradientTransformation | None = None,
    task_map: str = "vmap",
) -> MetaLearner:
    """A latent neural process for `x_dim` -> `y_dim` regression, trained on the ELBO
    E_{q(z|C,T)}[log p(y_T | x_T, z)] - KL(q(z|C,T) || q(z|C)) with the context C the
    support set and the targets T support + query (the paper's), one reparameterised draw
    per task and step, Adam 1e-4 by default. Its randomness comes from `init`'s key: the
    state carries it (`opt_state = (optimizer state, key data)`) and step s draws from
    `fold_in(key, s)`. `evaluate` draws `samples` latents from q(z | support) per task from
    a fixed key: its loss is the query points' predictive NLL, -log mean_s p(y | x, z_s)
    per point, its metric the MSE of the predictive mean; `predict` returns that mean."""
    model = lnp_model(x_dim, y_dim, width, latent_dim, deterministic=deterministic)
    optimizer = optimizer or optax.adam(1e-4)
    if not isinstance(samples, int) or samples < 1:
        raise ValueError(f"lnp: `samples` must be an int >= 1; got {samples!r}")

    def elbo_loss(params: dict, task: Task, key: jax.Array) -> tuple[jax.Array, jax.Array]:
        x = jnp.concatenate([task.support_x, task.query_x], 0)
        y = jnp.concatenate([task.support_y, task.query_y], 0)
        mu_t, sd_t = model.posterior(params, x, y)
        mu_c, sd_c = model.posterior(params, task.support_x, task.support_y)
        z = mu_t + sd_t * jax.random.normal(key, mu_t.shape, mu_t.dtype)
        mean, std = model.decode(params, z, task.support_x, task.support_y, x)
        nll = -jnp.sum(jax.scipy.stats.norm.logpdf(y, mean, std))
        kl = gaussian_kl(mu_t, sd_t, mu_c, sd_c)
        return (nll + kl) / x.shape[0], jnp.mean(jnp.square(mean - y)[task.support_x.shape[0] :])

    def predictive(params: dict, task: Task, key: jax.Array) -> tuple[jax.Array, jax.Array]:
        """(per-point log p(y_query | context) by `samples` draws, predictive mean)."""
        mu, sd = model.posterior(params, task.support_x, task.support_y)
        zs = mu[None] + sd[None] * jax.random.normal(key, (samples, *mu.shape), mu.dtype)
        means, stds = jax.vmap(
            lambda z: model.decode(params, z, task.support_x, task.support_y, task.query_x)
        )(zs)
        logp = jnp.sum(jax.scipy.stats.norm.logpdf(task.query_y[None], means, stds), -1)  # [S, Q]
        return jax.nn.logsumexp(logp, 0) - jnp.log(samples), means.mean(0)

    def init(key: jax.Array) -> MetaState:
        k_enc, k_lat, k_dec, k_det, k_run = jax.random.split(key, 5)
        params = {
            "encoder": model.encoder.init(k_enc),
            "latent": model.latent.init(k_lat),
            "decoder": model.decoder.init(k_dec),
        }
        if model.deterministic is not None:
            params["deterministic"] = model.deterministic.init(k_det)
        opt = (optimizer.init(params), jax.random.key_data(k_run))
        return MetaState(params, opt, jnp.zeros((), jnp.int32))

    def step(state: MetaState, tasks: Task):
        opt_state, key_data = state.opt_state
        key = jax.random.fold_in(jax.random.wrap_key_data(key_data), state.step)
        n = jax.tree.leaves(tasks)[0].shape[0]
        keys = jax.random.split(key, n)

        def objective(params):
            loss, err = map_tasks(
                lambda tk: elbo_loss(params, tk[0], tk[1]), (tasks, keys), task_map
            )
            return loss.mean(), err.mean()

        (value, err), grads = jax.value_and_grad(objective, has_aux=True)(state.params)
        updates, opt_state = optimizer.update(grads, opt_state, state.params)
        return (
            MetaState(
                optax.apply_updates(state.params, updates), (opt_state, key_data), state.step + 1
            ),
            {"loss": value, "metric": err},
        )

    def adapt(params, task: Task, steps: int | None = None):
        return params

    eval_key = jax.random.key(0)

    def evaluate(params, tasks: Task, steps: int | None = None, norm: str = "transductive"):
        def one(task):
            logp, mean = predictive(params, task, eval_key)
            return -jnp.mean(logp), jnp.mean(jnp.square(mean - task.query_y))

        nll, err = map_tasks(one, tasks, task_map)
        return {"loss_before": nll, "metric_before": err, "loss_after": nll, "metric_after": err}

    def predict(params, support_x, support_y, query_x, steps=None, norm="transductive"):
        task = Task(support_x, support_y, query_x, jnp.zeros((query_x.shape[0], y_dim)))
        return predictive(params, task, eval_key)[1]

    return MetaLearner(init, step, adapt, evaluate, predict)
