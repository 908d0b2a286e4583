"""One mechanism for gradient-based meta-learning: an inner loop adapts a masked part of
the parameters to a task; an outer loop updates a masked part of the initialisation.

MAML, first-order MAML, Reptile, ANIL, MetaNAS and T-NAS differ only in
- `adapt`: which parameters the inner loop changes (all; ANIL: the head; MetaNAS: w and α),
- `meta`: which parameters the outer loop learns (all; T-NAS: α only, w is a fixed init),
- `outer`: how the outer gradient is formed — `"maml"` differentiates through the inner
  loop (second order), `"fomaml"` stops the gradient at the inner updates, `"reptile"`
  uses (θ - θ_task) averaged over the task batch.
Masks are resolved once in Python into per-leaf booleans, so the compiled step only
differentiates what it must.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, cast

import jax
import jax.numpy as jnp
import optax

from jnas._checks import check_positive
from jnas._execution import MAX_UNROLL, TASK_MAPS, UNROLL_BUDGET, map_tasks
from jnas.meta._models import Model
from jnas.meta._tasks import Task
from jnas.nn import batch_statistics_from

LossFn = Callable[[jax.Array, jax.Array], tuple[jax.Array, jax.Array]]  # -> (loss, metric)
MaskSpec = Any  # None (everything), a predicate on "a/b/c" leaf paths, or a bool pytree prefix
OUTER = ("maml", "fomaml", "reptile")


def cross_entropy(logits: jax.Array, labels: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(mean cross-entropy, accuracy) for integer labels."""
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
    return loss, jnp.mean(jnp.argmax(logits, -1) == labels)


def mse(pred: jax.Array, target: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(mean squared error, the same) for regression."""
    loss = jnp.mean(jnp.square(pred - target))
    return loss, loss


LOSSES: dict[str, LossFn] = {"cross_entropy": cross_entropy, "mse": mse}


class MetaState(NamedTuple):
    """The meta-learner's state: the initialisation θ (leaves outside the `meta` mask stay
    at their random init), the outer optimiser's state and the step count."""

    params: Any
    opt_state: Any
    step: jax.Array


class MetaLearner(NamedTuple):
    """A meta-learning method as pure functions.

    - `init(key) -> MetaState`
    - `step(state, tasks) -> (state, metrics)`: one outer update on a task batch; metrics
      are float32 scalars `loss` and `metric` (accuracy or MSE) on the query sets after
      adaptation.
    - `adapt(params, task, steps=None, unroll=False) -> params`: the inner loop on one
      task's support set (`unroll`: unroll it whatever its length).
    - `evaluate(params, tasks, steps=None, norm="transductive") -> dict`: per task, query
      `loss_before`, `metric_before` (at θ) and `loss_after`, `metric_after` (after
      adapting).
    - `predict(params, support_x, support_y, query_x, steps=None, norm="transductive")`:
      the query outputs (logits) after adapting to the support set.

    `norm` is how batch norm sees the query at inference: `"transductive"` (the query
    batch's own statistics, as MAML's and ProtoNets' papers evaluate) or `"support"` (the
    support set's statistics, so a query's prediction does not depend on which other
    queries share its batch).
    """

    init: Callable[[jax.Array], MetaState]
    step: Callable[[MetaState, Task], tuple[MetaState, dict]]
    adapt: Callable[..., Any]
    evaluate: Callable[..., dict]
    predict: Callable[..., jax.Array]


NORMS = ("transductive", "support")


def check_norm(where: str, norm: str) -> None:
    if norm not in NORMS:
        raise ValueError(f"{where}: `norm` must be one of {NORMS}; got {norm!r}")


def query_outputs(apply: Callable, params: Any, support_x: Any, query_x: Any, norm: str) -> Any:
    """`apply(params, query_x)` with batch norm's statistics from the query batch
    (`"transductive"`) or from the support set (`"support"`: the network runs on
    `[support; query]` with statistics from the support rows)."""
    if norm == "transductive":
        return apply(params, query_x)
    n = support_x.shape[0]
    with batch_statistics_from(n):
        return apply(params, jnp.concatenate([support_x, query_x]))[n:]


def as_task(support_x: Any, support_y: Any, query_x: Any) -> Task:
    """A task of a support set and unlabelled query inputs (zero placeholder labels)."""
    support_y = jnp.asarray(support_y)
    query_y = jnp.zeros((query_x.shape[0], *support_y.shape[1:]), support_y.dtype)
    return Task(jnp.asarray(support_x), support_y, jnp.asarray(query_x), query_y)


def leaf_paths(params: Any) -> list[str]:
    """Every leaf's path as "a/b/c" (the names masks and learning rates select by)."""
    return [
        jax.tree_util.keystr(path, simple=True, separator="/")
        for path, _ in jax.tree_util.tree_flatten_with_path(params)[0]
    ]


def per_leaf(spec: Any, params: Any, where: str) -> list[Any]:
    """`spec` (a predicate on leaf paths, or a pytree prefix of `params`) as one value per
    leaf of `params`."""
    if callable(spec):
        return [spec(p) for p in leaf_paths(params)]
    try:
        full = jax.tree.map(lambda v, sub: jax.tree.map(lambda _: v, sub), spec, params)
    except (ValueError, TypeError) as e:
        raise ValueError(
            f"{where} must be a predicate on leaf paths or a pytree prefix of "
            f"the parameters (leaf paths: {leaf_paths(params)[:6]}...): {e}"
        ) from e
    return jax.tree.leaves(full)


class Partition(NamedTuple):
    """A static split of a pytree's leaves into selected / the rest, and back."""

    mask: tuple[bool, ...]
    treedef: Any

    def split(self, tree: Any) -> tuple[list, list]:
        leaves = self.treedef.flatten_up_to(tree)
        return (
            [x for x, m in zip(leaves, self.mask, strict=True) if m],
            [x for x, m in zip(leaves, self.mask, strict=True) if not m],
        )

    def merge(self, selected: Sequence, rest: Sequence) -> Any:
        sel, oth = iter(selected), iter(rest)
        return self.treedef.unflatten([next(sel) if m else next(oth) for m in self.mask])


def partition(spec: MaskSpec, params: Any, where: str) -> Partition:
    mask = [True] * len(jax.tree.leaves(params)) if spec is None else per_leaf(spec, params, where)
    if not all(isinstance(m, bool) for m in mask):
        raise ValueError(
            f"{where} must select leaves with Python bools; got {set(map(type, mask))}"
        )
    if not any(mask):
        raise ValueError(f"{where} selects no parameters (leaf paths: {leaf_paths(params)[:6]}...)")
    return Partition(tuple(mask), jax.tree.structure(params))


def interleave(x: jax.Array, y: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Examples reordered so that, for integer labels, the first example of every class
    comes first (in label order), then every class's second, and so on: any run of
    consecutive examples is as class-balanced as it can be. Other labels keep their order."""
    if not jnp.issubdtype(y.dtype, jnp.integer):
        return x, y
    rank = jnp.sum(jnp.tril(y[:, None] == y[None, :], -1), axis=1)  # earlier same-class
    order = jnp.lexsort((y, rank))
    return x[order], y[order]


class InnerLoop(NamedTuple):
    """What a task adapts, and how: the inner part of every meta-learner.

    steps: gradient steps on the support set (`eval_steps` at evaluation, default the
      same); one `lax.scan`, unrolled up to `MAX_UNROLL` steps.
    lr: plain SGD's step size, a float or a pytree prefix of the parameters (e.g.
      `{"w": 0.1, "alpha": 0.5}`); default 0.01. Or `optimizer`, an optax transformation
      started afresh on every task (it sees the parameter pytree with the leaves it may
      not adapt set to None, so `optax.multi_transform` can give w and α their own rules;
      for second-order MAML through Adam give it `eps_root > 0`).
    adapt: the adapted leaves (None: all; a predicate on "a/b/c" paths or a bool pytree
      prefix; ANIL: the head; MetaNAS: w and α).
    train_on: `"support"`, or `"all"` (Reptile only, whose outer step needs no query set):
      support and query examples together during meta-training, classes interleaved.
    batch: each inner step a minibatch of that many consecutive examples, cycling
      (Reptile's "train shots"). Evaluation always adapts on the support set, full batch.
    """

    steps: int = 1
    lr: Any = None
    optimizer: optax.GradientTransformation | None = None
    adapt: MaskSpec = None
    eval_steps: int | None = None
    train_on: str = "support"
    batch: int | None = None


class OuterLoop(NamedTuple):
    """How the initialisation learns from the adapted tasks: the outer part.

    rule: `"maml"` differentiates through the inner loop (exact, second order),
      `"fomaml"` stops the gradient at the inner updates, `"reptile"` steps along
      (θ - θ_task) averaged over the task batch.
    optimizer: default Adam 1e-3 (MAML) or SGD 1.0 (Reptile's meta step size); it sees
      the parameter pytree with the leaves it does not learn set to None (MetaNAS:
      `optax.multi_transform` with 1.0 for w and 0.6 for α).
    meta: the meta-learned leaves (None: all; T-NAS: α only, w a fixed random init).
    """

    rule: str = "maml"
    optimizer: optax.GradientTransformation | None = None
    meta: MaskSpec = None


def _check_loss(where: str, loss: Any) -> LossFn:
    if callable(loss):
        return cast(LossFn, loss)
    if loss not in LOSSES:
        raise ValueError(
            f"{where}: `loss` must be one of {tuple(LOSSES)} or a callable "
            f"(out, y) -> (loss, metric); got {loss!r}"
        )
    return LOSSES[loss]


def _check_inner(
    where: str, inner: InnerLoop, outer: OuterLoop, shape: Any
) -> tuple[Partition, list]:
    """(the adapted leaves, their SGD step sizes), or a clear error."""
    check_positive(where, inner_steps=inner.steps)
    if inner.eval_steps is not None:
        check_positive(where, eval_inner_steps=inner.eval_steps)
    adapt_part = partition(inner.adapt, shape, f"{where}: `adapt`")
    if inner.optimizer is not None and inner.lr is not None:
        raise ValueError(f"{where}: give `inner_lr` (SGD) or `inner_optimizer`, not both")
    lrs = per_leaf(0.01 if inner.lr is None else inner.lr, shape, f"{where}: `inner_lr`")
    if not all(isinstance(lr, int | float) and lr > 0 for lr in lrs):
        raise ValueError(f"{where}: `inner_lr` must give positive floats; got {inner.lr!r}")
    if inner.train_on not in ("support", "all"):
        raise ValueError(f"{where}: `train_on` must be 'support' or 'all'; got {inner.train_on!r}")
    if inner.train_on == "all" and outer.rule != "reptile":
        raise ValueError(
            f"{where}: `train_on='all'` needs outer='reptile' (MAML's outer "
            "loss is measured on the query set, so it cannot train on it)"
        )
    if inner.batch is not None and (not isinstance(inner.batch, int) or inner.batch < 1):
        raise ValueError(f"{where}: `inner_batch` must be None or an int >= 1; got {inner.batch!r}")
    return adapt_part, [lr for lr, m in zip(lrs, adapt_part.mask, strict=True) if m]


_INNER_OPTIONS = {
    "inner_steps": "steps",
    "inner_lr": "lr",
    "inner_optimizer": "optimizer",
    "adapt": "adapt",
    "eval_inner_steps": "eval_steps",
    "train_on": "train_on",
    "inner_batch": "batch",
}
_OUTER_OPTIONS = {"outer": "rule", "outer_optimizer": "optimizer", "meta": "meta"}


def loops(**options: Any) -> tuple[InnerLoop, OuterLoop, dict]:
    """(InnerLoop, OuterLoop, the rest) from the flat keyword options the method factories
    take (`inner_lr`, `inner_steps`, `outer`, `outer_optimizer`, ...)."""
    inner = {_INNER_OPTIONS[k]: options.pop(k) for k in list(options) if k in _INNER_OPTIONS}
    outer = {_OUTER_OPTIONS[k]: options.pop(k) for k in list(options) if k in _OUTER_OPTIONS}
    return InnerLoop(**inner), OuterLoop(**outer), options


def meta_learner(
    model: Model,
    inner: InnerLoop | None = None,
    outer: OuterLoop | None = None,
    *,
    loss: str | LossFn = "cross_entropy",
    task_map: str = "auto",
    name: str = "meta_learner",
) -> MetaLearner:
    """The shared mechanism behind `maml`, `fomaml`, `reptile`, `anil`, `metanas`, `tnas`:
    an `InnerLoop` (what adapts, with which optimiser, how many steps) and an `OuterLoop`
    (MAML exact / first order / Reptile, which leaves are meta-learned, the optimiser);
    the defaults are one SGD step of 0.01 on everything and exact MAML with Adam 1e-3.
    `loss`: `"cross_entropy"`, `"mse"` or `(out, y) -> (loss, metric)`; `task_map` says
    how a task batch is mapped (see `map_tasks`).
    """
    inner, outer = inner or InnerLoop(), outer or OuterLoop()
    loss_fn = _check_loss(name, loss)
    if outer.rule not in OUTER:
        raise ValueError(f"{name}: `outer` must be one of {OUTER}; got {outer.rule!r}")
    if task_map not in TASK_MAPS:
        raise ValueError(f"{name}: `task_map` must be one of {TASK_MAPS}; got {task_map!r}")
    shape = jax.eval_shape(model.init, jax.random.key(0))
    adapt_part, lrs = _check_inner(name, inner, outer, shape)
    meta_part = partition(outer.meta, shape, f"{name}: `meta`")
    inner_steps, inner_optimizer, inner_batch = inner.steps, inner.optimizer, inner.batch
    eval_steps = inner_steps if inner.eval_steps is None else inner.eval_steps
    first_order = outer.rule == "fomaml"
    outer_optimizer = outer.optimizer or (
        optax.sgd(1.0) if outer.rule == "reptile" else optax.adam(1e-3)
    )

    def task_loss(params: Any, x: jax.Array, y: jax.Array) -> tuple[jax.Array, jax.Array]:
        return loss_fn(model.apply(params, x), y)

    def meta_view(theta: list) -> Any:
        # the outer optimiser sees the parameter pytree, leaves it does not learn None
        return meta_part.merge(theta, [None] * (len(meta_part.mask) - len(theta)))

    def inner_update(sel: list, rest: list, grads: list, opt_state: Any) -> tuple[list, Any]:
        if inner_optimizer is None:
            return [p - lr * g for p, g, lr in zip(sel, grads, lrs, strict=True)], opt_state
        absent = [None] * len(rest)
        updates, opt_state = inner_optimizer.update(
            adapt_part.merge(grads, absent), opt_state, adapt_part.merge(sel, absent)
        )
        updates = adapt_part.split(updates)[0]
        return [p + u for p, u in zip(sel, updates, strict=True)], opt_state

    def adapt_on(
        params: Any, x: jax.Array, y: jax.Array, steps: int, batch: int | None, unroll: bool
    ) -> Any:
        sel, rest = adapt_part.split(params)
        opt_state = (
            None
            if inner_optimizer is None
            else inner_optimizer.init(adapt_part.merge(sel, [None] * len(rest)))
        )
        n = x.shape[0]

        def inner(carry, i):
            sel, opt_state = carry
            if batch is None:
                xb, yb = x, y
            else:
                idx = (i * batch + jnp.arange(batch)) % n
                xb, yb = x[idx], y[idx]
            grads = jax.grad(lambda s: task_loss(adapt_part.merge(s, rest), xb, yb)[0])(sel)
            if first_order:
                grads = jax.lax.stop_gradient(grads)
            return inner_update(sel, rest, grads, opt_state), None

        (sel, _), _ = jax.lax.scan(
            inner, (sel, opt_state), jnp.arange(steps), unroll=unroll or steps <= MAX_UNROLL
        )
        return adapt_part.merge(sel, rest)

    def adapt_fn(params: Any, task: Task, steps: int | None = None, unroll: bool = False) -> Any:
        return adapt_on(
            params,
            task.support_x,
            task.support_y,
            inner_steps if steps is None else steps,
            None,
            unroll,
        )

    def adapt_train(params: Any, task: Task) -> Any:
        if inner.train_on == "support":
            return adapt_on(params, task.support_x, task.support_y, inner_steps, inner_batch, False)
        x, y = interleave(
            jnp.concatenate([task.support_x, task.query_x]),
            jnp.concatenate([task.support_y, task.query_y]),
        )
        return adapt_on(params, x, y, inner_steps, inner_batch, False)

    def init(key: jax.Array) -> MetaState:
        params = model.init(key)
        return MetaState(
            params,
            outer_optimizer.init(meta_view(meta_part.split(params)[0])),
            jnp.zeros((), jnp.int32),
        )

    def query(params: Any, task: Task) -> tuple[jax.Array, jax.Array]:
        return task_loss(adapt_train(params, task), task.query_x, task.query_y)

    def step(state: MetaState, tasks: Task) -> tuple[MetaState, dict]:
        theta, fixed = meta_part.split(state.params)
        if outer.rule == "reptile":

            def one(task):
                adapted = adapt_train(state.params, task)
                return (meta_part.split(adapted)[0], task_loss(adapted, task.query_x, task.query_y))

            adapted, (loss, metric) = map_tasks(one, tasks, task_map)
            grads = [t - a.mean(0) for t, a in zip(theta, adapted, strict=True)]
            loss, metric = loss.mean(), metric.mean()
        else:

            def outer_loss(theta):
                params = meta_part.merge(theta, fixed)
                losses, metrics = map_tasks(lambda t: query(params, t), tasks, task_map)
                return losses.mean(), metrics.mean()

            (loss, metric), grads = jax.value_and_grad(outer_loss, has_aux=True)(theta)
        updates, opt_state = outer_optimizer.update(
            meta_view(grads), state.opt_state, meta_view(theta)
        )
        theta = cast(list, optax.apply_updates(theta, meta_part.split(updates)[0]))
        return (
            MetaState(meta_part.merge(theta, fixed), opt_state, state.step + 1),
            {"loss": loss, "metric": metric},
        )

    def on_query(params: Any, task: Task, norm: str) -> tuple[jax.Array, jax.Array]:
        out = query_outputs(model.apply, params, task.support_x, task.query_x, norm)
        return loss_fn(out, task.query_y)

    def evaluate(
        params: Any, tasks: Task, steps: int | None = None, norm: str = "transductive"
    ) -> dict:
        check_norm(name, norm)
        n = eval_steps if steps is None else steps
        unroll = n * jax.tree.leaves(tasks)[0].shape[0] <= UNROLL_BUDGET

        def one(task):
            before = on_query(params, task, norm)
            after = on_query(adapt_fn(params, task, n, unroll), task, norm)
            return {
                "loss_before": before[0],
                "metric_before": before[1],
                "loss_after": after[0],
                "metric_after": after[1],
            }

        return map_tasks(one, tasks, task_map)

    def predict(
        params: Any,
        support_x: jax.Array,
        support_y: jax.Array,
        query_x: jax.Array,
        steps: int | None = None,
        norm: str = "transductive",
    ) -> jax.Array:
        check_norm(name, norm)
        task = as_task(support_x, support_y, query_x)
        adapted = adapt_fn(params, task, eval_steps if steps is None else steps)
        return query_outputs(model.apply, adapted, task.support_x, task.query_x, norm)

    return MetaLearner(init, step, adapt_fn, evaluate, predict)
