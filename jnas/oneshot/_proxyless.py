"""ProxylessNAS: direct neural architecture search on target task and hardware
(Cai, Zhu & Han, ICLR 2019).

Binary gates: the weight step trains one path per edge sampled from softmax(α). The α step
samples two candidate ops per edge, picks one by their renormalised probabilities and
passes the gradient through the binary gates (`two_path_gates`). The α loss adds
`latency_weight` times the expected cost under softmax(α), ProxylessNAS' differentiable
latency loss; per-op costs come from a lookup table (`op_costs`), e.g. `linear_op_costs`
fitted to the NB201 latency table. The two sampled ops are computed through the weighted
supernet (the other ops carry zero weight).
"""

from __future__ import annotations

from typing import Any

from jnas.oneshot._base import OneShot, OneShotState
from jnas.oneshot._bilevel import relaxed_search
from jnas.oneshot._penalties import expected_cost_penalty
from jnas.oneshot._relaxations import binary_gate_relaxation, path_relaxation


def proxyless(
    space: Any,
    *,
    epochs: int = 50,
    steps_per_epoch: int = 391,
    latency_weight: float = 0.0,
    costs: Any = None,
    **config: Any,
) -> OneShot[OneShotState]:
    """ProxylessNAS with binary gates on `space.supernet(**config)`; the derived cell takes
    each edge's most probable op (reported: `expected_cost`)."""
    penalty = expected_cost_penalty(
        space, latency_weight, costs, where=("proxyless", "latency_weight")
    )
    return relaxed_search(
        space,
        binary_gate_relaxation(),
        name="proxyless",
        weight_relaxation=path_relaxation(),
        penalty=penalty,
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        **config,
    )
