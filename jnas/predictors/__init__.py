"""Surrogate models of architecture performance as pure `fit` / `predict` functions (GP, MLP
ensembles, random forests, the WL kernel), and
learning-curve extrapolation (Domhan et al. 2015, Baker et al. 2017) with early stopping."""

from jnas.predictors._blocks import blocked_grad, used_rows
from jnas.predictors._curve_svr import CurveSVR, curve_features, fit_curve_svr
from jnas.predictors._curves import (
    DEFAULT_FAMILIES,
    FAMILIES,
    CurveFamily,
    CurveForecast,
    curve_families,
    extrapolate_curve,
    probability_better,
)
from jnas.predictors._early_stop import CurveStopper, curve_stopper
from jnas.predictors._forest import Forest, forest_fit, forest_predict
from jnas.predictors._gp import (
    DEFAULT_LENGTHSCALES,
    GP,
    GPGrid,
    gp_factors_add,
    gp_factors_init,
    gp_fit,
    gp_fit_factored,
    gp_grid,
    gp_predict,
    hamming_distance,
    hamming_kernel,
)
from jnas.predictors._mlp import ensemble_fit, ensemble_predict
from jnas.predictors._rank import average_ranks, spearman
from jnas.predictors._wl import wl_distance, wl_features, wl_kernel

__all__ = [
    "DEFAULT_FAMILIES",
    "DEFAULT_LENGTHSCALES",
    "FAMILIES",
    "GP",
    "CurveFamily",
    "CurveForecast",
    "CurveSVR",
    "CurveStopper",
    "Forest",
    "GPGrid",
    "average_ranks",
    "blocked_grad",
    "curve_families",
    "curve_features",
    "curve_stopper",
    "ensemble_fit",
    "ensemble_predict",
    "extrapolate_curve",
    "fit_curve_svr",
    "forest_fit",
    "forest_predict",
    "gp_factors_add",
    "gp_factors_init",
    "gp_fit",
    "gp_fit_factored",
    "gp_grid",
    "gp_predict",
    "hamming_distance",
    "hamming_kernel",
    "probability_better",
    "spearman",
    "used_rows",
    "wl_distance",
    "wl_features",
    "wl_kernel",
]
