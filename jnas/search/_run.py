"""Driving a searcher against an objective that is not jittable (real training).

`run` is the Python loop around `ask` / `tell` (both jitted): the objective is called once
per architecture. After every `tell` the searcher state is checkpointed and the round's
record appended (`jnas.checkpoint.RunDir`); every finished evaluation is also appended to
`evaluations.jsonl` as soon as it returns. A killed run restarted with `resume=True` restores
the last state, re-asks the same round (same key, same state: the same architectures) and
takes the evaluations already finished from the log, so none is lost or repeated and the
final records equal an uninterrupted run's.
"""

from __future__ import annotations

import json
import math
import pathlib
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from jnas._checks import check_positive
from jnas.checkpoint import RunDir, read_jsonl
from jnas.runs import run_units
from jnas.search._base import Searcher

Objective = Callable[[Any], float]  # one architecture -> fitness (higher is better)


def run(
    searcher: Searcher,
    objective: Objective,
    key: jax.Array,
    *,
    num_evaluations: int,
    space: Any,
    out: str | pathlib.Path | None = None,
    resume: bool = False,
    on_evaluation: Callable[[dict], None] | None = None,
) -> tuple[Any, list[dict]]:
    """Run `searcher` for `num_evaluations` evaluations of `objective` (rounded up to whole
    batches); returns (final state, one record per round). Round t asks with
    `fold_in(key, t)`. A NaN fitness is recorded as NaN and told as the worst.
    """
    if searcher.fidelities > 1:
        raise ValueError(
            f"run: the searcher is multi-fidelity ({searcher.fidelities} "
            "fidelities) and `objective` takes one architecture; run it against "
            "a table with `jnas.bench.simulate` and a multi-fidelity objective"
        )
    check_positive("run", num_evaluations=num_evaluations)
    rounds = math.ceil(num_evaluations / searcher.batch_size)
    k_init, k_rounds = jax.random.split(key)
    ask, tell = jax.jit(searcher.ask), jax.jit(searcher.tell)
    done: dict = {}  # (round, i) -> fitness already evaluated by a killed run
    seen: list[dict] = []  # every evaluation so far, for the running best
    log: list[pathlib.Path] = []

    def on_open(rundir: RunDir | None, start: int, records: list[dict]) -> None:
        seen.extend(e for r in records for e in r["evaluations"])
        if rundir is not None:
            log.append(rundir.path / "evaluations.jsonl")
            if resume:
                done.update({(e["round"], e["i"]): e["fitness"] for e in read_jsonl(log[0])})
            else:
                log[0].write_text("")

    def unit(state: Any, t: int) -> tuple[Any, dict, dict]:
        archs, state = ask(jax.random.fold_in(k_rounds, t), state)
        evaluations = []
        for i in range(searcher.batch_size):
            arch = jax.tree.map(lambda a, i=i: a[i], archs)
            if (t, i) in done:
                fitness = done[(t, i)]
            else:
                fitness = float(objective(arch))
                if log:
                    with open(log[0], "a") as f:
                        f.write(json.dumps({"round": t, "i": i, "fitness": fitness}) + "\n")
            evaluation = {"round": t, "i": i, "arch": space.to_string(arch), "fitness": fitness}
            if on_evaluation is not None:
                on_evaluation(evaluation)
            evaluations.append(evaluation)
        fitness = np.asarray([e["fitness"] for e in evaluations], np.float32)
        state = tell(state, archs, fitness)
        seen.extend(evaluations)
        best = max(
            (e for e in seen if not math.isnan(e["fitness"])),
            key=lambda e: e["fitness"],
            default=None,
        )
        return (
            state,
            {},
            {
                "round": t,
                "evaluations": evaluations,
                "best_arch": best and best["arch"],
                "best_fitness": best and best["fitness"],
            },
        )

    return run_units(
        unit, units=rounds, init=searcher.init, key=k_init, out=out, resume=resume, on_open=on_open
    )
