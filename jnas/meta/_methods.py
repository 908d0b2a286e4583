"""MAML, first-order MAML, Reptile, ANIL, MetaNAS and T-NAS: `meta_learner` with masks.

Each factory fixes what makes the method itself (its `OuterLoop` rule, which leaves adapt
or are meta-learned) and takes the rest as flat keywords (`inner_lr`, `inner_optimizer`,
`eval_inner_steps`, `outer_optimizer`, `loss`, `task_map`, ...), which `jnas.meta.loops`
sorts into the `InnerLoop` and `OuterLoop` that `jnas.meta.meta_learner` takes.
"""

from __future__ import annotations

from typing import Any

import jax

from jnas.meta._core import MetaLearner, loops, meta_learner
from jnas.meta._models import Model


def _learner(model: Model, name: str, **options: Any) -> MetaLearner:
    inner, outer, rest = loops(**options)
    return meta_learner(model, inner, outer, name=name, **rest)


def maml(
    model: Model, *, inner_lr: Any = None, inner_steps: int = 1, **options: Any
) -> MetaLearner:
    """MAML (Finn, Abbeel & Levine 2017): the exact second-order meta-gradient, through
    `inner_steps` SGD steps on each task's support set; Adam 1e-3 outer optimiser."""
    return _learner(
        model, "maml", inner_lr=inner_lr, inner_steps=inner_steps, outer="maml", **options
    )


def fomaml(
    model: Model, *, inner_lr: Any = None, inner_steps: int = 1, **options: Any
) -> MetaLearner:
    """First-order MAML (Finn et al. 2017, sec. 5.2): the query gradient at the adapted
    parameters, the inner updates treated as constants."""
    return _learner(
        model, "fomaml", inner_lr=inner_lr, inner_steps=inner_steps, outer="fomaml", **options
    )


def reptile(
    model: Model, *, inner_lr: Any = None, inner_steps: int = 5, **options: Any
) -> MetaLearner:
    """Reptile (Nichol, Achiam & Schulman 2018): move θ towards the task-adapted weights,
    θ <- θ + ε mean(φ_task - θ); ε is the outer SGD learning rate (default 1.0). The
    paper's Omniglot setting is `inner_optimizer=optax.adam(1e-3, b1=0.0)`,
    `train_on="all"`, `inner_batch=10`, `inner_steps=5` (see `meta_learner`)."""
    return _learner(
        model, "reptile", inner_lr=inner_lr, inner_steps=inner_steps, outer="reptile", **options
    )


def anil(
    model: Model,
    *,
    head: str = "head",
    inner_lr: Any = None,
    inner_steps: int = 1,
    outer: str = "maml",
    **options: Any,
) -> MetaLearner:
    """ANIL (Raghu et al. 2020): MAML whose inner loop adapts only the head — the leaves
    whose path is under `head` (e.g. `"head"` for `conv4`, `"layers/2"` for a 3-layer
    `mlp`) — while the body is meta-learned."""
    return _learner(
        model,
        "anil",
        inner_lr=inner_lr,
        inner_steps=inner_steps,
        outer=outer,
        adapt=lambda path: path.startswith(head + "/"),
        **options,
    )


def _check_supernet(where: str, model: Model) -> None:
    shape = jax.eval_shape(model.init, jax.random.key(0))
    if not (isinstance(shape, dict) and set(shape) == {"w", "alpha"}):
        raise ValueError(
            f"{where} needs a model whose params are {{'w', 'alpha'}} "
            "(see `jnas.meta.supernet_model`)"
        )


def _supernet_lr(inner_lr: Any, options: dict) -> Any:
    """0.1 for w and α unless `inner_lr` or an `inner_optimizer` is given."""
    if inner_lr is None and options.get("inner_optimizer") is None:
        return {"w": 0.1, "alpha": 0.1}
    return inner_lr


def metanas(
    model: Model,
    *,
    inner_lr: Any = None,
    inner_steps: int = 1,
    outer: str = "reptile",
    **options: Any,
) -> MetaLearner:
    """MetaNAS (Elsken et al. 2020): a DARTS supernet whose weights w and architecture α
    are both meta-learned; the inner loop adapts (w, α) to each task by gradient steps on
    its support set (first-order DARTS with the support set as both splits, as few-shot
    tasks have no separate validation set). `outer="reptile"` is the paper's choice;
    `"maml"` gives the exact meta-gradient in w and α. `inner_lr` defaults to
    `{"w": 0.1, "alpha": 0.1}` (SGD); the paper's rule, Adam (β1 = 0) on w and α, is
    `inner_optimizer=optax.adam(0.005, b1=0.0)` (`optax.multi_transform` for separate
    rules). `derive(space, adapted_params)` gives the task's cell.
    """
    _check_supernet("metanas", model)
    return _learner(
        model,
        "metanas",
        inner_lr=_supernet_lr(inner_lr, options),
        inner_steps=inner_steps,
        outer=outer,
        **options,
    )


def tnas(
    model: Model,
    *,
    inner_lr: Any = None,
    inner_steps: int = 1,
    outer: str = "fomaml",
    **options: Any,
) -> MetaLearner:
    """T-NAS (Lian et al. 2020): meta-learn only α's initialisation (first-order MAML by
    default); every task adapts α and the weights from the same fixed random init, and
    the adapted α gives the task's cell (`derive`)."""
    _check_supernet("tnas", model)
    return _learner(
        model,
        "tnas",
        inner_lr=_supernet_lr(inner_lr, options),
        inner_steps=inner_steps,
        outer=outer,
        meta={"w": False, "alpha": True},
        **options,
    )


def derive(space: Any, params: dict) -> Any:
    """The cell `space.derive` gives for the (task-adapted) α of supernet params: the
    highest-α op on every edge for NB201."""
    return space.derive(jax.nn.softmax(params["alpha"], -1))
