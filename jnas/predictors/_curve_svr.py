"""Learning-curve regression with a nu-SVR (Baker, Gupta, Raskar & Naik, "Accelerating neural
architecture search using performance prediction", ICLR-W 2018 / arXiv 1705.10823).

Features of a run observed for its first `k` epochs: the `k` curve values, their first and
second differences, and optional architecture / hyper-parameter features; target: the value
at the final epoch. The model is scikit-learn's `NuSVR` with an RBF kernel behind a
standardiser, its (C, nu, gamma) chosen by random search with k-fold cross-validation as
Baker et al. do. It runs on the host (scikit-learn's libsvm is the well-kept implementation;
nothing here needs `jit`). The predictive standard deviation is the cross-validated RMSE of the
chosen model (out-of-fold residuals of the training runs), so `probability_better` and the
early-stopping rule treat it like a Domhan forecast.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from jnas.predictors._curves import CurveForecast


def curve_features(curves: np.ndarray, extra: np.ndarray | None = None) -> np.ndarray:
    """Baker et al.'s features of partial curves `float[N, k]`: the values, first and second
    differences, then `extra` (`float[N, D]`, e.g. architecture features) if given."""
    curves = np.asarray(curves, np.float64)
    if curves.ndim != 2 or curves.shape[1] < 1:
        raise ValueError(f"curve_features: `curves` must be float[N, k>=1]; got {curves.shape}")
    if not np.all(np.isfinite(curves)):
        raise ValueError("curve_features: `curves` has NaN/inf values (a diverged run?)")
    parts = [curves, np.diff(curves, 1, axis=1), np.diff(curves, 2, axis=1)]
    if extra is not None:
        extra = np.asarray(extra, np.float64)
        if extra.ndim != 2 or extra.shape[0] != curves.shape[0]:
            raise ValueError(
                f"curve_features: `extra` must be float[N={curves.shape[0]}, D]; got {extra.shape}"
            )
        parts.append(extra)
    return np.concatenate(parts, axis=1)


@dataclasses.dataclass
class CurveSVR:
    """A fitted Baker et al. predictor: `predict(curves, extra)` -> a `CurveForecast` of the
    final value (one Gaussian)."""

    model: object
    rmse: float
    epochs: int
    params: dict

    def predict(self, curves: np.ndarray, extra: np.ndarray | None = None) -> CurveForecast:
        curves = np.asarray(curves)
        if curves.ndim != 2 or curves.shape[1] != self.epochs:
            raise ValueError(
                f"CurveSVR.predict: `curves` must be float[N, {self.epochs}] (the epochs it "
                f"was fitted on); got {curves.shape}"
            )
        mean = self.model.predict(curve_features(curves, extra))  # type: ignore[attr-defined]
        n = mean.shape[0]
        return CurveForecast(
            mean=jnp.asarray(mean),
            std=jnp.full(n, self.rmse),
            means=jnp.asarray(mean)[:, None],
            stds=jnp.full((n, 1), self.rmse),
            weights=jnp.ones((n, 1)),
        )


def fit_curve_svr(
    key: jax.Array,
    curves: np.ndarray,
    final: np.ndarray,
    extra: np.ndarray | None = None,
    *,
    search_iterations: int = 20,
    folds: int = 3,
) -> CurveSVR:
    """Fit Baker et al.'s nu-SVR on training runs' partial curves `float[N, k]` and their final
    values `float[N]`; hyper-parameters by random search (`search_iterations` draws of C,
    nu, gamma) with `folds`-fold cross-validation, seeded from `key`."""
    x = curve_features(curves, extra)
    y = np.asarray(final, np.float64)
    if y.shape != (x.shape[0],) or not np.all(np.isfinite(y)):
        raise ValueError(
            f"fit_curve_svr: `final` must be finite float[N={x.shape[0]}]; got shape {y.shape}"
        )
    if x.shape[0] < 2 * folds:
        raise ValueError(
            f"fit_curve_svr: need at least 2 * folds = {2 * folds} runs; got {x.shape[0]}"
        )
    # imported here: scipy.stats and scikit-learn take a second to import, which every
    # `jnas` command (through `jnas.search`) would pay for a predictor few of them fit
    from scipy.stats import loguniform, uniform
    from sklearn.model_selection import KFold, RandomizedSearchCV, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import NuSVR

    seed = int(jax.random.randint(key, (), 0, 2**31 - 1))
    pipe = make_pipeline(StandardScaler(), NuSVR(kernel="rbf"))
    space = {
        "nusvr__C": loguniform(1e-2, 1e3),
        "nusvr__nu": uniform(0.05, 0.9),
        "nusvr__gamma": loguniform(1e-4, 1e0),
    }
    cv = KFold(folds, shuffle=True, random_state=seed)
    search = RandomizedSearchCV(
        pipe,
        space,
        n_iter=search_iterations,
        cv=cv,
        scoring="neg_mean_squared_error",
        random_state=seed,
    )
    search.fit(x, y)
    oof = cross_val_predict(search.best_estimator_, x, y, cv=cv)
    rmse = float(np.sqrt(np.mean((oof - y) ** 2)))
    return CurveSVR(search.best_estimator_, rmse, int(np.shape(curves)[1]), search.best_params_)
