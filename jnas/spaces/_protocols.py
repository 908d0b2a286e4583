"""What a search space offers, as runtime-checkable protocols.

A searcher or one-shot method states the capabilities it needs (`space: Decisions`) and
checks them once, at construction, with `require(where, space, Decisions, ...)`: one
`isinstance` per capability and a message naming the missing methods. Spaces do not
inherit from these classes; any object with the methods qualifies (structural typing, as
in `typing.Protocol`).

| protocol | methods | spaces |
|---|---|---|
| `Space` | sample, mutate, neighbors, is_valid, validate, to_string, from_string, size | all |
| `Encodable` | one_hot | all |
| `Indexed` | index, from_index, enumerate | NB201, NATSSize |
| `Decisions` | decision_sizes, to_decisions, from_decisions | all but NB101 |
| `HasAdjacency` | adjacency (a node-labelled cell graph) | NB201, NB101 |
| `HasPath` | path, path_dim | NB201, NB101 |
| `HasSupernet` | supernet, supernet_shape, supernet_index, derive | NB201, DARTS, NATSSize, Chain, DARTSRecurrent, MemoryBank |
| `LayerRules` | start_state, next_state, allowed_next, state_size, num_tokens, max_layers | Sequential |
| `Buildable` | build | all |
"""

from __future__ import annotations

from typing import Any, Protocol, TypeAlias, runtime_checkable

import jax

Arch: TypeAlias = Any
"""An architecture: a NamedTuple of fixed-shape integer arrays (a batch: a leading axis)."""
Fitness: TypeAlias = jax.Array
"""float32[batch]: higher is better; NaN is a failed evaluation (counts as the worst)."""
OpWeights: TypeAlias = jax.Array
"""float[E, K]: a supernet's weights of K candidates in each of its E mixed slots."""


@runtime_checkable
class Space(Protocol):
    """A search space: sampling, single-step moves, validity and strings."""

    @property
    def size(self) -> int: ...
    def sample(self, key: jax.Array) -> Arch: ...
    def mutate(self, key: jax.Array, arch: Arch) -> Arch: ...
    def neighbors(self, arch: Arch) -> tuple[Arch, jax.Array]: ...
    def is_valid(self, arch: Arch) -> jax.Array: ...
    def validate(self, arch: Any) -> None: ...
    def to_string(self, arch: Arch) -> str: ...
    def from_string(self, string: str) -> Arch: ...


@runtime_checkable
class Encodable(Protocol):
    """A flat float encoding of an architecture (the predictors' and BO's input)."""

    def one_hot(self, arch: Arch) -> jax.Array: ...


@runtime_checkable
class Indexed(Protocol):
    """A finite space numbered 0..size-1 (the benchmark's row order where there is one)."""

    def index(self, arch: Arch) -> jax.Array: ...
    def from_index(self, index: jax.Array | int) -> Arch: ...
    def enumerate(self) -> Arch: ...


@runtime_checkable
class Decisions(Protocol):
    """An architecture as a sequence of categorical decisions (policy and model-based
    searchers: REINFORCE, Q-learning, PNAS, NAO, Hyperband, BOHB)."""

    @property
    def decision_sizes(self) -> tuple[int, ...]: ...
    def to_decisions(self, arch: Arch) -> jax.Array: ...
    def from_decisions(self, decisions: jax.Array) -> Arch: ...


@runtime_checkable
class DecisionSpace(Space, Decisions, Protocol):
    """A space that is also a sequence of decisions (the type of the policy searchers'
    `space` argument)."""


@runtime_checkable
class HasAdjacency(Protocol):
    """The cell as a DAG with an op label on every node, `AdjacencyEncoding(matrix, ops)`
    (the WL kernel's and graph predictors' input)."""

    def adjacency(self, arch: Arch) -> Any: ...


@runtime_checkable
class HasPath(Protocol):
    """The path encoding of BANANAS (White et al., 2021): one bit per input-output path."""

    @property
    def path_dim(self) -> int: ...
    def path(self, arch: Arch) -> jax.Array: ...


@runtime_checkable
class HasSupernet(Protocol):
    """A weight-sharing supernet and the map between its op weights and architectures."""

    @property
    def supernet_shape(self) -> tuple[int, int]: ...
    def supernet(self, **config: Any) -> Any: ...
    def supernet_index(self, arch: Arch) -> jax.Array: ...
    def derive(self, weights: OpWeights) -> Arch: ...


@runtime_checkable
class LayerRules(Protocol):
    """Layer-by-layer construction under rules, as a state machine (MetaQNN's agent walks
    it: its Q-learning state is the current layer and the representation size)."""

    @property
    def num_tokens(self) -> int: ...
    @property
    def max_layers(self) -> int: ...
    def start_state(self) -> Any: ...
    def next_state(self, state: Any, token: jax.Array) -> Any: ...
    def allowed_next(self, state: Any) -> jax.Array: ...
    def state_size(self, state: Any) -> jax.Array: ...


@runtime_checkable
class Buildable(Protocol):
    """The discrete network of an architecture as a Flax NNX module."""

    def build(self, arch: Arch, **config: Any) -> Any: ...


CAPABILITIES: tuple[type, ...] = (
    Space,
    Encodable,
    Indexed,
    Decisions,
    HasAdjacency,
    HasPath,
    HasSupernet,
    LayerRules,
    Buildable,
)


def _members(protocol: type) -> list[str]:
    return sorted(n for n in vars(protocol) if not n.startswith("_"))


_ABSENT = object()


def missing(space: Any, protocol: type) -> list[str]:
    """The methods and attributes of `protocol` that `space` lacks (empty: it conforms).

    Python 3.11's `isinstance` against a runtime protocol reads every property, and a
    property that refuses (`NBNLP.size`: the space is not enumerable) raised out of the
    check. Here a member the space's class declares counts without being read
    (`inspect.getattr_static`); one it forwards (`__getattr__`, e.g. the transfer priors'
    spaces) is read, and counts unless reading it raises `AttributeError`."""
    return [n for n in _members(protocol) if not _declares(space, n)]


def _declares(space: Any, name: str) -> bool:
    import inspect

    if inspect.getattr_static(space, name, _ABSENT) is not _ABSENT:
        return True
    try:
        getattr(space, name)
    except AttributeError:
        return False
    except Exception:  # it is there and refuses to be read (a property of a forwarded space)
        return True
    return True


def offers(space: Any, protocol: type) -> bool:
    """Whether `space` declares every method and attribute of `protocol` (`isinstance`
    without evaluating a property)."""
    return not missing(space, protocol)


def capabilities(space: Any) -> tuple[str, ...]:
    """The names of the protocols `space` conforms to."""
    return tuple(p.__name__ for p in CAPABILITIES if offers(space, p))


def require(where: str, space: Any, *protocols: type) -> None:
    """Raise `ValueError` at construction unless `space` offers every one of `protocols`,
    naming the capability and the methods it lacks."""
    for protocol in protocols:
        if not offers(space, protocol):
            raise ValueError(
                f"{where}: needs a space offering {protocol.__name__} "
                f"({', '.join(_members(protocol))}); {type(space).__name__} "
                f"lacks {missing(space, protocol)}"
            )
