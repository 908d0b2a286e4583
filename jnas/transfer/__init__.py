"""Learning to search across tasks: what one search, device or dataset teaches the next.

Task suites from the tables with leave-one-out rotations, zero-shot portfolios from the
source tasks (evaluated first on the target: `jnas.search.warm_start`), HELP's meta-learned
latency predictor (Lee et al. 2021) and latency-constrained search on an unseen device.
"""

from jnas.transfer._box import PriorSpace, decision_box, quantile_prior
from jnas.transfer._latency import (
    HELP_PUBLISHED,
    HELP_SPLIT,
    LatencyMetaTraining,
    LatencyPredictor,
    adapt_latency,
    architecture_features,
    constrained_best,
    device_latencies,
    evaluate_latency,
    fit_latency_from_scratch,
    latency_meta_training,
    load_latency_predictor,
    meta_train_latency,
    save_latency_predictor,
)
from jnas.transfer._policy import meta_train_policy
from jnas.transfer._suites import (
    TableTask,
    leave_one_out,
    nats_size_tasks,
    nb201_tasks,
    portfolio,
    suite_scores,
)

__all__ = [
    "HELP_PUBLISHED",
    "HELP_SPLIT",
    "LatencyMetaTraining",
    "LatencyPredictor",
    "PriorSpace",
    "TableTask",
    "adapt_latency",
    "architecture_features",
    "constrained_best",
    "decision_box",
    "device_latencies",
    "evaluate_latency",
    "fit_latency_from_scratch",
    "latency_meta_training",
    "leave_one_out",
    "load_latency_predictor",
    "meta_train_latency",
    "meta_train_policy",
    "nats_size_tasks",
    "nb201_tasks",
    "portfolio",
    "quantile_prior",
    "save_latency_predictor",
    "suite_scores",
]
