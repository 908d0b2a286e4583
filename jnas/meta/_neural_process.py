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
    return jnp.mean(0.5 * jnp.log(2 * jnp.pi) + jnp.log(std) + 0.5 * jnp.square((y - mean) / std))


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
