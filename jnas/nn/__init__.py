"""Networks compiled from architectures, and their building blocks (Flax NNX)."""

from jnas.nn._count import count_flops, count_params
from jnas.nn._darts import AuxiliaryHead, DARTSCell, DARTSNetwork, DilConv, SepConv, darts_op
from jnas.nn._nb101 import NB101Cell, NB101Network, vertex_channels
from jnas.nn._nb201 import InferCell, NATSSizeNetwork, NB201Network, nb201_op

__all__ = [
    "AuxiliaryHead",
    "DARTSCell",
    "DARTSNetwork",
    "DilConv",
    "SepConv",
    "darts_op",
    "InferCell",
    "NB101Cell",
    "NB101Network",
    "NATSSizeNetwork",
    "NB201Network",
    "count_flops",
    "count_params",
    "nb201_op",
    "vertex_channels",
]
