"""Learning to search across tasks: what one search, device or dataset teaches the next.

HELP's meta-learned latency predictor (Lee et al. 2021) and latency-constrained search on an
unseen device.
"""

from jnas.transfer._latency import (
    HELP_PUBLISHED,
    HELP_SPLIT,
    LatencyPredictor,
    adapt_latency,
    architecture_features,
    constrained_best,
    device_latencies,
    evaluate_latency,
    fit_latency_from_scratch,
    load_latency_predictor,
    meta_train_latency,
    save_latency_predictor,
)

__all__ = [
    "HELP_PUBLISHED",
    "HELP_SPLIT",
    "LatencyPredictor",
    "adapt_latency",
    "architecture_features",
    "constrained_best",
    "device_latencies",
    "evaluate_latency",
    "fit_latency_from_scratch",
    "load_latency_predictor",
    "meta_train_latency",
    "save_latency_predictor",
]
