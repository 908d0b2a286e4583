"""The NATS-Bench size-space network (Dong et al., TPAMI 2021): NB201's `TinyNetwork`
(AutoDL-Projects' `DynamicShapeTinyNet`) with the best NB201 cell and a width per layer."""

from __future__ import annotations

from flax import nnx

from jnas._checks import check_positive
from jnas.nn._nb201 import _TinyNetwork
from jnas.nn._rngs import init_rngs

NATS_SSS_EDGES: tuple[tuple[int, int, str], ...] = (
    (0, 1, "nor_conv_3x3"),
    (0, 2, "nor_conv_3x3"),
    (1, 2, "nor_conv_3x3"),
    (0, 3, "skip_connect"),
    (1, 3, "nor_conv_3x3"),
    (2, 3, "nor_conv_3x3"),
)
"""The cell of every NATS-Bench size-space network (`jnas.spaces.NATS_SSS_CELL`) as
(from, to, op) edges: the best NB201 topology."""


class NATSSizeNetwork(_TinyNetwork):
    """The NATS-Bench size-space network (`DynamicShapeTinyNet`) for given layer widths.

    Layer k has `widths[k]` channels; the layers are N cells, a reduction block, N cells,
    a reduction block and N cells, the cell fixed to the best NB201 topology.
    """

    def __init__(
        self,
        widths: tuple[int, ...],
        *,
        num_classes: int = 10,
        edges: tuple[tuple[int, int, str], ...] = NATS_SSS_EDGES,
        rngs: nnx.Rngs | None = None,
    ):
        check_positive(
            "NATSSizeNetwork",
            num_classes=num_classes,
            **{f"widths[{k}]": w for k, w in enumerate(widths)},
        )
        if len(widths) % 3 != 2:
            raise ValueError(f"NATSSizeNetwork: `widths` must have 3N+2 entries; got {widths}")
        n = len(widths) // 3
        reductions = [False] * n + [True] + [False] * n + [True] + [False] * n
        super().__init__(
            list(widths), reductions, edges, num_classes=num_classes, rngs=rngs or init_rngs(0)
        )
