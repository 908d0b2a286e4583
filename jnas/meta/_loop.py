"""Meta-training runs: task batches sampled on the device, chunks of outer steps, NaN
checks, JSON-lines records and resumable checkpoints; evaluation with 95% intervals."""

from __future__ import annotations

import functools
import math
import pathlib
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jnas._checks import check_positive
from jnas._execution import eval_tasks_per_call, stepper
from jnas.meta._core import MetaLearner, MetaState
from jnas.meta._tasks import Task, TaskSampler, task_batch
from jnas.runs import run_units


@functools.lru_cache(maxsize=16)
def _chunk_fn(learner: MetaLearner, sampler: TaskSampler, meta_batch: int, steps_mode: str):
    def body(state, key):
        return learner.step(state, task_batch(sampler, key, meta_batch))

    return stepper(body, steps_mode)


def meta_train(
    learner: MetaLearner,
    sampler: TaskSampler,
    key: jax.Array,
    *,
    steps: int,
    meta_batch: int = 32,
    log_every: int = 100,
    out: str | pathlib.Path | None = None,
    resume: bool = False,
    steps_mode: str = "auto",
    on_log: Callable[[dict], None] | None = None,
) -> tuple[MetaState, list[dict]]:
    """`steps` outer steps on batches of `meta_batch` tasks from `sampler`.

    Every `log_every` steps: a record (the chunk's mean query loss and metric) appended to
    `out/records.jsonl` and a checkpoint, so a killed run resumed with `resume=True` ends
    with the same state and records. Step s uses tasks from `fold_in(key, s)` wherever a
    run resumes. A NaN/Inf loss raises FloatingPointError naming the step.
    """
    check_positive("meta_train", steps=steps, meta_batch=meta_batch, log_every=log_every)
    k_init, k_steps = jax.random.split(key)
    chunk = _chunk_fn(learner, sampler, meta_batch, steps_mode)
    chunks = math.ceil(steps / log_every)

    def bounds(c: int) -> tuple[int, int]:
        return c * log_every, min((c + 1) * log_every, steps)

    def unit(state: MetaState, c: int) -> tuple[MetaState, dict, dict]:
        first, last = bounds(c)
        keys = jax.vmap(lambda s: jax.random.fold_in(k_steps, s))(jnp.arange(first, last))
        state, metrics = chunk(state, keys)
        return state, metrics, {"step": last, **{k: float(np.mean(v)) for k, v in metrics.items()}}

    def describe(c: int) -> str:
        first, last = bounds(c)
        return f"meta_train (steps {first}..{last - 1}, chunk = {log_every} steps)"

    return run_units(
        unit,
        units=chunks,
        init=learner.init,
        key=k_init,
        out=out,
        resume=resume,
        on_record=on_log,
        describe=describe,
    )


def mean_ci(values: Any) -> tuple[float, float]:
    """(mean, half-width of the normal 95% confidence interval of the mean)."""
    v = np.asarray(values, np.float64)
    return float(v.mean()), float(1.96 * v.std(ddof=1) / math.sqrt(len(v))) if len(
        v
    ) > 1 else float("nan")


def evaluate_tasks(
    learner: MetaLearner,
    params: Any,
    sampler: TaskSampler,
    key: jax.Array,
    *,
    num_tasks: int = 600,
    batch: int = 50,
    steps: int | None = None,
    per_call: int | None = None,
    norm: str = "transductive",
) -> dict[str, tuple[float, float]]:
    """Adapt to `num_tasks` held-out tasks; {metric: (mean, 95% CI)} of `evaluate`'s
    per-task values (`loss_before`, `metric_before`, `loss_after`, `metric_after`);
    `norm`: batch norm's inference mode (see `MetaLearner`).

    Task j of group b is `sampler(fold_in(fold_in(key, b), j))`, groups of `batch` tasks
    (as `task_batch`). `per_call` tasks go through each compiled call (default: 1 on CPU,
    where the tasks of a call run one after another anyway and a lone task's inner loop
    can be unrolled — see `UNROLL_BUDGET`; `batch` elsewhere); it changes no value.
    """
    if not isinstance(num_tasks, int) or num_tasks < 2:
        raise ValueError(f"evaluate_tasks: `num_tasks` must be an int >= 2; got {num_tasks!r}")
    if per_call is None:
        per_call = eval_tasks_per_call(batch)
    groups = math.ceil(num_tasks / batch)
    keys = jax.vmap(
        lambda b: jax.vmap(lambda j: jax.random.fold_in(jax.random.fold_in(key, b), j))(
            jnp.arange(batch)
        )
    )(jnp.arange(groups))
    keys = keys.reshape(-1)[:num_tasks]
    pad = -num_tasks % per_call
    keys = jnp.concatenate([keys, keys[jnp.zeros(pad, jnp.int32)]]) if pad else keys
    run = _eval_fn(learner, sampler, steps, norm)
    parts = [run(params, keys[i : i + per_call]) for i in range(0, keys.shape[0], per_call)]
    values = {k: np.concatenate([np.asarray(p[k]) for p in parts])[:num_tasks] for k in parts[0]}
    return {k: mean_ci(v) for k, v in values.items()}


def evaluate_episodes(
    learner: MetaLearner,
    params: Any,
    tasks: Task | Sequence[Task],
    *,
    steps: int | None = None,
    norm: str = "transductive",
    per_call: int | None = None,
) -> dict[str, Any]:
    """Adapt to fixed, user-given episodes (a list of `Task`s of one shape, or a stacked
    `Task`) instead of sampled ones: {metric: (mean, 95% CI)} as `evaluate_tasks`, plus
    `per_task`, each task's values in the given order."""
    if isinstance(tasks, Task):
        stacked = tasks
    else:
        tasks = list(tasks)
        if not tasks:
            raise ValueError("evaluate_episodes: `tasks` is empty")
        shapes = {tuple(np.shape(x) for x in t) for t in tasks}
        if len(shapes) != 1:
            raise ValueError(
                "evaluate_episodes: every task must have the same shapes (ways, shots, "
                f"queries, image size); got {sorted(shapes)}"
            )
        stacked = jax.tree.map(lambda *x: jnp.stack([jnp.asarray(a) for a in x]), *tasks)
    count = jax.tree.leaves(stacked)[0].shape[0]
    chunk: int = per_call or eval_tasks_per_call(count)
    run = _fixed_eval_fn(learner, steps, norm)
    parts = [
        run(params, jax.tree.map(lambda a, i=i: a[i : i + chunk], stacked))
        for i in range(0, count, chunk)
    ]
    values = {k: np.concatenate([np.asarray(p[k]) for p in parts]) for k in parts[0]}
    summary: dict[str, Any] = {k: mean_ci(v) for k, v in values.items()}
    summary["per_task"] = {k: v.tolist() for k, v in values.items()}
    return summary


@functools.lru_cache(maxsize=16)
def _eval_fn(learner: MetaLearner, sampler: TaskSampler, steps: int | None, norm: str):
    return jax.jit(
        lambda params, keys: learner.evaluate(params, jax.vmap(sampler)(keys), steps, norm)
    )


@functools.lru_cache(maxsize=16)
def _fixed_eval_fn(learner: MetaLearner, steps: int | None, norm: str):
    return jax.jit(lambda params, tasks: learner.evaluate(params, tasks, steps, norm))
