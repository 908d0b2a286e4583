"""DrNAS: Dirichlet neural architecture search (Chen, Wang, Cheng, Tang & Hsieh, ICLR 2021).

α parameterises a Dirichlet over each edge's op weights (concentration `elu(α) + 1`). Each
forward draws op weights from it by the reparameterised (implicit-gradient) Dirichlet
sample, so α is learned by gradient through the samples; the α loss adds the anchor
regulariser `reg * KL(Dir(β) || Dir(1))` that keeps the concentration from exploding.
Bilevel like first-order DARTS: a weight step on the training batch, an α step on the
validation batch. The derived cell takes each edge's op of highest expected weight (the
Dirichlet mean).
"""

from __future__ import annotations

from typing import Any

from jnas._execution import CLASSIC_EMITTERS
from jnas.oneshot._base import OneShot, OneShotState
from jnas.oneshot._bilevel import relaxed_search
from jnas.oneshot._penalties import dirichlet_anchor_penalty
from jnas.oneshot._relaxations import dirichlet_relaxation


def drnas(
    space: Any,
    *,
    epochs: int = 50,
    steps_per_epoch: int = 391,
    reg: float = 1e-3,
    cpu_compiler_options: tuple[tuple[str, Any], ...] = CLASSIC_EMITTERS,
    **config: Any,
) -> OneShot[OneShotState]:
    """DrNAS on `space.supernet(**config)` (see `relaxed_search` for the rest);
    `cpu_compiler_options`: the classic emitters, as DARTS' all-ops cell
    (`jnas._execution.CLASSIC_EMITTERS` says why)."""
    return relaxed_search(
        space,
        dirichlet_relaxation(),
        name="drnas",
        penalty=dirichlet_anchor_penalty(reg, where=("drnas", "reg")),
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        cpu_compiler_options=cpu_compiler_options,
        **config,
    )
