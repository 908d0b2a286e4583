"""Search spaces: architectures as fixed-shape integer pytrees."""

from jnas.spaces._chain import MOBILENET_V2_STAGES, PROXYLESS_STAGES, Chain, ChainArch
from jnas.spaces._darts import DARTS, DARTS_V1, DARTS_V2, DARTSArch
from jnas.spaces._hierarchical import HNAS_PRIMITIVES, Hierarchical, HierarchicalArch
from jnas.spaces._nats import NATSSize, NATSSizeArch
from jnas.spaces._nb101 import NB101, NB101Arch
from jnas.spaces._nb201 import NB201, AdjacencyEncoding, NB201Arch
from jnas.spaces._sequential import Sequential, SequentialArch

__all__ = [
    "DARTS",
    "DARTS_V1",
    "DARTS_V2",
    "HNAS_PRIMITIVES",
    "MOBILENET_V2_STAGES",
    "NB101",
    "NB201",
    "PROXYLESS_STAGES",
    "AdjacencyEncoding",
    "Chain",
    "ChainArch",
    "DARTSArch",
    "Hierarchical",
    "HierarchicalArch",
    "NATSSize",
    "NATSSizeArch",
    "NB101Arch",
    "NB201Arch",
    "Sequential",
    "SequentialArch",
]
