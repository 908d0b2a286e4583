"""Networks compiled from architectures, and their building blocks (Flax NNX)."""

from jnas.nn._count import count_flops, count_params
from jnas.nn._nb201 import InferCell, NATSSizeNetwork, NB201Network, nb201_op

__all__ = [
    "InferCell",
    "NATSSizeNetwork",
    "NB201Network",
    "count_flops",
    "count_params",
    "nb201_op",
]
