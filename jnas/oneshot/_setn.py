"""SETN: one-shot neural architecture search via self-evaluated template network
(Dong & Yang, ICCV 2019), as in the NB201 authors' code.

The weights train on uniformly sampled single paths (the template sampler's exploration);
α trains on the validation batch through the softmax-weighted supernet (the evaluator).
The derived cell is the best, by supernet accuracy on a validation batch, of
`num_candidates` cells sampled from softmax(α).
"""

from __future__ import annotations

from typing import Any

import jax

from jnas._checks import check_positive
from jnas.oneshot._base import (
    Batch,
    OneShot,
    OneShotState,
    Supernet,
    best_of,
    need_data,
    sample_from_alpha,
)
from jnas.oneshot._bilevel import relaxed_search
from jnas.oneshot._relaxations import softmax_relaxation, uniform_path_relaxation


def setn(
    space: Any,
    *,
    epochs: int = 250,
    steps_per_epoch: int = 391,
    num_candidates: int = 100,
    **config: Any,
) -> OneShot[OneShotState]:
    """SETN on `space.supernet(**config)`; `derive(state, key, batch)` samples
    `num_candidates` cells from softmax(α) and keeps the best on `batch`."""
    check_positive("setn", num_candidates=num_candidates)

    def derive_with(net: Supernet):
        def derive(state: OneShotState, key: jax.Array | None = None, batch: Batch | None = None):
            key, batch = need_data("setn", key, batch)
            keys = jax.random.split(key, num_candidates)
            archs = jax.vmap(lambda k: sample_from_alpha(space, k, state.alpha))(keys)
            return best_of(net, space, state.params, archs, batch)

        return derive

    return relaxed_search(
        space,
        softmax_relaxation(),
        name="setn",
        weight_relaxation=uniform_path_relaxation(space),
        derive_with=derive_with,
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        **config,
    )
