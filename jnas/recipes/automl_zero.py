"""AutoML-Zero (Real et al., ICML 2020) as a resumable run: `run_automl_zero` evolves
learning algorithms on the paper's linear regression tasks or on projected binary digit
tasks through the run driver (`jnas.runs.run_units`), so that `jnas automl-zero`, the
experiment script and a Python caller share one loop with records, checkpoints, resume,
progress and a stop at the target.

The loop is the authors' demo: regularized evolution on a fixed set of 10 search tasks
(T_search); every `check_every` generations the best program so far is scored on 100
unseen tasks (T_select: 1,000 training examples each for the linear tasks) and the search
stops when that held-out fitness reaches the target (their `sufficient_fitness`, 0.9999
for the linear tasks' 1 - 2/pi arctan(RMSE)). A unit (one record, one checkpoint) is
`record_every` generations. Every random draw after the initial population is keyed by
the evaluation count it starts from, so a resumed run, or one recorded in other units,
draws what an uninterrupted run draws.
"""

from __future__ import annotations

import json
import math
import pathlib
import time
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from jnas._checks import check_positive
from jnas.search import automl_zero as amz

TASKS = ("linear", "digits")
OP_SETS: dict[str, amz.OpSet] = {
    "all": None,
    "linear": amz.LINEAR_OPS,
    "linear-by-component": amz.LINEAR_OPS_BY_COMPONENT,
}
METRICS = {"linear": ("rms", "mse"), "digits": ("accuracy",)}
RMS_TARGET = 0.9999  # the authors' `sufficient_fitness` (run_demo.sh)
MSE_TARGET = 1e-3  # --metric mse: held-out MSE below this fraction of the targets' variance
SEARCH_TASKS = 10
HELD_OUT_TASKS = 100


def automl_zero_tasks(
    task: str, seed: int, held_out_tasks: int = HELD_OUT_TASKS
) -> tuple[amz.Tasks, amz.Tasks]:
    """(T_search, T_select) of `task`: 10 search tasks drawn from `seed`, and
    `held_out_tasks` held-out tasks fixed across seeds (linear: 1,000 training examples
    each, as the demo; a smaller count draws the first of the same tasks)."""
    if task not in TASKS:
        raise ValueError(f"automl_zero_tasks: `task` must be one of {TASKS}; got {task!r}")
    _check_held_out("automl_zero_tasks", held_out_tasks)
    k_search = jax.random.fold_in(jax.random.key(seed), 7)
    if task == "linear":
        return (
            amz.linear_tasks(k_search, SEARCH_TASKS),
            _first(
                amz.linear_tasks(jax.random.key(1234), HELD_OUT_TASKS, train=1000), held_out_tasks
            ),
        )
    return (
        amz.digit_pair_tasks(k_search, SEARCH_TASKS),
        _first(amz.digit_pair_tasks(jax.random.key(1234), HELD_OUT_TASKS), held_out_tasks),
    )


def _check_held_out(where: str, n: int) -> None:
    if not 1 <= n <= HELD_OUT_TASKS:
        raise ValueError(f"{where}: `held_out_tasks` must be in [1, {HELD_OUT_TASKS}]; got {n}")


def _first(tasks: amz.Tasks, n: int) -> amz.Tasks:
    return jax.tree.map(lambda a: a[:n], tasks) if n < HELD_OUT_TASKS else tasks


def program_length(sizes: tuple[int, int, int] | None) -> int:
    """Instructions per component: 8 (empty programs grow to it), or the largest of
    `sizes` if more."""
    return max(8, *(sizes or (8,)))


def population_init(
    search_tasks: amz.Tasks,
    *,
    population: int,
    sizes: tuple[int, int, int] | None,
    vectors: int,
    metric: str,
    op_set: str,
) -> Callable[[jax.Array], amz.EvolutionState]:
    """`init(key)`: the run's initial population scored on `search_tasks` (`evolve` from
    scratch with a seed's key draws it from the key's first split); `jnas.load` builds a
    run's state template with it."""
    return lambda key: amz.initial_population(
        key,
        search_tasks,
        population=population,
        length=program_length(sizes),
        scalars=4,
        vectors=vectors,
        metric=metric,
        op_set=OP_SETS[op_set],
        sizes=sizes,
    )


def run_automl_zero(
    task: str = "linear",
    *,
    op_set: str = "all",
    sizes: tuple[int, int, int] | None = None,
    metric: str | None = None,
    vectors: int = 4,
    population: int = 1000,
    tournament: int = 10,
    children: int = 100,
    mutate_prob: float = 0.9,
    max_evaluations: int = 1_000_000,
    target: float | None = None,
    check_every: int = 10,
    record_every: int = 100,
    held_out_tasks: int = HELD_OUT_TASKS,
    seed: int = 0,
    out: str | pathlib.Path | None = None,
    resume: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """Evolve programs on `task` until the held-out fitness reaches `target` or
    `max_evaluations` programs were evaluated; returns (and writes to `out/summary.json`,
    the fitness curve to `out/fitness.png`) the summary: `evaluations_to_target` (None if
    not reached), the best program as text (and its live instructions), its held-out
    fitness, the history `[evaluations, held-out, search fitness]` per check.

    `metric`: linear `rms` (default; target 0.9999) or `mse` (fitness = minus the MSE;
    target: below 1e-3 of the held-out targets' variance); digits `accuracy` (no target
    unless given). `op_set` names `OP_SETS`; `sizes` starts from random programs of those
    (setup, predict, learn) sizes and keeps them (the authors' demo), default empty
    programs that grow to 8 instructions per component. `held_out_tasks` (<= 100) checks
    on fewer unseen tasks, for a quick run. `progress(evaluations, max_evaluations)` after
    every unit; with `out`, records and checkpoints go there and `resume=True` continues
    a killed run (with a larger `max_evaluations`, a finished one).
    """
    metric = _check(task, op_set, sizes, metric, max_evaluations, check_every, record_every)
    _check_held_out("run_automl_zero", held_out_tasks)
    check_positive(
        "run_automl_zero",
        vectors=vectors,
        population=population,
        tournament=tournament,
        children=children,
    )
    if children > population or vectors < 2 or not 0.0 <= mutate_prob <= 1.0:
        raise ValueError(
            "run_automl_zero: expected children <= population, vectors >= 2 (v0 holds the"
            f" features) and mutate_prob in [0, 1]; got children={children},"
            f" population={population}, vectors={vectors}, mutate_prob={mutate_prob}"
        )
    search_tasks, held_out = automl_zero_tasks(task, seed, held_out_tasks)
    extra: dict[str, Any] = {}
    if task == "linear":  # SGD's own figures on T_select, for scale
        variance = float(np.mean(np.asarray(held_out.y_valid) ** 2))
        mse, rms = jax.jit(
            lambda p: [
                amz.evaluate(p, held_out, jax.random.key(99), metric=m) for m in METRICS[task][::-1]
            ]
        )(amz.parse_program(amz.SGD_LINEAR, 8))
        extra = {
            "target_variance": variance,
            "sgd_reference_mse": -float(mse),
            "sgd_reference_rms_fitness": float(rms),
        }
    if target is None:
        target = {"rms": RMS_TARGET, "mse": -MSE_TARGET * extra.get("target_variance", 0.0)}.get(
            metric
        )
    config = {
        "population": population,
        "tournament": tournament,
        "children": children,
        "length": program_length(sizes),
        "metric": metric,
        "op_set": OP_SETS[op_set],
        "sizes": sizes,
        "vectors": vectors,
        "mutate_prob": mutate_prob,
    }
    score = jax.jit(
        lambda p: amz.evaluate(p, held_out, jax.random.key(99), metric=metric, vectors=vectors)
    )
    key = jax.random.key(seed)
    k_population, k_first = jax.random.split(key)  # as `evolve(key, ...)` from scratch

    def reached(fitness: float) -> bool:
        return target is not None and fitness >= target

    def unit(state: amz.EvolutionState, u: int) -> tuple[amz.EvolutionState, dict, dict]:
        start = time.perf_counter()
        history = []
        if int(state.evaluations) == population:  # fresh: `evolve`'s first generation
            state = amz.evolve(k_first, search_tasks, generations=1, state=state, **config)
        for _ in range(record_every // check_every):
            done = int(state.evaluations)
            if done >= max_evaluations:
                break
            state = amz.evolve(
                jax.random.fold_in(key, done),
                search_tasks,
                generations=check_every,
                state=state,
                **config,
            )
            held = float(score(state.best))
            history.append([int(state.evaluations), held, float(state.best_fitness)])
            if reached(held):
                break
        held = history[-1][1] if history else float(score(state.best))
        record = {
            "unit": u,
            "evaluations": int(state.evaluations),
            "search_fitness": float(state.best_fitness),
            "held_out_fitness": held,
            "target_reached": reached(held),
            "history": history,
            "seconds": round(time.perf_counter() - start, 3),
        }
        return state, {}, record  # a program's non-finite output is its fitness' concern

    def until(record: dict) -> bool:
        return record["target_reached"] or record["evaluations"] >= max_evaluations

    from jnas.runs import run_units

    state, records = run_units(
        unit,
        units=math.ceil(max(0, max_evaluations - population - children) / (children * check_every)),
        init=population_init(
            search_tasks,
            population=population,
            sizes=sizes,
            vectors=vectors,
            metric=metric,
            op_set=op_set,
        ),
        key=k_population,
        out=out,
        resume=resume,
        on_record=None
        if progress is None
        else lambda r: progress(min(r["evaluations"], max_evaluations), max_evaluations),
        until=until,
    )
    history = [h for r in records for h in r["history"]]
    held = history[-1][1] if history else float(score(state.best))
    summary = {
        "task": task,
        "op_set": op_set,
        "metric": metric,
        "sizes": list(sizes) if sizes else None,
        "vectors": vectors,
        "population": population,
        "tournament": tournament,
        "children": children,
        "mutate_prob": mutate_prob,
        "seed": seed,
        "max_evaluations": max_evaluations,
        "target": target,
        "evaluations_to_target": int(state.evaluations) if reached(held) else None,
        "evaluations": int(state.evaluations),
        "held_out_fitness": held,
        "held_out_tasks": held_out_tasks,
        "search_fitness": float(state.best_fitness),
        "best_program": amz.to_text(state.best),
        "best_program_live": amz.to_text(state.best, live_only=True, vectors=vectors),
        "history": history,
        "wall_s": round(sum(r["seconds"] for r in records), 1),
        "device": jax.devices()[0].platform,
        **extra,
    }
    if out is not None:
        from jnas.plots import plot_fitness

        (pathlib.Path(out) / "summary.json").write_text(json.dumps(summary, indent=1))
        plot_fitness(
            history,
            pathlib.Path(out) / "fitness.png",
            target=target,
            title=f"AutoML-Zero, {task} tasks ({metric}), seed {seed}",
        )
    return summary


def _check(task, op_set, sizes, metric, max_evaluations, check_every, record_every) -> str:
    """The metric to use; bad arguments raise here, before anything runs."""
    if task not in TASKS:
        raise ValueError(f"run_automl_zero: `task` must be one of {TASKS}; got {task!r}")
    if op_set not in OP_SETS:
        raise ValueError(
            f"run_automl_zero: `op_set` must be one of {tuple(OP_SETS)}; got {op_set!r}"
        )
    metric = metric or METRICS[task][0]
    if metric not in METRICS[task]:
        raise ValueError(
            f"run_automl_zero: `metric` for the {task} tasks must be one of {METRICS[task]};"
            f" got {metric!r}"
        )
    if sizes is not None and (len(sizes) != 3 or not all(int(n) >= 1 for n in sizes)):
        raise ValueError(f"run_automl_zero: `sizes` must be 3 sizes >= 1; got {sizes!r}")
    check_positive(
        "run_automl_zero",
        max_evaluations=max_evaluations,
        check_every=check_every,
        record_every=record_every,
    )
    if record_every % check_every:
        raise ValueError(
            f"run_automl_zero: `record_every` must be a multiple of `check_every`"
            f" ({check_every}); got {record_every}"
        )
    return metric
