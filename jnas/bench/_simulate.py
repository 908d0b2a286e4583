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
from jnas.predictors import CurveForecast, probability_better
from jnas.search import Searcher


class Stops(NamedTuple):
    """Per check epoch and table row: what stopping there costs and what was forecast.

    checks: int32[C], the check epochs (increasing); cost_s: float32[C, rows], the run's
    (cumulative) cost up to each check; forecast: the final value's forecast at each check
    in fitness units (higher is better), every field with leading axes [C, rows];
    threshold: float32[], stop when P(final > incumbent) is below it.
    """

    checks: jax.Array
    cost_s: jax.Array
    forecast: CurveForecast
    threshold: jax.Array


def stop_decisions(
    stops: Stops, rows: jax.Array, incumbent: jax.Array
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(stopped bool[Q], check index int32[Q] (the first check that stops, 0 if none),
    P(final beats the incumbent) float32[C, Q]) of queries `rows` against one seed's
    incumbent fitness (-inf: none yet, never stops; a NaN forecast never stops)."""
    fc = jax.tree.map(lambda a: a[:, rows], stops.forecast)
    level = jnp.broadcast_to(incumbent, fc.mean.shape)
    p = probability_better(fc, level, increasing=True)
    stop = (p < stops.threshold) & jnp.isfinite(incumbent)  # NaN < thr is False
    return jnp.any(stop, 0), jnp.argmax(stop, 0).astype(jnp.int32), p


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Objective:
    """Fitness and simulated cost of every row of a table (jittable lookup).

    Build with `objective(table, ...)`; `obj(archs) -> (fitness, cost_s)`. A
    multi-fidelity objective (`epochs=(12, 200)`) holds one row of each per fidelity, lowest
    first; `obj(archs, fidelity)` looks up the given fidelities (default: the highest).
    """

    fitness: jax.Array  # float32[rows] or [fidelities, rows]: the signal (NaN where missing)
    cost_s: jax.Array  # float32[rows] or [fidelities, rows]: simulated seconds per query
    space: Any = dataclasses.field(metadata={"static": True})
    description: str = dataclasses.field(metadata={"static": True})
    # multi-fidelity only: `cost_s` is cumulative and a run continues from the highest
    # fidelity it was trained to (charged the difference; a lower one is free)
    resume: bool = dataclasses.field(default=False, metadata={"static": True})
    # runs stopped early by learning-curve extrapolation (`curve_stopping`), or None
    stops: Stops | None = None

    @property
    def fidelities(self) -> int:
        return 1 if self.fitness.ndim == 1 else self.fitness.shape[0]

    def __call__(
        self, archs: Any, fidelity: jax.Array | None = None
    ) -> tuple[jax.Array, jax.Array]:
        rows = jax.vmap(self.space.index)(archs)
        return _lookup(self.fitness, self.cost_s, rows, fidelity)


def _lookup(
    fitness: jax.Array, cost: jax.Array, rows: jax.Array, fidelity: jax.Array | None
) -> tuple[jax.Array, jax.Array]:
    if fitness.ndim == 1:
        return fitness[rows], cost[rows]
    if fidelity is None:
        fidelity = jnp.full(rows.shape, fitness.shape[0] - 1, jnp.int32)
    return fitness[fidelity, rows], cost[fidelity, rows]


def objective(
    table: Table,
    *,
    dataset: str,
    metric: str,
    epochs: int | tuple[int, ...],
    seed: int | None = None,
    cost: str = "train_time_s",
    minimize: bool = False,
    resume: bool = False,
) -> Objective:
    """An objective from a table: fitness = (dataset, metric, epochs[, seed]), each query
    charged (dataset, `cost`, epochs), or 1 per query with `cost="evaluations"` (for
    tables without training times, such as the compact NATS size table: the budget is
    then a number of evaluations).

    For the NB201 protocol (Dong & Yang 2020, Table 5): `dataset="cifar10-valid",
    metric="valid_acc", epochs=12` (or 200). For multi-fidelity searchers (Hyperband,
    BOHB), a tuple of increasing epochs, e.g. `epochs=(12, 200)`: each query is charged the
    training time at the fidelity it is evaluated at.

    `minimize=True` searches for the lowest value (fitness = -value: a loss or a
    perplexity). `resume=True` (multi-fidelity, cumulative `cost` columns such as
    NAS-Bench-NLP's `train_time_s`) continues runs as Hyperband's promotions do in
    reality: a query at fidelity f of a cell already trained to f' < f is charged
    cost[f] - cost[f'], one at f <= f' is free (the value is on the logged curve), as
    NAS-Bench-NLP's own `Environment.simulated_train` charges.
    """
    if isinstance(epochs, tuple):
        if len(epochs) < 2 or list(epochs) != sorted(set(epochs)):
            raise ValueError(
                f"objective: `epochs` must be an int or a tuple of increasing "
                f"epochs (lowest fidelity first); got {epochs!r}"
            )
        parts = [
            objective(
                table,
                dataset=dataset,
                metric=metric,
                epochs=e,
                seed=seed,
                cost=cost,
                minimize=minimize,
            )
            for e in epochs
        ]
        cost_s = jnp.stack([p.cost_s for p in parts])
        if resume and not bool(jnp.all(jnp.nan_to_num(jnp.diff(cost_s, axis=0), nan=0.0) >= 0)):
            raise ValueError(
                f"objective: `resume=True` needs a cumulative cost ({cost!r} must not "
                "decrease with the epochs)"
            )
        return Objective(
            jnp.stack([p.fitness for p in parts]),
            cost_s,
            table.space,
            parts[-1].description.replace(f"at {epochs[-1]} epochs", f"at {epochs} epochs")
            + (", resumed runs" if resume else ""),
            resume,
        )
    if resume:
        raise ValueError("objective: `resume=True` needs several fidelities (a tuple of epochs)")
    fitness = table.column(dataset, metric, epochs, seed)
    if minimize:
        fitness = -fitness
    if cost == "evaluations":
        cost_col = jnp.ones_like(fitness)
    else:
        cost_col = table.column(dataset, cost, epochs)
    desc = (
        f"{table.name}: {dataset} {metric} at {epochs} epochs"
        + (f", seed {seed}" if seed is not None else "")
        + f", cost {cost}"
        + (" (minimised)" if minimize else "")
    )
    return Objective(fitness, cost_col, table.space, desc)


class Simulation(NamedTuple):
    """Per seed and step (host arrays): the state after the step's evaluations."""

    time_s: np.ndarray  # float32[seeds, steps]: simulated time spent
    best_fitness: np.ndarray  # float32[seeds, steps]: best fitness so far (-inf before any)
    best_row: np.ndarray  # int32[seeds, steps]: table row of that incumbent (-1 before any)
    num_evals: np.ndarray  # int32[seeds]: evaluations charged within the budget
    budget_s: float
    num_stopped: np.ndarray | None = None  # int32[seeds]: of them, stopped early

    def report(
        self,
        table: Table,
        *,
        dataset: str,
        metric: str,
        epochs: int | None,
        seed: int | None = None,
    ) -> np.ndarray:
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


def simulate(
    searcher: Searcher,
    obj: Objective,
    *,
    key: jax.Array,
    num_seeds: int,
    budget_s: float,
    max_steps: int | None = None,
    chunk: int = 4096,
    progress: Any = None,
    setup_s: float = 0.0,
    compiler_options: dict[str, Any] | None = None,
) -> Simulation:
    """Run `num_seeds` independent searches, each until `budget_s` simulated seconds.

    A step asks a batch, looks up fitness and cost, and tells; a run stops once its
    budget is spent (the evaluation that crosses it counts, as in the NB201 code) and
    its curves hold their final values from there on. Seeds run `chunk` at a time, each chunk one compiled `vmap`-of-`scan` program;
    seed i always uses `jax.random.fold_in(key, i)`, so the draws do not depend on `chunk`
    (a surrogate's float sums may round differently at another batch size, which can
    change a model-based searcher's choice now and then).

    Args:
      searcher: the searcher (see `jnas.search`).
      obj: fitness and cost per row (`objective(table, ...)`).
      key: PRNG key; seed i uses `fold_in(key, i)`.
      num_seeds: independent runs.
      budget_s: simulated seconds per run.
      max_steps: scan length; default: enough for the cheapest architectures.
      chunk: seeds per compiled call (memory bound).
      progress: optional callable `progress(done_seeds, num_seeds)`.
      setup_s: simulated seconds already spent when the search starts (e.g. scoring
        candidates with a zero-cost proxy for a warm start), charged to every seed.
      compiler_options: XLA options of the compiled program, e.g.
        `{"xla_backend_optimization_level": 0}`, which compiles a cheap searcher's program
        3-4x faster on CPU (its run is then slower: for searchers whose run is short).
    """
    if not isinstance(num_seeds, int) or num_seeds < 1:
        raise ValueError(f"simulate: `num_seeds` must be an integer >= 1; got {num_seeds!r}")
    if not budget_s > 0:
        raise ValueError(f"simulate: `budget_s` must be > 0; got {budget_s!r}")
    if searcher.fidelities > 1 and searcher.fidelities != obj.fidelities:
        raise ValueError(
            f"simulate: the searcher uses {searcher.fidelities} fidelities but "
            f"the objective has {obj.fidelities}; build it with a tuple of "
            "epochs, e.g. `objective(table, ..., epochs=(12, 200))`"
        )
    if max_steps is None:
        max_steps = max_steps_for(obj, budget_s, searcher.batch_size)
    if not 0 <= setup_s < budget_s:
        raise ValueError(f"simulate: `setup_s` must be in [0, budget_s); got {setup_s!r}")
    if obj.stops is not None and searcher.fidelities > 1:
        raise ValueError(
            "simulate: a multi-fidelity searcher picks its own fidelities; early stopping "
            "(`curve_stopping`) is for single-fidelity searchers"
        )
    batch = simulate_batch(searcher, obj.space, budget_s, max_steps, setup_s, resume=obj.resume)
    # the seeds' keys are derived inside the compiled program: one compile, not two
    run = jax.jit(
        lambda key, seeds, fitness, cost, stops: batch(
            jax.vmap(lambda i: jax.random.fold_in(key, i))(seeds), fitness, cost, stops
        ),
        compiler_options=compiler_options,
    )
    parts = []
    for start in range(0, num_seeds, chunk):
        seeds = np.arange(start, min(start + chunk, num_seeds), dtype=np.int32)
        out = jax.device_get(run(key, seeds, obj.fitness, obj.cost_s, obj.stops))
        parts.append(out)
        if progress is not None:
            progress(int(seeds[-1]) + 1, num_seeds)
    time_s, best_f, best_row, n, stopped = (np.concatenate(x) for x in zip(*parts, strict=True))
    return Simulation(
        time_s, best_f, best_row, n, float(budget_s), stopped if obj.stops is not None else None
    )


def simulate_one(searcher: Searcher, space: Any, budget_s: float, max_steps: int):
    """One seed of the protocol as a pure function
    `run(key, fitness_col, cost_col) -> (time_s[T], best_fitness[T], best_row[T], num_evals)`
    (the same program as `simulate` for a batch of one)."""
    batch = simulate_batch(searcher, space, budget_s, max_steps)

    def run(key, fitness_col, cost_col):
        return jax.tree.map(lambda x: x[0], batch(key[None], fitness_col, cost_col)[:4])

    return run


def _resumed_cost(
    cost_col: jax.Array, rows: jax.Array, fid: jax.Array, trained: jax.Array, active: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """Charges of a batch of queries that continue runs (`Objective.resume`), one after
    the other: each pays cost[fid] - cost[reached] (0 if it reached fid already), and
    `trained[row]` becomes the highest fidelity reached. Inactive steps change nothing."""

    def one(trained, q):
        row, f = rows[q], fid[q]
        reached = trained[row].astype(jnp.int32)
        before = jnp.where(reached >= 0, cost_col[jnp.maximum(reached, 0), row], 0.0)
        charge = jnp.where(reached >= f, 0.0, cost_col[f, row] - before)
        new = jnp.where(active, jnp.maximum(reached, f), reached).astype(trained.dtype)
        return trained.at[row].set(new), charge

    trained, charges = jax.lax.scan(one, trained, jnp.arange(rows.shape[0]))
    return charges, trained


def simulate_batch(
    searcher: Searcher,
    space: Any,
    budget_s: float,
    max_steps: int,
    setup_s: float = 0.0,
    *,
    resume: bool = False,
):
    """The protocol for a batch of seeds: `run(keys[S], fitness_col, cost_col)`.

    The per-seed step is `vmap`ped inside one `while_loop` over steps that stops once
    every seed has spent its budget (not after the worst-case number of steps); seeds
    that are done are masked, and each step writes one column of the [S, T] curves.
    With a multi-fidelity objective (`fitness_col[F, rows]`) each query is looked up and
    charged at the fidelity the searcher asks for, and only evaluations at the highest
    fidelity can become the incumbent. With `stops` (`Objective.stops`), a query whose
    forecast at a check epoch gives P(beat the seed's incumbent) < the threshold is charged
    the cost to that epoch, told the forecast, and cannot become the incumbent.
    `run` returns (time_s[S, T], best_fitness[S, T], best_row[S, T], evaluations[S],
    stopped early[S]) (no stops: zeros).
    """

    def step_one(key, state, t, best_f, best_row, n, trained, k, fitness_col, cost_col, stops):
        active = t < budget_s
        archs, asked = searcher.ask(key, state)
        rows = jax.vmap(space.index)(archs)
        top = fitness_col.shape[0] - 1 if fitness_col.ndim == 2 else 0
        fid = (
            searcher.fidelity(asked)
            if searcher.fidelity is not None
            else jnp.full(rows.shape, top, jnp.int32)
        )
        fit, cost = _lookup(fitness_col, cost_col, rows, fid)
        if resume:  # continue each run from the fidelity it reached (in ask order)
            cost, trained = _resumed_cost(cost_col, rows, fid, trained, active)
        stopped = jnp.zeros(rows.shape, bool)
        told_fit = fit
        if stops is not None:  # the incumbent before this batch, as a run sees it
            stopped, at, _ = stop_decisions(stops, rows, best_f)
            cost = jnp.where(stopped, stops.cost_s[at, rows], cost)
            told_fit = jnp.where(stopped, stops.forecast.mean[at, rows], fit)
        # a seed whose budget is spent keeps stepping (vmap) but nothing it does from then
        # on is recorded (t, n, k and the incumbent are masked below), so its searcher
        # state is not frozen: a select over the whole state a step (a GP's factors:
        # [grid, P, P] a seed) cost BO ~12% of its run
        state = searcher.tell(asked, archs, told_fit)
        clean = jnp.where(jnp.isnan(fit) | (fid != top) | stopped, -jnp.inf, fit)
        i = jnp.argmax(clean)
        better = active & (clean[i] > best_f)
        best_f = jnp.where(better, clean[i], best_f)
        best_row = jnp.where(better, rows[i], best_row)
        t = t + jnp.where(active, jnp.sum(cost), 0.0)
        n = n + jnp.where(active, rows.shape[0], 0)
        k = k + jnp.where(active, jnp.sum(stopped), 0)
        return state, t, best_f, best_row, n, trained, k

    step_all = jax.vmap(step_one, in_axes=(0, 0, 0, 0, 0, 0, 0, 0, None, None, None))

    def run(keys, fitness_col, cost_col, stops=None):
        num = keys.shape[0]
        init_keys, loop_keys = jax.vmap(lambda k: tuple(jax.random.split(k)))(keys)
        state = jax.vmap(searcher.init)(init_keys)
        carry = (
            jnp.zeros((), jnp.int32),
            state,
            jnp.full((num,), setup_s, jnp.float32),
            jnp.full((num,), -jnp.inf, jnp.float32),
            jnp.full((num,), -1, jnp.int32),
            jnp.zeros((num,), jnp.int32),
            # per seed, the highest fidelity each row was trained to (-1: never)
            jnp.full((num, fitness_col.shape[-1] if resume else 1), -1, jnp.int8),
            jnp.zeros((num,), jnp.int32),  # runs stopped early
            (
                jnp.zeros((num, max_steps), jnp.float32),
                jnp.full((num, max_steps), -jnp.inf, jnp.float32),
                jnp.full((num, max_steps), -1, jnp.int32),
            ),
        )

        def going(carry):
            step, _, t, *_ = carry
            return (step < max_steps) & jnp.any(t < budget_s)

        def body(carry):
            step, state, t, best_f, best_row, n, trained, k, (ts, fs, rs) = carry
            keys = jax.vmap(jax.random.fold_in, in_axes=(0, None))(loop_keys, step)
            state, t, best_f, best_row, n, trained, k = step_all(
                keys, state, t, best_f, best_row, n, trained, k, fitness_col, cost_col, stops
            )
            curves = (
                ts.at[:, step].set(t),
                fs.at[:, step].set(best_f),
                rs.at[:, step].set(best_row),
            )
            return step + 1, state, t, best_f, best_row, n, trained, k, curves

        steps, _, t, best_f, best_row, n, _, k, (ts, fs, rs) = jax.lax.while_loop(
            going, body, carry
        )
        done = jnp.arange(max_steps)[None, :] >= steps  # unrun steps: the final values
        return (
            jnp.where(done, t[:, None], ts),
            jnp.where(done, best_f[:, None], fs),
            jnp.where(done, best_row[:, None], rs),
            n,
            k,
        )

    return run
