"""BANANAS: Bayesian optimisation with neural architectures for NAS (White, Neiswanger &
Savani, AAAI 2021).

An ensemble of MLPs on the path encoding predicts accuracy; each round mutates the best
cells into candidates and takes the `batch_size` best by independent Thompson sampling
(ITS: a draw from N(ensemble mean, ensemble std) per candidate), BANANAS' defaults being
10 initial cells, 10 cells a round, 5 networks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from jnas.predictors import ensemble_fit, ensemble_predict
from jnas.search._base import Searcher
from jnas.search._model_based import model_based
from jnas.spaces import Space


def independent_thompson(key: jax.Array, preds: jax.Array) -> jax.Array:
    """BANANAS' ITS acquisition: for every candidate, one independent draw from the normal
    with the ensemble's mean and population standard deviation (`np.std`, as in NASLib's
    `acquisition_function`) of `preds` [members, N]."""
    mean, std = preds.mean(0), preds.std(0) + 1e-6
    return mean + std * jax.random.normal(key, mean.shape)


def bananas(
    space: Space,
    *,
    encoding: str = "auto",
    batch_size: int = 10,
    num_init: int = 10,
    num_candidates: int = 100,
    num_parents: int = 10,
    members: int = 5,
    train_steps: int = 200,
    max_points: int = 200,
    features: Callable[[Any], jax.Array] | None = None,
) -> Searcher:
    """BANANAS over `space` (the path encoding where the space has one); `features(arch)`
    adds inputs to the encoding (zero-cost proxy scores, standardised)."""

    def score(key, x, y, mask, candidates):
        k_fit, k_its = jax.random.split(key)
        model = ensemble_fit(
            k_fit, x, jnp.where(mask, y, 0.0), mask, members=members, steps=train_steps
        )
        return independent_thompson(k_its, ensemble_predict(model, candidates))

    return model_based(
        space,
        score,
        encoding=encoding,
        batch_size=batch_size,
        num_init=num_init,
        num_candidates=num_candidates,
        num_parents=num_parents,
        max_points=max_points,
        where="bananas",
        features=features,
    )
