"""Search spaces: architectures as fixed-shape integer pytrees."""

from jnas.spaces._chain import MOBILENET_V2_STAGES, PROXYLESS_STAGES, Chain, ChainArch
from jnas.spaces._darts import DARTS, DARTS_V1, DARTS_V2, DARTSArch
from jnas.spaces._darts_rnn import RNN_PRIMITIVES, DARTSRecurrent, DARTSRecurrentArch
from jnas.spaces._hierarchical import HNAS_PRIMITIVES, Hierarchical, HierarchicalArch
from jnas.spaces._memory_bank import MemoryBank, MemoryBankArch
from jnas.spaces._nats import NATSSize, NATSSizeArch
from jnas.spaces._nb101 import NB101, NB101Arch
from jnas.spaces._nb201 import NB201, AdjacencyEncoding, NB201Arch
from jnas.spaces._nbnlp import NBNLP, NBNLP_EXAMPLES, NBNLP_OPS, NBNLPArch
from jnas.spaces._protocols import (
    CAPABILITIES,
    Arch,
    Buildable,
    Decisions,
    DecisionSpace,
    Encodable,
    Fitness,
    HasAdjacency,
    HasPath,
    HasSupernet,
    Indexed,
    LayerRules,
    OpWeights,
    Space,
    capabilities,
    missing,
    offers,
    require,
)
from jnas.spaces._sequential import Sequential, SequentialArch

__all__ = [
    "CAPABILITIES",
    "DARTS",
    "DARTS_V1",
    "DARTS_V2",
    "HNAS_PRIMITIVES",
    "MOBILENET_V2_STAGES",
    "NB101",
    "NB201",
    "NBNLP",
    "NBNLP_EXAMPLES",
    "NBNLP_OPS",
    "PROXYLESS_STAGES",
    "RNN_PRIMITIVES",
    "AdjacencyEncoding",
    "Arch",
    "Buildable",
    "Chain",
    "ChainArch",
    "DARTSArch",
    "DARTSRecurrent",
    "DARTSRecurrentArch",
    "DecisionSpace",
    "Decisions",
    "Encodable",
    "Fitness",
    "HasAdjacency",
    "HasPath",
    "HasSupernet",
    "Hierarchical",
    "HierarchicalArch",
    "Indexed",
    "LayerRules",
    "MemoryBank",
    "MemoryBankArch",
    "NATSSize",
    "NATSSizeArch",
    "NB101Arch",
    "NB201Arch",
    "NBNLPArch",
    "OpWeights",
    "Sequential",
    "SequentialArch",
    "Space",
    "capabilities",
    "missing",
    "offers",
    "require",
]
