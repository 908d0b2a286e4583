"""Warm starts in front of any searcher: given architectures first (a portfolio from earlier
tasks), or a zero-cost one (Abdelfattah et al., ICLR 2021, §5: "warmup"
of regularized evolution and of model-based search with a proxy such as SynFlow).

`init` draws `candidates` random architectures, scores them with a cheap proxy (untrained
networks: seconds for thousands) and keeps the best `warm`; the first `warm` asks hand those
out instead of the inner searcher's own first draws (REA's random initial population, BO's and
BANANAS' initial design), and every tell goes to the inner searcher, whose population or model
is thereby seeded with the proxy's picks. After that the inner searcher runs unchanged. The
proxy's time is not an evaluation: charge it to the clock (`bench.simulate(..., setup_s=)`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jnas._checks import check_positive
from jnas.search._base import Searcher
from jnas.spaces import Space, require

Scores = Callable[[Any], jax.Array]  # a batch of archs -> float[B] (higher is better)


class WarmupState(NamedTuple):
    inner: Any  # the wrapped searcher's state
    warm: Any  # archs [warm]: the proxy's best candidates, best first
    asked: jax.Array  # int32[]: candidates asked so far


def _prefixed(searcher: Searcher, warm: int, first: Callable[[jax.Array], Any]) -> Searcher:
    """`searcher` whose first `warm` asks are `first(key)`'s architectures (best first)
    instead of its own draws; every tell goes to it."""
    batch = searcher.batch_size

    def init(key: jax.Array) -> WarmupState:
        k_inner, k_first = jax.random.split(key)
        return WarmupState(searcher.init(k_inner), first(k_first), jnp.zeros((), jnp.int32))

    def ask(key: jax.Array, state: WarmupState) -> tuple[Any, WarmupState]:
        archs, inner = searcher.ask(key, state.inner)
        slot = state.asked + jnp.arange(batch)
        use = slot < warm
        chosen = jax.tree.map(lambda a: a[jnp.minimum(slot, warm - 1)], state.warm)

        def pick(w, a):
            return jnp.where(use.reshape((-1,) + (1,) * (a.ndim - 1)), w, a)

        archs = jax.tree.map(pick, chosen, archs)
        return archs, WarmupState(inner, state.warm, state.asked + batch)

    def tell(state: WarmupState, archs: Any, fitness: jax.Array) -> WarmupState:
        return state._replace(inner=searcher.tell(state.inner, archs, fitness))

    return Searcher(init, ask, tell, batch)


def _check_single_fidelity(where: str, searcher: Searcher) -> None:
    if searcher.fidelities > 1:
        raise ValueError(f"{where}: multi-fidelity searchers are not supported")


def zero_cost_warmup(
    searcher: Searcher, space: Any, scores: Scores, *, candidates: int = 1000, warm: int = 10
) -> Searcher:
    """`searcher` whose first `warm` candidates are the best of `candidates` random
    architectures under `scores` (jittable, e.g. a precomputed proxy column looked up by
    `space.index`, or `jnas.proxies` on the fly). NaN scores rank last."""
    require("zero_cost_warmup", space, Space)
    check_positive("zero_cost_warmup", candidates=candidates, warm=warm)
    if warm > candidates:
        raise ValueError(
            f"zero_cost_warmup: `warm` must be <= candidates ({candidates}); got {warm}"
        )
    _check_single_fidelity("zero_cost_warmup", searcher)

    def first(key: jax.Array) -> Any:
        pool = jax.vmap(space.sample)(jax.random.split(key, candidates))
        s = jnp.asarray(scores(pool), jnp.float32)
        s = jnp.where(jnp.isnan(s), -jnp.inf, s)
        top = jnp.argsort(-s)[:warm]
        return jax.tree.map(lambda a: a[top], pool)

    return _prefixed(searcher, warm, first)


def warm_start(searcher: Searcher, space: Any, archs: Any) -> Searcher:
    """`searcher` that first evaluates the given architectures of `space` (a batch, in
    order), e.g. a portfolio learned on earlier tasks (`jnas.transfer.portfolio`), then
    runs as itself, its population or model seeded with their results."""
    require("warm_start", space, Space)
    _check_single_fidelity("warm_start", searcher)
    one = jax.eval_shape(space.sample, jax.random.key(0))
    want = [(a.ndim + 1, a.dtype) for a in jax.tree.leaves(one)]
    got = [(jnp.ndim(a), jnp.asarray(a).dtype) for a in jax.tree.leaves(archs)]
    if jax.tree.structure(one) != jax.tree.structure(archs) or got != want:
        raise ValueError(
            "warm_start: `archs` must be a batch of the space's architectures (a leading "
            f"axis on each field: rank and dtype {want}); got {got}"
        )
    fixed = jax.tree.map(jnp.asarray, archs)
    warm = int(jax.tree.leaves(fixed)[0].shape[0])
    check_positive("warm_start", archs=warm)
    return _prefixed(searcher, warm, lambda key: fixed)
