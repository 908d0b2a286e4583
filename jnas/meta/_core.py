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
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jnas._checks import check_positive
from jnas.meta._models import Model
from jnas.meta._tasks import Task

LossFn = Callable[[jax.Array, jax.Array], tuple[jax.Array, jax.Array]]  # -> (loss, metric)
MaskSpec = Any  # None (everything), a predicate on "a/b/c" leaf paths, or a bool pytree prefix
OUTER = ("maml", "fomaml", "reptile")
TASK_MAPS = ("auto", "vmap", "unroll")
# Inner loops are unrolled when they have at most MAX_UNROLL steps (XLA fuses across
# MAML's 1-5 steps) or, at evaluation, when all tasks of the program together have at most
# UNROLL_BUDGET steps. On XLA:CPU a convolution's gradient inside a loop runs 10-40x
# slower than unrolled (jax-ml/jax#12868: a conv4 step on 25 images, 60 ms vs 6 ms), but
# unrolling costs compile time and memory (Reptile's 50 test steps over 20 tasks: > 22 GB).
MAX_UNROLL = 5
UNROLL_BUDGET = 64


def map_tasks(fn: Callable[[Task], Any], tasks: Task, mode: str = "auto") -> Any:
    """`fn` over a task batch's leading axis, outputs stacked.

    `"vmap"` batches the tasks (one program, best on GPU/TPU). On XLA:CPU a convolution
    whose kernel is batched (each task has its own adapted weights) runs ~10x slower than
    the same work task by task, and a `lax.map` loop does no better (jax-ml/jax#12868), so
    `"auto"` unrolls a Python loop over the tasks inside the compiled program on CPU
    (measured: 8 Omniglot MAML tasks 2.2 s vmapped vs 0.25 s unrolled; compile time grows
    with the batch). Both give the same values.
    """
    if mode not in TASK_MAPS:
        raise ValueError(f"`task_map` must be one of {TASK_MAPS}; got {mode!r}")
    if mode == "auto":
        mode = "unroll" if jax.default_backend() == "cpu" else "vmap"
    if mode == "vmap":
        return jax.vmap(fn)(tasks)
    n = jax.tree.leaves(tasks)[0].shape[0]
    outs = [fn(jax.tree.map(lambda a, i=i: a[i], tasks)) for i in range(n)]
    return jax.tree.map(lambda *o: jnp.stack(o), *outs)


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
    - `evaluate(params, tasks, steps=None) -> dict`: per task, query `loss_before`,
      `metric_before` (at θ) and `loss_after`, `metric_after` (after adapting).
    """

    init: Callable[[jax.Array], MetaState]
    step: Callable[[MetaState, Task], tuple[MetaState, dict]]
    adapt: Callable[..., Any]
    evaluate: Callable[..., dict]


def leaf_paths(params: Any) -> list[str]:
    """Every leaf's path as "a/b/c" (the names masks and learning rates select by)."""
    return [jax.tree_util.keystr(path, simple=True, separator="/")
            for path, _ in jax.tree_util.tree_flatten_with_path(params)[0]]


def per_leaf(spec: Any, params: Any, where: str) -> list[Any]:
    """`spec` (a predicate on leaf paths, or a pytree prefix of `params`) as one value per
    leaf of `params`."""
    if callable(spec):
        return [spec(p) for p in leaf_paths(params)]
    try:
        full = jax.tree.map(lambda v, sub: jax.tree.map(lambda _: v, sub), spec, params)
    except (ValueError, TypeError) as e:
        raise ValueError(f"{where} must be a predicate on leaf paths or a pytree prefix of "
                         f"the parameters (leaf paths: {leaf_paths(params)[:6]}...): {e}"
                         ) from e
    return jax.tree.leaves(full)


class Partition(NamedTuple):
    """A static split of a pytree's leaves into selected / the rest, and back."""

    mask: tuple[bool, ...]
    treedef: Any

    def split(self, tree: Any) -> tuple[list, list]:
        leaves = self.treedef.flatten_up_to(tree)
        return ([x for x, m in zip(leaves, self.mask, strict=True) if m],
                [x for x, m in zip(leaves, self.mask, strict=True) if not m])

    def merge(self, selected: Sequence, rest: Sequence) -> Any:
        sel, oth = iter(selected), iter(rest)
        return self.treedef.unflatten([next(sel) if m else next(oth) for m in self.mask])


def partition(spec: MaskSpec, params: Any, where: str) -> Partition:
    mask = [True] * len(jax.tree.leaves(params)) if spec is None else per_leaf(spec, params,
                                                                                where)
    if not all(isinstance(m, bool) for m in mask):
        raise ValueError(f"{where} must select leaves with Python bools; got {set(map(type, mask))}")
    if not any(mask):
        raise ValueError(f"{where} selects no parameters (leaf paths: "
                         f"{leaf_paths(params)[:6]}...)")
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


def _check(where: str, inner_steps: int, outer: str, loss: Any) -> LossFn:
    check_positive(where, inner_steps=inner_steps)
    if outer not in OUTER:
        raise ValueError(f"{where}: `outer` must be one of {OUTER}; got {outer!r}")
    if callable(loss):
        return loss
    if loss not in LOSSES:
        raise ValueError(f"{where}: `loss` must be one of {tuple(LOSSES)} or a callable "
                         f"(out, y) -> (loss, metric); got {loss!r}")
    return LOSSES[loss]


def meta_learner(model: Model, *, loss: str | LossFn = "cross_entropy",
                 inner_lr: Any = None, inner_steps: int = 1, eval_inner_steps: int | None = None,
                 inner_optimizer: optax.GradientTransformation | None = None,
                 train_on: str = "support", inner_batch: int | None = None,
                 outer: str = "maml", outer_optimizer: optax.GradientTransformation | None = None,
                 adapt: MaskSpec = None, meta: MaskSpec = None, task_map: str = "auto",
                 name: str = "meta_learner") -> MetaLearner:
    """The shared mechanism behind `maml`, `fomaml`, `reptile`, `anil`, `metanas`, `tnas`.

    The inner loop is `inner_steps` steps on the support set (`eval_inner_steps` at
    evaluation, default the same), one `lax.scan` (unrolled up to `MAX_UNROLL` steps):
    plain SGD with `inner_lr` (a float or a pytree prefix of the parameters, e.g.
    `{"w": 0.1, "alpha": 0.5}`; default 0.01), or `inner_optimizer`, an optax
    transformation started afresh on every task (it sees the parameter pytree with the
    leaves it may not adapt set to None, so `optax.multi_transform` can give w and α their
    own rules; for second-order MAML through Adam give it `eps_root > 0`).
    `train_on="all"` (Reptile only, whose outer step needs no query set) adapts on the
    support and query examples together during meta-training, classes interleaved, and
    `inner_batch` makes each inner step a minibatch of that many consecutive examples,
    cycling: Reptile's "train shots" (with 5 ways, batch 10 and 5 steps every step sees
    two new examples per class, 10 per class in all). Evaluation always adapts on the
    support set, full batch.
    `adapt` / `meta` choose the adapted / meta-learned leaves (see the module doc).
    `outer_optimizer` defaults to Adam 1e-3 (MAML) or SGD 1.0 (Reptile's meta step size);
    like `inner_optimizer` it sees the parameter pytree with the leaves it does not learn
    set to None (MetaNAS: `optax.multi_transform` with 1.0 for w and 0.6 for α).
    `task_map` says how a task batch is mapped (see `map_tasks`).
    """
    loss_fn = _check(name, inner_steps, outer, loss)
    eval_steps = inner_steps if eval_inner_steps is None else eval_inner_steps
    _check(name, eval_steps, outer, loss_fn)
    shape = jax.eval_shape(model.init, jax.random.key(0))
    adapt_part = partition(adapt, shape, f"{name}: `adapt`")
    meta_part = partition(meta, shape, f"{name}: `meta`")
    if inner_optimizer is not None and inner_lr is not None:
        raise ValueError(f"{name}: give `inner_lr` (SGD) or `inner_optimizer`, not both")
    lrs = per_leaf(0.01 if inner_lr is None else inner_lr, shape, f"{name}: `inner_lr`")
    if not all(isinstance(lr, int | float) and lr > 0 for lr in lrs):
        raise ValueError(f"{name}: `inner_lr` must give positive floats; got {inner_lr!r}")
    lrs = [lr for lr, m in zip(lrs, adapt_part.mask, strict=True) if m]
    if train_on not in ("support", "all"):
        raise ValueError(f"{name}: `train_on` must be 'support' or 'all'; got {train_on!r}")
    if train_on == "all" and outer != "reptile":
        raise ValueError(f"{name}: `train_on='all'` needs outer='reptile' (MAML's outer "
                         "loss is measured on the query set, so it cannot train on it)")
    if inner_batch is not None and (not isinstance(inner_batch, int) or inner_batch < 1):
        raise ValueError(f"{name}: `inner_batch` must be None or an int >= 1; got "
                         f"{inner_batch!r}")
    first_order = outer == "fomaml"
    if task_map not in TASK_MAPS:
        raise ValueError(f"{name}: `task_map` must be one of {TASK_MAPS}; got {task_map!r}")
    if outer_optimizer is None:
        outer_optimizer = optax.sgd(1.0) if outer == "reptile" else optax.adam(1e-3)

    def task_loss(params: Any, x: jax.Array, y: jax.Array) -> tuple[jax.Array, jax.Array]:
        return loss_fn(model.apply(params, x), y)

    def meta_view(theta: list) -> Any:
        # the outer optimiser sees the parameter pytree, leaves it does not learn None
        return meta_part.merge(theta, [None] * (len(meta_part.mask) - len(theta)))

    def inner_update(sel: list, rest: list, grads: list, opt_state: Any) -> tuple[list, Any]:
        if inner_optimizer is None:
            return [p - lr * g for p, g, lr in zip(sel, grads, lrs, strict=True)], opt_state
        absent = [None] * len(rest)
        updates, opt_state = inner_optimizer.update(adapt_part.merge(grads, absent),
                                                    opt_state, adapt_part.merge(sel, absent))
        updates = adapt_part.split(updates)[0]
        return [p + u for p, u in zip(sel, updates, strict=True)], opt_state

    def adapt_on(params: Any, x: jax.Array, y: jax.Array, steps: int, batch: int | None,
                 unroll: bool) -> Any:
        sel, rest = adapt_part.split(params)
        opt_state = (None if inner_optimizer is None else
                     inner_optimizer.init(adapt_part.merge(sel, [None] * len(rest))))
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

        (sel, _), _ = jax.lax.scan(inner, (sel, opt_state), jnp.arange(steps),
                                   unroll=unroll or steps <= MAX_UNROLL)
        return adapt_part.merge(sel, rest)

    def adapt_fn(params: Any, task: Task, steps: int | None = None,
                 unroll: bool = False) -> Any:
        return adapt_on(params, task.support_x, task.support_y,
                        inner_steps if steps is None else steps, None, unroll)

    def adapt_train(params: Any, task: Task) -> Any:
        if train_on == "support":
            return adapt_on(params, task.support_x, task.support_y, inner_steps, inner_batch,
                            False)
        x, y = interleave(jnp.concatenate([task.support_x, task.query_x]),
                          jnp.concatenate([task.support_y, task.query_y]))
        return adapt_on(params, x, y, inner_steps, inner_batch, False)

    def init(key: jax.Array) -> MetaState:
        params = model.init(key)
        return MetaState(params, outer_optimizer.init(meta_view(meta_part.split(params)[0])),
                         jnp.zeros((), jnp.int32))

    def query(params: Any, task: Task) -> tuple[jax.Array, jax.Array]:
        return task_loss(adapt_train(params, task), task.query_x, task.query_y)

    def step(state: MetaState, tasks: Task) -> tuple[MetaState, dict]:
        theta, fixed = meta_part.split(state.params)
        if outer == "reptile":
            def one(task):
                adapted = adapt_train(state.params, task)
                return (meta_part.split(adapted)[0],
                        task_loss(adapted, task.query_x, task.query_y))
            adapted, (loss, metric) = map_tasks(one, tasks, task_map)
            grads = [t - a.mean(0) for t, a in zip(theta, adapted, strict=True)]
            loss, metric = loss.mean(), metric.mean()
        else:
            def outer_loss(theta):
                params = meta_part.merge(theta, fixed)
                losses, metrics = map_tasks(lambda t: query(params, t), tasks, task_map)
                return losses.mean(), metrics.mean()
            (loss, metric), grads = jax.value_and_grad(outer_loss, has_aux=True)(theta)
        updates, opt_state = outer_optimizer.update(meta_view(grads), state.opt_state,
                                                    meta_view(theta))
        theta = optax.apply_updates(theta, meta_part.split(updates)[0])
        return (MetaState(meta_part.merge(theta, fixed), opt_state, state.step + 1),
                {"loss": loss, "metric": metric})

    def evaluate(params: Any, tasks: Task, steps: int | None = None) -> dict:
        n = eval_steps if steps is None else steps
        unroll = n * jax.tree.leaves(tasks)[0].shape[0] <= UNROLL_BUDGET

        def one(task):
            before = task_loss(params, task.query_x, task.query_y)
            after = task_loss(adapt_fn(params, task, n, unroll), task.query_x, task.query_y)
            return {"loss_before": before[0], "metric_before": before[1],
                    "loss_after": after[0], "metric_after": after[1]}
        return map_tasks(one, tasks, task_map)

    return MetaLearner(init, step, adapt_fn, evaluate)
