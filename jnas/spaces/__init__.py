"""Search spaces: architectures as fixed-shape integer pytrees."""

from jnas.spaces._nats import NATSSize, NATSSizeArch
from jnas.spaces._nb201 import AdjacencyEncoding, NB201, NB201Arch

__all__ = [
    "NB201",
    "AdjacencyEncoding",
    "NATSSize",
    "NATSSizeArch",
    "NB201Arch",
]
