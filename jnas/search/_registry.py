"""Every black-box searcher by a short name, with its default hyper-parameters: the one
list the CLI, the experiment scripts and the benchmarks share."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

from jnas.search._bananas import bananas
from jnas.search._bo import bayesian_optimization
from jnas.search._dehb import dehb
from jnas.search._evolution import regularized_evolution
from jnas.search._hyperband import bohb, hyperband
from jnas.search._local import local_search
from jnas.search._metaqnn import metaqnn
from jnas.search._nao import nao
from jnas.search._neat import neat
from jnas.search._nsga2 import nsga2
from jnas.search._pnas import pnas
from jnas.search._qlearning import q_learning
from jnas.search._random import random_search
from jnas.search._reinforce import reinforce
from jnas.search._smac import smac
from jnas.search._tournament import tournament_evolution
from jnas.search._tpe import tpe
from jnas.spaces import Decisions, Encodable, HasAdjacency, LayerRules, Space, offers


class Entry(NamedTuple):
    """A registered searcher.

    label: its row name in result tables; description: one line for `--help`;
    make: `make(space) -> Searcher`; model_based: refits a surrogate every `tell` (the
    protocol scripts run fewer seeds of these); multi_fidelity: needs the 12- and
    200-epoch results of a table; multi_objective: its `tell` takes a fitness vector per
    architecture (float[B, M], every objective maximised) and it keeps a Pareto front, not
    an incumbent, so the scalar protocols (`single_objective()`) leave it out and
    `jnas bench pareto` runs it; needs: the capabilities (`jnas.spaces` protocols) a
    space must offer, so which spaces it runs on is `supports(entry, space)`.
    """

    label: str
    description: str
    make: Callable[..., Any]
    model_based: bool = False
    multi_fidelity: bool = False
    needs: tuple[type, ...] = (Space,)
    multi_objective: bool = False


_DECISIONS = (Space, Decisions)


REGISTRY: dict[str, Entry] = {
    "rs": Entry("random search", "random search", random_search),
    "rea": Entry("regularized evolution", "regularized evolution", regularized_evolution),
    "te": Entry("tournament evolution", "tournament evolution", tournament_evolution),
    "neat": Entry(
        "NEAT (speciation, crossover)", "NEAT-style evolution (speciation, crossover)", neat
    ),
    "ls": Entry("local search", "local search", local_search),
    "reinforce": Entry("REINFORCE", "REINFORCE (per-decision logits)", reinforce, needs=_DECISIONS),
    "reinforce-lstm": Entry(
        "REINFORCE (LSTM)",
        "REINFORCE with an LSTM controller",
        functools.partial(reinforce, controller="lstm"),
        needs=_DECISIONS,
    ),
    "qlearning": Entry(
        "Q-learning (MetaQNN)", "Q-learning (MetaQNN)", q_learning, needs=_DECISIONS
    ),
    "metaqnn": Entry(
        "MetaQNN (layer states)",
        "MetaQNN as published: Q-learning over layer states (type, depth, size) under its rules",
        metaqnn,
        needs=(Space, LayerRules),
    ),
    "bo": Entry(
        "BO (GP, EI)",
        "Bayesian optimisation (GP, EI, path encoding)",
        bayesian_optimization,
        model_based=True,
        needs=(Space, Encodable),
    ),
    "bo-wl": Entry(
        "BO (GP, WL kernel)",
        "Bayesian optimisation (GP, EI, Weisfeiler-Lehman kernel)",
        functools.partial(bayesian_optimization, encoding="wl"),
        model_based=True,
        needs=(Space, HasAdjacency),
    ),
    "bananas": Entry("BANANAS", "BANANAS", bananas, model_based=True, needs=(Space, Encodable)),
    "smac": Entry(
        "SMAC (random forest, EI)",
        "SMAC: random-forest surrogate, EI, local search",
        smac,
        model_based=True,
        needs=(Space, Encodable),
    ),
    "tpe": Entry("TPE", "TPE (categorical kernel densities, as in BOHB)", tpe, needs=_DECISIONS),
    "pnas": Entry(
        "PNAS",
        "PNAS (progressive prefixes, MLP-ensemble surrogate)",
        pnas,
        model_based=True,
        needs=_DECISIONS,
    ),
    "nao": Entry(
        "NAO",
        "NAO (encoder-predictor-decoder, gradient steps in the embedding)",
        nao,
        model_based=True,
        needs=_DECISIONS,
    ),
    "hyperband": Entry(
        "Hyperband (12/200 epochs)",
        "Hyperband (12 and 200 epochs)",
        hyperband,
        multi_fidelity=True,
        needs=_DECISIONS,
    ),
    "bohb": Entry(
        "BOHB (12/200 epochs)",
        "BOHB (12 and 200 epochs)",
        bohb,
        multi_fidelity=True,
        needs=_DECISIONS,
    ),
    "dehb": Entry(
        "DEHB (12/200 epochs)",
        "DEHB: differential evolution in Hyperband (12 and 200 epochs)",
        dehb,
        multi_fidelity=True,
        needs=_DECISIONS,
    ),
    "nsga2": Entry(
        "NSGA-II",
        "NSGA-II: multi-objective evolution towards the Pareto front (`jnas bench pareto`)",
        nsga2,
        multi_objective=True,
    ),
}


def single_objective() -> dict[str, Entry]:
    """The searchers that tell one fitness per architecture and keep an incumbent: those
    the simulated protocol, `jnas search` and the result tables run."""
    return {name: e for name, e in REGISTRY.items() if not e.multi_objective}


def supports(entry: Entry, space: Any) -> bool:
    """Whether `space` offers every capability the searcher of `entry` needs."""
    return all(offers(space, p) for p in entry.needs)


def make_searcher(
    name: str, space: Any, *, fidelities: int | None = None, population: int | None = None
) -> Any:
    """A searcher by its short name (`REGISTRY`) with default hyper-parameters;
    `fidelities` sets how many fidelities the multi-fidelity ones use (default 2: NB201's
    12 and 200 epochs), `population` the generation size of the multi-objective ones;
    each is ignored by the others."""
    if name not in REGISTRY:
        raise ValueError(f"unknown searcher {name!r}; expected one of {', '.join(REGISTRY)}")
    entry = REGISTRY[name]
    if entry.multi_fidelity and fidelities is not None:
        return entry.make(space, fidelities=fidelities)
    if entry.multi_objective and population is not None:
        return entry.make(space, population=population)
    return entry.make(space)
