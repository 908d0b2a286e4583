"""GDAS: searching for a robust neural architecture in four GPU hours (Dong & Yang, 2019).

Each forward samples one op per edge with the hard Gumbel-softmax: the forward uses the
one-hot, the backward the relaxed probabilities (straight-through), and only the sampled
op is computed. The temperature falls linearly per epoch from `tau_max` to `tau_min`.
Under `vmap` over seeds the sampled indices are batched and every op runs (a select).
"""

from __future__ import annotations

from typing import Any

from jnas.oneshot._base import OneShot, OneShotState
from jnas.oneshot._bilevel import relaxed_search
from jnas.oneshot._relaxations import gumbel_relaxation, linear_tau_schedule


def gdas(
    space: Any,
    *,
    epochs: int = 250,
    steps_per_epoch: int = 391,
    tau_max: float = 10.0,
    tau_min: float = 0.1,
    **config: Any,
) -> OneShot[OneShotState]:
    """GDAS on `space.supernet(**config)`: a weight step on the training batch and an α
    step on the validation batch, each through a freshly sampled hard Gumbel cell."""
    tau = linear_tau_schedule(steps_per_epoch, epochs, tau_max, tau_min, "gdas")
    return relaxed_search(
        space,
        gumbel_relaxation(tau, hard=True),
        name="gdas",
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        **config,
    )
