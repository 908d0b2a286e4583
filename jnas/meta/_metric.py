"""Metric-based meta-learners: a query is classified by comparing its embedding with the
support set's; no inner loop, the embedding (and any comparison module) is meta-trained
end to end on episodes.

- Prototypical networks (Snell, Swersky & Zemel 2017): minus the squared Euclidean
  distance to each class's mean support embedding.
- Matching networks (Vinyals, Blundell, Lillicrap, Kavukcuoglu & Wierstra 2016): attention
  over the support set, softmax of the cosine similarities, the prediction the
  attention-weighted sum of the support labels; optionally with the paper's full-context
  embeddings (`fce=True`, its appendix): a bidirectional LSTM over the support set and an
  attention LSTM that reads it `read_steps` times for each query.
- Relation networks (Sung, Yang, Zhang, Xiang, Torr & Hospedales 2018): a learned relation
  module scores [query embedding, class embedding (sum of its shots)] in [0, 1], trained
  by mean squared error against the one-hot label.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jnas._checks import check_positive
from jnas.meta._core import (
    MetaLearner,
    MetaState,
    as_task,
    check_norm,
    cross_entropy,
    map_tasks,
    query_outputs,
)
from jnas.meta._models import Model, mlp, relation_module
from jnas.meta._tasks import Task

# (params, query embeddings [Q, F], support embeddings [S, F], one-hot [S, W]) -> logits
Compare = Callable[[Any, jax.Array, jax.Array, jax.Array], jax.Array]
# (logits [Q, W], labels [Q]) -> (loss, accuracy)
Loss = Callable[[jax.Array, jax.Array], tuple[jax.Array, jax.Array]]


def _check_ways(where: str, ways: Any) -> None:
    if not isinstance(ways, int) or ways < 2:
        raise ValueError(f"{where}: `ways` must be an int >= 2; got {ways!r}")


def metric_learner(
    name: str,
    embed: Model,
    ways: int,
    compare: Compare,
    *,
    extra: Model | None = None,
    loss: Loss = cross_entropy,
    optimizer: optax.GradientTransformation | None = None,
    task_map: str = "auto",
) -> MetaLearner:
    """A metric-based learner: params are the embedding's, or `{"embed": ..., "extra":
    ...}` with a comparison module `extra`; logits from `compare`, Adam 1e-3 by default. Support labels must be
    0..ways-1. `adapt` returns the parameters unchanged; `evaluate`'s `*_before` equal
    `*_after` (nothing to adapt)."""
    _check_ways(name, ways)
    optimizer = optimizer or optax.adam(1e-3)

    def logits(params, task: Task, norm: str = "transductive") -> jax.Array:
        pe, px = (params, None) if extra is None else (params["embed"], params["extra"])
        zs = embed.apply(pe, task.support_x)
        zq = query_outputs(embed.apply, pe, task.support_x, task.query_x, norm)
        onehot = jax.nn.one_hot(task.support_y, ways)
        return compare(px, zq, zs, onehot)

    def query(params, task: Task, norm: str = "transductive"):
        return loss(logits(params, task, norm), task.query_y)

    def init(key: jax.Array) -> MetaState:
        if extra is None:
            params = embed.init(key)
        else:
            k_embed, k_extra = jax.random.split(key)
            params = {"embed": embed.init(k_embed), "extra": extra.init(k_extra)}
        return MetaState(params, optimizer.init(params), jnp.zeros((), jnp.int32))

    def step(state: MetaState, tasks: Task):
        def objective(params):
            losses, accs = map_tasks(lambda t: query(params, t), tasks, task_map)
            return losses.mean(), accs.mean()

        (value, acc), grads = jax.value_and_grad(objective, has_aux=True)(state.params)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        return (
            MetaState(optax.apply_updates(state.params, updates), opt_state, state.step + 1),
            {"loss": value, "metric": acc},
        )

    def adapt(params, task: Task, steps: int | None = None):
        return params

    def evaluate(params, tasks: Task, steps: int | None = None, norm: str = "transductive") -> dict:
        check_norm(name, norm)
        value, acc = map_tasks(lambda t: query(params, t, norm), tasks, task_map)
        return {
            "loss_before": value,
            "metric_before": acc,
            "loss_after": value,
            "metric_after": acc,
        }

    def predict(params, support_x, support_y, query_x, steps=None, norm="transductive"):
        """The logits (scores) of each query for each class."""
        check_norm(name, norm)
        return logits(params, as_task(support_x, support_y, query_x), norm)

    return MetaLearner(init, step, adapt, evaluate, predict)


def prototype_logits(extra: Any, zq: jax.Array, zs: jax.Array, onehot: jax.Array) -> jax.Array:
    """Minus the squared distance of each query embedding to each class mean."""
    protos = onehot.T @ zs / jnp.maximum(onehot.sum(0), 1.0)[:, None]
    return -jnp.sum(jnp.square(zq[:, None, :] - protos[None]), -1)


def matching_logits(
    extra: Any, zq: jax.Array, zs: jax.Array, onehot: jax.Array, scale: Any = 1.0
) -> jax.Array:
    """log sum_j a(q, j) y_j with a = softmax over the support of `scale` x the cosine
    similarities (the paper: scale 1)."""
    unit = lambda z: z / jnp.maximum(jnp.linalg.norm(z, axis=-1, keepdims=True), 1e-8)
    attention = jax.nn.softmax(scale * (unit(zq) @ unit(zs).T), axis=-1)  # [Q, S]
    return jnp.log(attention @ onehot + 1e-12)


def protonet(
    embed: Model,
    ways: int,
    *,
    optimizer: optax.GradientTransformation | None = None,
    task_map: str = "auto",
) -> MetaLearner:
    """ProtoNets over an embedding model (e.g. `conv4(ways=None)`), Adam 1e-3 by default.
    `task_map`: see `jnas.meta.map_tasks`."""
    _check_ways("protonet", ways)
    return metric_learner(
        "protonet", embed, ways, prototype_logits, optimizer=optimizer, task_map=task_map
    )


def matching_net(
    embed: Model,
    ways: int,
    *,
    fce: bool = False,
    features: int | None = None,
    read_steps: int = 5,
    scale: float | None = None,
    optimizer: optax.GradientTransformation | None = None,
    task_map: str = "auto",
) -> MetaLearner:
    """Matching networks over an embedding model: cross-entropy of the attention-weighted
    labels. Without `fce`, the same embedding for support and query; with it, the paper's
    full-context embeddings on top of the embedding's `features` outputs (`fce_embed`),
    their LSTMs meta-trained with it.

    `scale` (> 0) multiplies the cosines by a learned scalar initialised to it (metric
    scaling, Oreshkin, Rodriguez & Lacoste 2018, TADAM): cosines lie in [-1, 1] (in [0, 1]
    for ReLU embeddings), so at the paper's fixed scale of 1 the attention over 5 classes
    can put at most e / (e + 4) = 40% on a class. Default None: the paper's scale 1."""
    _check_ways("matching_net", ways)
    if scale is not None and not (isinstance(scale, int | float) and scale > 0):
        raise ValueError(f"matching_net: `scale` must be a number > 0 or None; got {scale!r}")
    if fce and (not isinstance(features, int) or features < 1):
        raise ValueError(
            f"matching_net: fce=True needs `features` (an int >= 1, the embedding's width); "
            f"got {features!r}"
        )
    check_positive("matching_net", read_steps=read_steps)

    def compare(extra: Any, zq: jax.Array, zs: jax.Array, onehot: jax.Array) -> jax.Array:
        if fce:
            zq, zs = fce_embed(extra, zq, zs, read_steps)
        alpha = 1.0 if scale is None else jnp.exp(extra["log_scale"])
        return matching_logits(None, zq, zs, onehot, alpha)

    def init_extra(key: jax.Array) -> dict:
        params = init_fce(key, features) if fce else {}  # type: ignore[arg-type]
        if scale is not None:
            params["log_scale"] = jnp.log(jnp.float32(scale))
        return params

    if not fce and scale is None:
        return metric_learner(
            "matching_net", embed, ways, matching_logits, optimizer=optimizer, task_map=task_map
        )
    return metric_learner(
        "matching_net",
        embed,
        ways,
        compare,
        extra=Model(init_extra, _no_apply),
        optimizer=optimizer,
        task_map=task_map,
    )


def _no_apply(params: Any, x: jax.Array) -> jax.Array:
    raise TypeError("the full-context embedding's params are read by `fce_embed`")


def init_fce(key: jax.Array, features: int) -> dict:
    """The full-context embeddings' LSTMs for `features`-wide embeddings: forward and
    backward LSTMs over the support set (input F, hidden F) and the attention LSTM (input
    F, recurrent input [h, r] of 2F, cell F), uniform in +-1/sqrt(F) as PyTorch's LSTM."""
    f = features
    bound = 1.0 / float(np.sqrt(f))
    ks = jax.random.split(key, 3)

    def lstm(k: jax.Array, inputs: int) -> dict:
        kw, kb = jax.random.split(k)
        return {
            "w": jax.random.uniform(kw, (inputs, 4 * f), minval=-bound, maxval=bound),
            "b": jax.random.uniform(kb, (4 * f,), minval=-bound, maxval=bound),
        }

    return {"fwd": lstm(ks[0], 2 * f), "bwd": lstm(ks[1], 2 * f), "att": lstm(ks[2], 3 * f)}


def _lstm_cell(p: dict, x: jax.Array, c: jax.Array) -> tuple[jax.Array, jax.Array]:
    """One LSTM step: x = [input, recurrent input] -> (h, c), gates i, f, g, o."""
    i, f, g, o = jnp.split(x @ p["w"] + p["b"], 4)
    c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
    return jax.nn.sigmoid(o) * jnp.tanh(c), c


def fce_embed(
    params: dict, zq: jax.Array, zs: jax.Array, read_steps: int
) -> tuple[jax.Array, jax.Array]:
    """Matching networks' full-context embeddings (Vinyals et al. 2016, appendix A.2):
    g(x_i, S) = fwd_i + bwd_i + g'(x_i), a bidirectional LSTM over the support embeddings
    g' [S, F] in their given order; f(x, S) = h_K of the attention LSTM, h_k = LSTM(f'(x),
    [h_{k-1}, r_{k-1}], c_{k-1}) + f'(x), r_{k-1} = softmax(h_{k-1} . g(S)) g(S), from
    h_0 = c_0 = 0. Returns (f for the queries [Q, F], g [S, F])."""
    zeros = jnp.zeros(zs.shape[-1], zs.dtype)

    def run(p: dict, xs: jax.Array) -> jax.Array:
        def step(carry, x):
            h, c = _lstm_cell(p, jnp.concatenate([x, carry[0]]), carry[1])
            return (h, c), h

        return jax.lax.scan(step, (zeros, zeros), xs)[1]

    g = zs + run(params["fwd"], zs) + run(params["bwd"], zs[::-1])[::-1]

    def read(x: jax.Array) -> jax.Array:
        def step(carry, _):
            h, c = carry
            r = jax.nn.softmax(g @ h) @ g
            h_hat, c = _lstm_cell(params["att"], jnp.concatenate([x, h, r]), c)
            return (h_hat + x, c), None

        return jax.lax.scan(step, (zeros, zeros), None, read_steps)[0][0]

    return jax.vmap(read)(zq), g


def relation_net(
    embed: Model,
    ways: int,
    features: int,
    *,
    hidden: int = 8,
    module: str = "mlp",
    optimizer: optax.GradientTransformation | None = None,
    task_map: str = "auto",
) -> MetaLearner:
    """Relation networks: a relation module scores each (query, class) pair in [0, 1] from
    the query's embedding concatenated with the class's (the sum of its shots' embeddings);
    trained by MSE against the one-hot label, as the paper. `module="mlp"`: embeddings of
    `features` outputs, an MLP 2F-hidden-1; `module="conv"`: the paper's convolutional
    module (`RelationModule`, `hidden` units in its head) on feature maps of `features`
    channels (e.g. `conv4(None, pool=False)`), the pair concatenated along channels."""
    _check_ways("relation_net", ways)
    if not isinstance(features, int) or features < 1:
        raise ValueError(f"relation_net: `features` must be an int >= 1; got {features!r}")
    if module not in ("mlp", "conv"):
        raise ValueError(f"relation_net: `module` must be 'mlp' or 'conv'; got {module!r}")
    net = (
        mlp((2 * features, hidden, 1))
        if module == "mlp"
        else relation_module(2 * features, channels=64, hidden=hidden)
    )

    def compare(extra: Any, zq: jax.Array, zs: jax.Array, onehot: jax.Array) -> jax.Array:
        if zq.shape[-1] != features or (module == "conv") != (zq.ndim == 4):
            raise ValueError(
                f"relation_net(module={module!r}): the embedding must give "
                f"{'[N, H, W, features]' if module == 'conv' else '[N, features]'} with "
                f"features={features}; got {zq.shape}"
            )
        # [W, ...]: the sum of each class's shot embeddings (maps)
        classes = jnp.tensordot(onehot.T, zs, axes=1)
        q = jnp.broadcast_to(zq[:, None], (zq.shape[0], ways, *zq.shape[1:]))
        c = jnp.broadcast_to(classes[None], q.shape)
        pairs = jnp.concatenate([q, c], -1).reshape(-1, *zq.shape[1:-1], 2 * features)
        return jax.nn.sigmoid(net.apply(extra, pairs)).reshape(zq.shape[0], ways)

    def mse_onehot(scores: jax.Array, labels: jax.Array) -> tuple[jax.Array, jax.Array]:
        target = jax.nn.one_hot(labels, ways)
        return jnp.mean(jnp.square(scores - target)), jnp.mean(jnp.argmax(scores, -1) == labels)

    return metric_learner(
        "relation_net",
        embed,
        ways,
        compare,
        extra=net,
        loss=mse_onehot,
        optimizer=optimizer,
        task_map=task_map,
    )
