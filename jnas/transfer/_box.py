"""Search spaces shaped by earlier tasks: a prior over each categorical decision.

- `decision_box`: the space restricted to the choices the sources' best cells make
  (Perrone, Shen, Seeger, Archambeau & Jenatton, NeurIPS 2019, "Learning search spaces for
  Bayesian optimization": the bounding box of the sources' best configurations).
- `quantile_prior`: random draws follow how often each choice occurs among the sources'
  top-quantile cells (after Salinas, Shen & Perrone, ICML 2020, whose priors come from the
  sources' good quantiles), smoothed so that no choice is impossible.

Any searcher runs on the shaped space unchanged: it samples from the prior, mutates within
its support, and indexes the base table's rows.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jnas._checks import check_positive
from jnas.spaces import Decisions, Indexed, Space, require


@dataclasses.dataclass(frozen=True)
class PriorSpace:
    """`base` whose decision d is drawn with log-probabilities `logits[d][k]` (-inf: the
    choice is outside the space); all else (index, encodings, strings, decisions) is the
    base space's."""

    base: Any
    logits: tuple[tuple[float, ...], ...]

    def __getattr__(self, name: str) -> Any:  # everything else is the base space's
        if name in ("base", "logits"):
            raise AttributeError(name)
        return getattr(self.base, name)

    @property
    def allowed(self) -> np.ndarray:
        """bool[D, K]: the choices inside the space."""
        return np.isfinite(np.asarray(self.logits))

    @property
    def size(self) -> int:
        return int(np.prod(self.allowed.sum(1)))

    def _logits(self) -> jax.Array:
        return jnp.asarray(self.logits, jnp.float32)

    def contains(self, arch: Any) -> jax.Array:
        """bool[]: every decision within the box (jittable)."""
        d = self.base.to_decisions(arch).astype(jnp.int32)
        return jnp.all(jnp.asarray(self.allowed)[jnp.arange(d.shape[0]), d])

    def sample(self, key: jax.Array) -> Any:
        """A cell drawn from the prior (uniform within a box)."""
        return self.base.from_decisions(jax.random.categorical(key, self._logits(), axis=-1))

    def mutate(self, key: jax.Array, arch: Any) -> Any:
        """The base space's mutation, a decision it moved outside redrawn from the prior."""
        k_mut, k_fix = jax.random.split(key)
        d = self.base.to_decisions(self.base.mutate(k_mut, arch)).astype(jnp.int32)
        ok = jnp.asarray(self.allowed)[jnp.arange(d.shape[0]), d]
        fix = jax.random.categorical(k_fix, self._logits(), axis=-1)
        return self.base.from_decisions(jnp.where(ok, d, fix))

    def neighbors(self, arch: Any) -> tuple[Any, jax.Array]:
        """The base space's neighbours, those outside the box masked out."""
        batch, mask = self.base.neighbors(arch)
        return batch, mask & jax.vmap(self.contains)(batch)


def _top_decisions(where: str, space: Any, scores: jax.Array, top: int) -> np.ndarray:
    """int[T * top, D]: the decisions of each task's `top` best rows."""
    require(where, space, Space, Decisions, Indexed)
    check_positive(where, top=top)
    if scores.ndim != 2:
        raise ValueError(f"{where}: `scores` must be [tasks, rows]; got {scores.shape}")
    s = np.where(np.isnan(np.asarray(scores)), -np.inf, np.asarray(scores))
    rows = np.argsort(-s, axis=1)[:, :top].reshape(-1)
    return np.asarray(jax.vmap(lambda r: space.to_decisions(space.from_index(r)))(rows))


def decision_box(space: Any, scores: jax.Array, top: int = 5) -> PriorSpace:
    """The box of the choices made by each source task's `top` best rows (`scores[T, N]`,
    higher is better, rows of an indexed space with decisions). Perrone et al. use each
    source's best (`top=1`); with few sources a few more keep the box from collapsing to a
    handful of cells."""
    decisions = _top_decisions("decision_box", space, scores, top)
    sizes = space.decision_sizes
    allowed = np.zeros((len(sizes), max(sizes)), bool)
    allowed[np.arange(len(sizes))[None, :], decisions] = True
    return _space(space, np.where(allowed, 0.0, -np.inf))


def quantile_prior(
    space: Any, scores: jax.Array, quantile: float = 0.1, smoothing: float = 1.0
) -> PriorSpace:
    """A prior from how often each choice occurs among each source task's best `quantile`
    of rows (`scores[T, N]`), plus `smoothing` pseudo-counts per choice (every cell stays
    reachable)."""
    if not 0.0 < quantile <= 1.0:
        raise ValueError(f"quantile_prior: `quantile` must be in (0, 1]; got {quantile!r}")
    if not smoothing > 0:
        raise ValueError(f"quantile_prior: `smoothing` must be > 0; got {smoothing!r}")
    top = max(1, round(quantile * scores.shape[-1]))
    decisions = _top_decisions("quantile_prior", space, scores, top)
    sizes = space.decision_sizes
    counts = np.zeros((len(sizes), max(sizes)))
    np.add.at(counts, (np.arange(len(sizes))[None, :], decisions), 1.0)
    valid = np.arange(max(sizes))[None, :] < np.asarray(sizes)[:, None]
    counts = np.where(valid, counts + smoothing, 0.0)
    return _space(space, np.log(counts / counts.sum(1, keepdims=True)))


def _space(space: Any, logits: np.ndarray) -> PriorSpace:
    return PriorSpace(space, tuple(tuple(float(v) for v in row) for row in logits))
