"""jnas: JAX-native, functional neural architecture search."""

from jnas import nn, spaces

__version__ = "0.1.0"
__all__ = ["nn", "spaces"]
