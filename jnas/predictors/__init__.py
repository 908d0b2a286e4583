"""Surrogate models of architecture performance as pure `fit` / `predict` functions."""

from jnas.predictors._gp import (
    DEFAULT_LENGTHSCALES,
    GP,
    gp_fit,
    gp_predict,
    hamming_distance,
    hamming_kernel,
)
from jnas.predictors._mlp import ensemble_fit, ensemble_predict
from jnas.predictors._wl import wl_distance, wl_features, wl_kernel

__all__ = [
    "DEFAULT_LENGTHSCALES",
    "GP",
    "ensemble_fit",
    "ensemble_predict",
    "gp_fit",
    "gp_predict",
    "hamming_distance",
    "hamming_kernel",
    "wl_distance",
    "wl_features",
    "wl_kernel",
]
