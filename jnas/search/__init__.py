"""Black-box searchers as pure `init / ask / tell` functions."""

from jnas.nn import Controller, lstm_controller
from jnas.search import automl_zero, neat_networks
from jnas.search._bananas import bananas
from jnas.search._base import Searcher, clean_fitness
from jnas.search._bo import acquisition, bayesian_optimization
from jnas.search._dehb import DEHBState, dehb, dehb_schedule
from jnas.search._evolution import EvolutionState, regularized_evolution
from jnas.search._executors import dask_executor, executor_width, process_executor
from jnas.search._hyperband import HyperbandState, bohb, hyperband, hyperband_schedule
from jnas.search._local import LocalSearchState, local_search
from jnas.search._metaqnn import MetaQNNState, metaqnn
from jnas.search._model_based import (
    Incremental,
    ModelBasedState,
    Score,
    encoder,
    model_based,
)
from jnas.search._nao import NAOState, nao
from jnas.search._neat import NeatGenome, NeatState, neat
from jnas.search._nsga2 import NSGA2State, crowding_distance, dominates, nondominated_ranks, nsga2
from jnas.search._pnas import PNASState, pnas
from jnas.search._qlearning import QLearningState, metaqnn_epsilon, q_learning
from jnas.search._random import RandomSearchState, random_search
from jnas.search._registry import REGISTRY, Entry, make_searcher, single_objective, supports
from jnas.search._reinforce import ReinforceState, reinforce
from jnas.search._run import restore_state, run
from jnas.search._smac import SMACState, smac
from jnas.search._tournament import tournament_evolution
from jnas.search._tpe import TPEState, tpe
from jnas.search._warmup import WarmupState, warm_start, zero_cost_warmup

__all__ = [
    "REGISTRY",
    "Controller",
    "DEHBState",
    "Entry",
    "EvolutionState",
    "HyperbandState",
    "Incremental",
    "LocalSearchState",
    "MetaQNNState",
    "ModelBasedState",
    "NAOState",
    "NSGA2State",
    "NeatGenome",
    "NeatState",
    "PNASState",
    "QLearningState",
    "RandomSearchState",
    "ReinforceState",
    "SMACState",
    "Score",
    "Searcher",
    "TPEState",
    "WarmupState",
    "acquisition",
    "automl_zero",
    "bananas",
    "bayesian_optimization",
    "bohb",
    "clean_fitness",
    "crowding_distance",
    "dask_executor",
    "dehb",
    "dehb_schedule",
    "dominates",
    "encoder",
    "executor_width",
    "hyperband",
    "hyperband_schedule",
    "local_search",
    "lstm_controller",
    "make_searcher",
    "metaqnn",
    "metaqnn_epsilon",
    "model_based",
    "nao",
    "neat",
    "neat_networks",
    "nondominated_ranks",
    "nsga2",
    "pnas",
    "process_executor",
    "q_learning",
    "random_search",
    "regularized_evolution",
    "reinforce",
    "restore_state",
    "run",
    "single_objective",
    "smac",
    "supports",
    "tournament_evolution",
    "tpe",
    "warm_start",
    "zero_cost_warmup",
]
