"""The benchmark protocol: many seeds of a searcher against a table, on a simulated clock.

Each query is charged its training time at the chosen fidelity, so a budget is simulated
seconds as in NAS-Bench-201 / NATS-Bench. All seeds of a chunk run in one compiled
program (`vmap` over seeds of a `lax.scan` over steps).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jnas.bench._table import Table
from jnas.search import Searcher


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Objective:
    """Fitness and simulated cost of every row of a table (jittable lookup).

    Build with `objective(table, ...)`; `obj(archs) -> (fitness, cost_s)`.
    """

    fitness: jax.Array  # float32[rows]: the searcher's signal (NaN where missing)
    cost_s: jax.Array  # float32[rows]: simulated seconds one query costs
    space: Any = dataclasses.field(metadata={"static": True})
    description: str = dataclasses.field(metadata={"static": True})

    def __call__(self, archs: Any) -> tuple[jax.Array, jax.Array]:
        rows = jax.vmap(self.space.index)(archs)
        return self.fitness[rows], self.cost_s[rows]


def objective(table: Table, *, dataset: str, metric: str, epochs: int,
              seed: int | None = None) -> Objective:
    """An objective from a table: fitness = (dataset, metric, epochs[, seed]), each query
    charged (dataset, "train_time_s", epochs).

    For the NB201 protocol (Dong & Yang 2020, Table 5): `dataset="cifar10-valid",
    metric="valid_acc", epochs=12` (or 200).
    """
    fitness = table.column(dataset, metric, epochs, seed)
    cost = table.column(dataset, "train_time_s", epochs)
    desc = f"{table.name}: {dataset} {metric} at {epochs} epochs" + (
        f", seed {seed}" if seed is not None else "")
    return Objective(fitness, cost, table.space, desc)


class Simulation(NamedTuple):
    """Per seed and step (host arrays): the state after the step's evaluations."""

    time_s: np.ndarray  # float32[seeds, steps]: simulated time spent
    best_fitness: np.ndarray  # float32[seeds, steps]: best fitness so far (-inf before any)
    best_row: np.ndarray  # int32[seeds, steps]: table row of that incumbent (-1 before any)
    num_evals: np.ndarray  # int32[seeds]: evaluations charged within the budget
    budget_s: float

    def report(self, table: Table, *, dataset: str, metric: str, epochs: int | None,
               seed: int | None = None) -> np.ndarray:
        """float32[seeds, steps]: a table value of the incumbent (NaN before any)."""
        col = np.asarray(table.column(dataset, metric, epochs, seed))
        return np.where(self.best_row >= 0, col[np.maximum(self.best_row, 0)], np.nan)

    def final_rows(self) -> np.ndarray:
        """int32[seeds]: the incumbent at the budget."""
        return self.best_row[:, -1]

    def on_grid(self, values: np.ndarray, grid: np.ndarray) -> np.ndarray:
        """`values[seeds, steps]` resampled at simulated times `grid` (last value whose
        time is <= each grid point; NaN before the first evaluation ends)."""
        grid = np.asarray(grid, np.float64)
        out = np.full((values.shape[0], grid.shape[0]), np.nan, np.float64)
        for s in range(values.shape[0]):
            idx = np.searchsorted(self.time_s[s], grid, side="right") - 1
            ok = idx >= 0
            out[s, ok] = values[s, idx[ok]]
        return out


def max_steps_for(obj: Objective, budget_s: float, batch_size: int) -> int:
    """Steps enough for the cheapest possible run to exhaust the budget."""
    cheapest = float(jnp.nanmin(obj.cost_s))
    if not cheapest > 0:
        raise ValueError(f"max_steps_for: the objective has a non-positive cost ({cheapest})")
    return math.ceil(budget_s / (cheapest * batch_size)) + 1


def simulate(searcher: Searcher, obj: Objective, *, key: jax.Array, num_seeds: int,
             budget_s: float, max_steps: int | None = None, chunk: int = 4096,
             progress: Any = None) -> Simulation:
    """Run `num_seeds` independent searches, each until `budget_s` simulated seconds.

    A step asks a batch, looks up fitness and cost, and tells; steps that begin after the
    budget is spent change nothing (the one that crosses it counts, as in the NB201
    code). Seeds run `chunk` at a time, each chunk one compiled `vmap`-of-`scan` program;
    seed i always uses `jax.random.fold_in(key, i)`, so results do not depend on `chunk`.

    Args:
      searcher: the searcher (see `jnas.search`).
      obj: fitness and cost per row (`objective(table, ...)`).
      key: PRNG key; seed i uses `fold_in(key, i)`.
      num_seeds: independent runs.
      budget_s: simulated seconds per run.
      max_steps: scan length; default: enough for the cheapest architectures.
      chunk: seeds per compiled call (memory bound).
      progress: optional callable `progress(done_seeds, num_seeds)`.
    """
    if not isinstance(num_seeds, int) or num_seeds < 1:
        raise ValueError(f"simulate: `num_seeds` must be an integer >= 1; got {num_seeds!r}")
    if not budget_s > 0:
        raise ValueError(f"simulate: `budget_s` must be > 0; got {budget_s!r}")
    if max_steps is None:
        max_steps = max_steps_for(obj, budget_s, searcher.batch_size)
    run = jax.jit(jax.vmap(simulate_one(searcher, obj.space, budget_s, max_steps),
                           in_axes=(0, None, None)))
    parts = []
    for start in range(0, num_seeds, chunk):
        seeds = jnp.arange(start, min(start + chunk, num_seeds))
        keys = jax.vmap(lambda i: jax.random.fold_in(key, i))(seeds)
        out = jax.device_get(run(keys, obj.fitness, obj.cost_s))
        parts.append(out)
        if progress is not None:
            progress(int(seeds[-1]) + 1, num_seeds)
    time_s, best_f, best_row, n = (np.concatenate(x) for x in zip(*parts, strict=True))
    return Simulation(time_s, best_f, best_row, n, float(budget_s))


def simulate_one(searcher: Searcher, space: Any, budget_s: float, max_steps: int):
    """One seed of the protocol as a pure function
    `run(key, fitness_col, cost_col) -> (time_s[T], best_fitness[T], best_row[T], num_evals)`
    (what `simulate` vmaps over seeds)."""

    def run(key, fitness_col, cost_col):
        init_key, loop_key = jax.random.split(key)
        state = searcher.init(init_key)
        carry = (state, jnp.zeros((), jnp.float32), jnp.full((), -jnp.inf, jnp.float32),
                 jnp.full((), -1, jnp.int32), jnp.zeros((), jnp.int32))

        def step(carry, k):
            state, t, best_f, best_row, n = carry
            active = t < budget_s
            archs, asked = searcher.ask(k, state)
            rows = jax.vmap(space.index)(archs)
            fit, cost = fitness_col[rows], cost_col[rows]
            told = searcher.tell(asked, archs, fit)
            state = jax.tree.map(lambda a, b: jnp.where(active, a, b), told, state)
            clean = jnp.where(jnp.isnan(fit), -jnp.inf, fit)
            i = jnp.argmax(clean)
            better = active & (clean[i] > best_f)
            best_f = jnp.where(better, clean[i], best_f)
            best_row = jnp.where(better, rows[i], best_row)
            t = t + jnp.where(active, jnp.sum(cost), 0.0)
            n = n + jnp.where(active, rows.shape[0], 0)
            return (state, t, best_f, best_row, n), (t, best_f, best_row)

        final, (ts, fs, rs) = jax.lax.scan(step, carry, jax.random.split(loop_key, max_steps))
        return ts, fs, rs, final[4]

    return run
