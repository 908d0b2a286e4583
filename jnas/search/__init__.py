"""Black-box searchers as pure `init / ask / tell` functions."""

from jnas.search._base import Searcher, clean_fitness
from jnas.search._evolution import EvolutionState, regularized_evolution
from jnas.search._random import RandomSearchState, random_search

__all__ = [
    "EvolutionState",
    "RandomSearchState",
    "Searcher",
    "clean_fitness",
    "random_search",
    "regularized_evolution",
]
