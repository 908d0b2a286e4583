"""Search spaces: architectures as fixed-shape integer pytrees."""

from jnas.spaces._nb101 import NB101, NB101Arch
from jnas.spaces._darts import DARTS, DARTS_V1, DARTS_V2, DARTSArch
from jnas.spaces._nats import NATSSize, NATSSizeArch
from jnas.spaces._nb201 import AdjacencyEncoding, NB201, NB201Arch

__all__ = [
    "DARTS",
    "DARTS_V1",
    "DARTS_V2",
    "DARTSArch",
    "NB101",
    "NB201",
    "NB101Arch",
    "AdjacencyEncoding",
    "NATSSize",
    "NATSSizeArch",
    "NB201Arch",
]
