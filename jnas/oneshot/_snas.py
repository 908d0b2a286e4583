"""SNAS: stochastic neural architecture search (Xie, Zheng, Liu & Lin, ICLR 2019).

Weights and α are trained together on the training batch (single level): every forward
draws relaxed Gumbel-softmax op weights (the concrete distribution, no hard sample), and the
loss adds a resource penalty, the expected cost `sum_e sum_k p_ek cost_ek` under
softmax(α), as SNAS' resource constraint (reported as `resource`).
"""

from __future__ import annotations

from typing import Any

from jnas._execution import CLASSIC_EMITTERS
from jnas.oneshot._base import OneShot, OneShotState
from jnas.oneshot._bilevel import relaxed_search
from jnas.oneshot._penalties import expected_cost_penalty
from jnas.oneshot._relaxations import gumbel_relaxation, linear_tau_schedule


def snas(
    space: Any,
    *,
    epochs: int = 50,
    steps_per_epoch: int = 391,
    tau_max: float = 1.0,
    tau_min: float = 0.03,
    resource_weight: float = 0.0,
    costs: Any = None,
    cpu_compiler_options: tuple[tuple[str, Any], ...] = CLASSIC_EMITTERS,
    **config: Any,
) -> OneShot[OneShotState]:
    """SNAS: relaxed Gumbel weights, temperature linear in the epoch from `tau_max` to
    `tau_min`, loss = CE + `resource_weight` * expected cost (`costs`: see `op_costs`).
    `cpu_compiler_options`: the classic emitters, as DARTS' all-ops cell
    (`jnas._execution.CLASSIC_EMITTERS` says why)."""
    tau = linear_tau_schedule(steps_per_epoch, epochs, tau_max, tau_min, "snas")
    penalty = expected_cost_penalty(
        space, resource_weight, costs, name="resource", where=("snas", "resource_weight")
    )
    return relaxed_search(
        space,
        gumbel_relaxation(tau, hard=False),
        name="snas",
        levels=1,
        penalty=penalty,
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        cpu_compiler_options=cpu_compiler_options,
        **config,
    )
