"""Networks compiled from architectures, and their building blocks (Flax NNX)."""

from jnas.nn._chain import ChainNetwork, MBConv
from jnas.nn._controller import Controller, lstm_controller
from jnas.nn._count import count_apply_flops, count_flops, count_params
from jnas.nn._darts import (
    AuxiliaryHead,
    DARTSCell,
    DARTSNetwork,
    DilConv,
    SepConv,
    darts_op,
)
from jnas.nn._functional import Functional, functional
from jnas.nn._hierarchical import HierarchicalNetwork, Motif
from jnas.nn._memory_bank import MemoryBankNetwork, MemoryBankSupernet
from jnas.nn._nats import NATSSizeNetwork
from jnas.nn._nb101 import NB101Cell, NB101Network, vertex_channels
from jnas.nn._nb201 import InferCell, NB201Network, nb201_op
from jnas.nn._ops import (
    BatchNorm,
    BatchStatsNorm,
    batch_statistics_from,
    conv,
    linear,
    without_batch_norm,
)
from jnas.nn._rngs import init_normal, init_rngs, init_uniform, torch_default_init
from jnas.nn._rnn import MultiLinear, RecipeCell, RecurrentLM, lm_loss, recipe_order
from jnas.nn._rnn_darts import DARTSRecurrentLM, DARTSRecurrentSupernet
from jnas.nn._sequential import SequentialNetwork
from jnas.nn._supernet import MixedEdge
from jnas.nn._supernet_chain import ChainSupernet
from jnas.nn._supernet_darts import DARTSSearchCell, DARTSSupernet
from jnas.nn._supernet_nats import NATSSizeSupernet
from jnas.nn._supernet_nb201 import NB201SearchStage, NB201Supernet
from jnas.nn._taps import KINDS as TAP_KINDS
from jnas.nn._taps import Tap, record_taps, relu, tap, taps_active, zero_offsets

__all__ = [
    "TAP_KINDS",
    "AuxiliaryHead",
    "BatchNorm",
    "BatchStatsNorm",
    "ChainNetwork",
    "ChainSupernet",
    "Controller",
    "DARTSCell",
    "DARTSNetwork",
    "DARTSRecurrentLM",
    "DARTSRecurrentSupernet",
    "DARTSSearchCell",
    "DARTSSupernet",
    "DilConv",
    "Functional",
    "HierarchicalNetwork",
    "InferCell",
    "MBConv",
    "MemoryBankNetwork",
    "MemoryBankSupernet",
    "MixedEdge",
    "Motif",
    "MultiLinear",
    "NATSSizeNetwork",
    "NATSSizeSupernet",
    "NB101Cell",
    "NB101Network",
    "NB201Network",
    "NB201SearchStage",
    "NB201Supernet",
    "RecipeCell",
    "RecurrentLM",
    "SepConv",
    "SequentialNetwork",
    "Tap",
    "batch_statistics_from",
    "conv",
    "count_apply_flops",
    "count_flops",
    "count_params",
    "darts_op",
    "functional",
    "init_normal",
    "init_rngs",
    "init_uniform",
    "linear",
    "lm_loss",
    "lstm_controller",
    "nb201_op",
    "recipe_order",
    "record_taps",
    "relu",
    "tap",
    "taps_active",
    "torch_default_init",
    "vertex_channels",
    "without_batch_norm",
    "zero_offsets",
]
