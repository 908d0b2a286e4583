"""Meta-learning: MAML-style meta-gradients on weights and architecture parameters.

Every method is a factory returning a `MetaLearner` of pure functions (`init`, `step`,
`adapt`, `evaluate`); `step` is `jit`-able and takes a batch of tasks (a leading axis,
adapted in parallel with `vmap`). MAML, first-order MAML, Reptile, ANIL, MetaNAS and T-NAS
are one mechanism, `meta_learner(model, InnerLoop(...), OuterLoop(...))`, with different
parts; ProtoNets is the metric baseline.
"""

from jnas.meta._core import (
    LOSSES,
    NORMS,
    InnerLoop,
    MetaLearner,
    MetaState,
    OuterLoop,
    cross_entropy,
    interleave,
    leaf_paths,
    loops,
    meta_learner,
    mse,
)
from jnas.meta._loop import evaluate_episodes, evaluate_tasks, mean_ci, meta_train
from jnas.meta._methods import anil, derive, fomaml, maml, metanas, reptile, tnas
from jnas.meta._metric import (
    fce_embed,
    init_fce,
    matching_logits,
    matching_net,
    metric_learner,
    protonet,
    prototype_logits,
    relation_net,
)
from jnas.meta._models import MLP, Conv4, Model, conv4, from_module, mlp, supernet_model
from jnas.meta._neural_process import (
    CNPModel,
    LNPModel,
    cnp,
    cnp_model,
    gaussian_kl,
    gaussian_nll,
    lnp,
    lnp_model,
)
from jnas.meta._snail import SNAIL, snail, snail_model
from jnas.meta._tasks import Task, TaskSampler, few_shot, sinusoid, task_batch

__all__ = [
    "LOSSES",
    "MLP",
    "NORMS",
    "SNAIL",
    "CNPModel",
    "Conv4",
    "InnerLoop",
    "LNPModel",
    "MetaLearner",
    "MetaState",
    "Model",
    "OuterLoop",
    "Task",
    "TaskSampler",
    "anil",
    "cnp",
    "cnp_model",
    "conv4",
    "cross_entropy",
    "derive",
    "evaluate_episodes",
    "evaluate_tasks",
    "fce_embed",
    "few_shot",
    "fomaml",
    "from_module",
    "gaussian_kl",
    "gaussian_nll",
    "init_fce",
    "interleave",
    "leaf_paths",
    "lnp",
    "lnp_model",
    "loops",
    "maml",
    "matching_logits",
    "matching_net",
    "mean_ci",
    "meta_learner",
    "meta_train",
    "metanas",
    "metric_learner",
    "mlp",
    "mse",
    "protonet",
    "prototype_logits",
    "relation_net",
    "reptile",
    "sinusoid",
    "snail",
    "snail_model",
    "supernet_model",
    "task_batch",
    "tnas",
]
