"""Prototypical networks (Snell, Swersky & Zemel 2017): classify a query by its squared
Euclidean distance to each class's mean support embedding; no inner loop."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from jnas.meta._core import (
    MetaLearner,
    MetaState,
    as_task,
    check_norm,
    cross_entropy,
    map_tasks,
    query_outputs,
)
from jnas.meta._models import Model
from jnas.meta._tasks import Task


def protonet(
    embed: Model,
    ways: int,
    *,
    optimizer: optax.GradientTransformation | None = None,
    task_map: str = "auto",
) -> MetaLearner:
    """ProtoNets over an embedding model (e.g. `conv4(ways=None)`), Adam 1e-3 by default.

    Support labels must be 0..ways-1 (as `few_shot` tasks are). `adapt` returns the
    parameters unchanged; `evaluate`'s `*_before` equal `*_after` (nothing to adapt).
    `task_map`: see `jnas.meta.map_tasks`.
    """
    if not isinstance(ways, int) or ways < 2:
        raise ValueError(f"protonet: `ways` must be an int >= 2; got {ways!r}")
    optimizer = optimizer or optax.adam(1e-3)

    def logits(params, task: Task, norm: str = "transductive") -> jax.Array:
        zs = embed.apply(params, task.support_x)
        zq = query_outputs(embed.apply, params, task.support_x, task.query_x, norm)
        onehot = jax.nn.one_hot(task.support_y, ways)
        protos = onehot.T @ zs / jnp.maximum(onehot.sum(0), 1.0)[:, None]
        return -jnp.sum(jnp.square(zq[:, None, :] - protos[None]), -1)

    def query(params, task: Task, norm: str = "transductive"):
        return cross_entropy(logits(params, task, norm), task.query_y)

    def init(key: jax.Array) -> MetaState:
        params = embed.init(key)
        return MetaState(params, optimizer.init(params), jnp.zeros((), jnp.int32))

    def step(state: MetaState, tasks: Task):
        def loss(params):
            losses, accs = map_tasks(lambda t: query(params, t), tasks, task_map)
            return losses.mean(), accs.mean()

        (value, acc), grads = jax.value_and_grad(loss, has_aux=True)(state.params)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        return (
            MetaState(optax.apply_updates(state.params, updates), opt_state, state.step + 1),
            {"loss": value, "metric": acc},
        )

    def adapt(params, task: Task, steps: int | None = None):
        return params

    def evaluate(params, tasks: Task, steps: int | None = None, norm: str = "transductive") -> dict:
        check_norm("protonet", norm)
        loss, acc = map_tasks(lambda t: query(params, t, norm), tasks, task_map)
        return {"loss_before": loss, "metric_before": acc, "loss_after": loss, "metric_after": acc}

    def predict(params, support_x, support_y, query_x, steps=None, norm="transductive"):
        """Logits: minus the squared distance of each query embedding to each prototype."""
        check_norm("protonet", norm)
        return logits(params, as_task(support_x, support_y, query_x), norm)

    return MetaLearner(init, step, adapt, evaluate, predict)
