"""DARTS: differentiable architecture search (Liu, Simonyan & Yang, ICLR 2019).

Op weights are `softmax(alpha)` per edge. First order alternates a weight step on the
training batch and an α step on the validation batch at the current weights. Second
order differentiates the validation loss through one virtual weight step
`w' = w - xi * grad_w L_train(w, alpha)` (the paper's eq. 6-7): by default **exactly**,
by autodiff through the unrolled step, or with the paper's finite-difference
Hessian-vector product (eq. 8) for comparison (`jnas.oneshot.hypergradient`).
"""

from __future__ import annotations

from typing import Any

from jnas._execution import CLASSIC_EMITTERS
from jnas.oneshot._base import OneShot, OneShotState
from jnas.oneshot._bilevel import relaxed_search
from jnas.oneshot._relaxations import softmax_relaxation


def darts(
    space: Any,
    *,
    order: int = 1,
    hypergradient_method: str = "exact",
    epochs: int = 50,
    steps_per_epoch: int = 391,
    cpu_compiler_options: tuple[tuple[str, Any], ...] = CLASSIC_EMITTERS,
    **config: Any,
) -> OneShot[OneShotState]:
    """DARTS on `space.supernet(**config)`, NB201's search configuration by default.

    order: 1 (w step, then α step at the new w) or 2 (unrolled α step, then w step; the
    virtual step's size `xi` is the current weight learning rate). Other arguments
    (optimisers, `alpha_init_scale`, supernet config): see `relaxed_search`.
    `cpu_compiler_options`: XLA:CPU options for the step; by default both orders compile
    with the classic emitters (why: `jnas._execution.CLASSIC_EMITTERS`).
    """
    if order not in (1, 2):
        raise ValueError(f"darts: `order` must be 1 or 2; got {order!r}")
    return relaxed_search(
        space,
        softmax_relaxation(),
        name="darts",
        order=order,
        hypergradient_method=hypergradient_method,
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        cpu_compiler_options=cpu_compiler_options,
        **config,
    )
