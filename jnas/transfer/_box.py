"""A search space restricted to the choices good on earlier tasks (Perrone, Shen, Seeger,
Archambeau & Jenatton, NeurIPS 2019: "Learning search spaces for Bayesian optimization",
the bounding box of the source tasks' best configurations; here per categorical decision,
the set of choices the sources' best cells make). Any searcher runs on the restricted space
unchanged: it samples and mutates within the box, and indexes the base table's rows.
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
class BoxedSpace:
    """`base` whose every decision d may take only the choices `allowed[d][k]`; all else
    (index, encodings, strings, decisions) is the base space's."""

    base: Any
    allowed: tuple[tuple[bool, ...], ...]

    def __getattr__(self, name: str) -> Any:  # everything else is the base space's
        if name in ("base", "allowed"):
            raise AttributeError(name)
        return getattr(self.base, name)

    @property
    def size(self) -> int:
        return int(np.prod([sum(row) for row in self.allowed]))

    def _logits(self) -> jax.Array:
        return jnp.where(jnp.asarray(self.allowed), 0.0, -jnp.inf)

    def contains(self, arch: Any) -> jax.Array:
        """bool[]: every decision within the box (jittable)."""
        d = self.base.to_decisions(arch).astype(jnp.int32)
        return jnp.all(jnp.asarray(self.allowed)[jnp.arange(d.shape[0]), d])

    def sample(self, key: jax.Array) -> Any:
        """A uniformly random cell of the box."""
        return self.base.from_decisions(jax.random.categorical(key, self._logits(), axis=-1))

    def mutate(self, key: jax.Array, arch: Any) -> Any:
        """The base space's mutation, a decision it moved out of the box redrawn within."""
        k_mut, k_fix = jax.random.split(key)
        d = self.base.to_decisions(self.base.mutate(k_mut, arch)).astype(jnp.int32)
        ok = jnp.asarray(self.allowed)[jnp.arange(d.shape[0]), d]
        fix = jax.random.categorical(k_fix, self._logits(), axis=-1)
        return self.base.from_decisions(jnp.where(ok, d, fix))

    def neighbors(self, arch: Any) -> tuple[Any, jax.Array]:
        """The base space's neighbours, those outside the box masked out."""
        batch, mask = self.base.neighbors(arch)
        return batch, mask & jax.vmap(self.contains)(batch)


def decision_box(space: Any, scores: jax.Array, top: int = 5) -> BoxedSpace:
    """The box of the choices made by each source task's `top` best rows (`scores[T, N]`,
    higher is better, rows of an indexed space with decisions). Perrone et al. use each
    source's best (`top=1`); with few sources a few more keep the box from collapsing to a
    handful of cells."""
    require("decision_box", space, Space, Decisions, Indexed)
    check_positive("decision_box", top=top)
    if scores.ndim != 2:
        raise ValueError(f"decision_box: `scores` must be [tasks, rows]; got {scores.shape}")
    s = np.where(np.isnan(np.asarray(scores)), -np.inf, np.asarray(scores))
    rows = np.argsort(-s, axis=1)[:, :top].reshape(-1)
    decisions = np.asarray(jax.vmap(lambda r: space.to_decisions(space.from_index(r)))(rows))
    sizes = space.decision_sizes
    allowed = np.zeros((len(sizes), max(sizes)), bool)
    allowed[np.arange(len(sizes))[None, :], decisions] = True
    return BoxedSpace(space, tuple(tuple(bool(v) for v in row) for row in allowed))
