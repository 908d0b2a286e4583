"""Driving a searcher against an objective that is not jittable (real training).

`run` is the Python loop around `ask` / `tell` (both jitted): the objective is called once
per architecture. After every `tell` the searcher state is checkpointed and the round's
record appended (`jnas.checkpoint.RunDir`); every finished evaluation is also appended to
`evaluations.jsonl` as soon as it returns. A killed run restarted with `resume=True` restores
the last state, re-asks the same round (same key, same state: the same architectures) and
takes the evaluations already finished from the log, so none is lost or repeated and the
final records equal an uninterrupted run's.

With `early_stop` (e.g. `jnas.predictors.curve_stopper(epochs, increasing=True)`), the
objective yields the fitness after each epoch instead of returning one number; after each
epoch the rule sees the curve so far and the incumbent (the best *completed* run) and may stop
the run (Domhan et al. 2015). A stopped run is told its forecast final fitness (as Domhan et
al. tell SMAC) and never becomes the incumbent; its curve and `stopped_at` epoch are recorded.

Multi-fidelity searchers (Hyperband, BOHB) need `fidelities`, the budget of each of their
fidelities (epochs, a data fraction, a width: whatever the objective reads), and an
objective `objective(arch, budget, state) -> (fitness, state)`: `state` is None for a fresh
run, else the state the objective returned when this architecture last reached a lower
budget, so a promotion trains only the difference. States are pytrees of arrays, stored in
the run folder (`partial/`, msgpack) and handed back flat, `{jax.tree_util.keystr(path):
NumPy array}`, with and without a resume alike; `restore_state(template, state)` rebuilds
the pytree (an `nnx.State`, an optimiser state) from a template of the same structure.
Only evaluations at the highest fidelity become the incumbent.
"""

from __future__ import annotations

import hashlib
import json
import math
import pathlib
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import jax
import numpy as np
from flax import serialization

from jnas._checks import check_positive
from jnas.checkpoint import RunDir, read_jsonl
from jnas.runs import run_units
from jnas.search._base import Searcher

Objective = Callable[[Any], float]  # one architecture -> fitness (higher is better)
CurveObjective = Callable[[Any], Iterable[float]]  # -> fitness after each epoch
# (architecture, budget, state to continue from or None) -> (fitness, state at that budget)
FidelityObjective = Callable[[Any, Any, Any], tuple[float, Any]]


def run(
    searcher: Searcher,
    objective: Objective | CurveObjective | FidelityObjective,
    key: jax.Array,
    *,
    num_evaluations: int,
    space: Any,
    out: str | pathlib.Path | None = None,
    resume: bool = False,
    on_evaluation: Callable[[dict], None] | None = None,
    early_stop: Callable[[list[float], float], tuple[bool, Any]] | None = None,
    fidelities: Sequence[Any] | None = None,
) -> tuple[Any, list[dict]]:
    """Run `searcher` for `num_evaluations` evaluations of `objective` (rounded up to whole
    batches); returns (final state, one record per round). Round t asks with
    `fold_in(key, t)`. A NaN fitness is recorded as NaN and told as the worst. For a
    multi-fidelity searcher, `fidelities` are its budgets, lowest first (see the module
    docstring).
    """
    multi = searcher.fidelities > 1
    if multi and (fidelities is None or len(fidelities) != searcher.fidelities):
        raise ValueError(
            f"run: the searcher is multi-fidelity ({searcher.fidelities} fidelities): pass "
            f"`fidelities`, the budget of each (e.g. epochs), lowest first; got {fidelities!r}"
        )
    if not multi and fidelities is not None:
        raise ValueError(
            "run: `fidelities` is for multi-fidelity searchers (hyperband, bohb); "
            f"this one evaluates at one fidelity; got {fidelities!r}"
        )
    if multi and early_stop is not None:
        raise ValueError("run: `early_stop` and a multi-fidelity searcher do not combine")
    check_positive("run", num_evaluations=num_evaluations)
    if early_stop is not None and not getattr(early_stop, "increasing", True):
        raise ValueError(
            "run: `early_stop` must treat the curve as a fitness (higher is better): build it "
            "with `curve_stopper(..., increasing=True)`"
        )
    rounds = math.ceil(num_evaluations / searcher.batch_size)
    k_init, k_rounds = jax.random.split(key)
    ask, tell = jax.jit(searcher.ask), jax.jit(searcher.tell)
    fidelity_of = jax.jit(searcher.fidelity) if multi and searcher.fidelity else None
    top = searcher.fidelities - 1
    done: dict = {}  # (round, i) -> the evaluation a killed run already finished
    seen: list[dict] = []  # every evaluation so far, for the running best
    log: list[pathlib.Path] = []
    partial = _Partial()  # multi-fidelity: the state each architecture reached

    def on_open(rundir: RunDir | None, start: int, records: list[dict]) -> None:
        seen.extend(e for r in records for e in r["evaluations"])
        if rundir is not None:
            log.append(rundir.path / "evaluations.jsonl")
            partial.folder = rundir.path / "partial"
            if resume:
                done.update({(e["round"], e["i"]): e for e in read_jsonl(log[0])})
            else:
                log[0].write_text("")
        for e in [*seen, *done.values()]:
            if "budget_index" in e and "arch" in e:
                partial.reach(e["arch"], e["budget_index"], e.get("state_file"))

    def unit(state: Any, t: int) -> tuple[Any, dict, dict]:
        archs, state = ask(jax.random.fold_in(k_rounds, t), state)
        fids = np.asarray(fidelity_of(state)) if fidelity_of is not None else None
        evaluations = []
        for i in range(searcher.batch_size):
            arch = jax.tree.map(lambda a, i=i: a[i], archs)
            if (t, i) in done:
                entry = done[(t, i)]
            else:
                entry = {"round": t, "i": i}
                if fids is not None:
                    assert fidelities is not None
                    entry.update(
                        partial.evaluate(
                            objective, arch, space.to_string(arch), int(fids[i]), fidelities, t, i
                        )
                    )
                elif early_stop is None:
                    entry["fitness"] = float(objective(arch))  # type: ignore[arg-type]
                else:
                    entry.update(_train_with_stopping(objective, arch, early_stop, _best(seen)))
                if log:
                    with open(log[0], "a") as f:
                        f.write(json.dumps(entry) + "\n")
            evaluation = {**entry, "arch": space.to_string(arch)}
            if on_evaluation is not None:
                on_evaluation(evaluation)
            evaluations.append(evaluation)
            seen.append(evaluation)
        fitness = np.asarray([e["fitness"] for e in evaluations], np.float32)
        state = tell(state, archs, fitness)
        best = _best([e for e in seen if e.get("budget_index", top) == top])
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


def restore_state(template: Any, state: dict[str, Any]) -> Any:
    """The pytree of `template`'s structure with the leaves of a multi-fidelity
    objective's saved `state` (`{keystr(path): array}`), e.g. `restore_state(
    (params, opt_state), state)` with a freshly initialised pair as the template."""
    leaves, treedef = jax.tree_util.tree_flatten_with_path(template)
    missing = [jax.tree_util.keystr(p) for p, _ in leaves if jax.tree_util.keystr(p) not in state]
    if missing or len(leaves) != len(state):
        raise ValueError(
            f"restore_state: `state` does not match the template: missing {missing[:5]}, "
            f"{len(state)} saved leaves for {len(leaves)}"
        )
    return jax.tree_util.tree_unflatten(
        treedef, [state[jax.tree_util.keystr(p)] for p, _ in leaves]
    )


class _Partial:
    """Multi-fidelity runs in progress: per architecture string, the highest budget index
    reached and the file holding the objective's state there (in memory without a run
    folder, as the same state-dict form)."""

    def __init__(self) -> None:
        self.folder: pathlib.Path | None = None
        self.reached: dict[str, tuple[int, str | None]] = {}
        self.memory: dict[str, bytes] = {}

    def reach(self, arch: str, index: int, state_file: str | None) -> None:
        if index > self.reached.get(arch, (-1, None))[0]:
            self.reached[arch] = (index, state_file)

    def _load(self, name: str | None) -> Any:
        if name is None:
            return None
        data = self.memory[name] if self.folder is None else (self.folder / name).read_bytes()
        return serialization.msgpack_restore(data)

    def _save(self, name: str, state: Any) -> None:
        leaves = jax.tree_util.tree_flatten_with_path(state)[0]
        flat = {jax.tree_util.keystr(p): np.asarray(x) for p, x in leaves}
        data = serialization.msgpack_serialize(flat)
        if self.folder is None:
            self.memory[name] = data
            return
        self.folder.mkdir(exist_ok=True)
        tmp = self.folder / f"{name}.tmp"
        tmp.write_bytes(data)
        tmp.replace(self.folder / name)  # whole or absent after a kill

    def evaluate(
        self,
        objective: Any,
        arch: Any,
        key: str,
        index: int,
        budgets: Sequence[Any],
        t: int,
        i: int,
    ) -> dict:
        """Evaluate at budget `index`, continuing from the highest budget reached below it
        (a budget at or below one reached starts a fresh run: its state is past it)."""
        before, state_file = self.reached.get(key, (-1, None))
        start = state_file if before < index else None
        out = objective(arch, budgets[index], self._load(start))
        if not isinstance(out, tuple) or len(out) != 2:
            raise ValueError(
                "run: a multi-fidelity objective returns (fitness, state); got "
                f"{type(out).__name__}"
            )
        fitness, state = out
        name = f"{hashlib.md5(key.encode()).hexdigest()}-{index}-{t}-{i}.msgpack"
        self._save(name, state)
        self.reach(key, index, name)
        return {
            "fitness": float(fitness),
            "arch": key,
            "budget_index": index,
            "budget": budgets[index],
            "continued_from": None if start is None else budgets[before],
            "state_file": name,
        }


def _best(evaluations: list[dict]) -> dict | None:
    """The best completed evaluation (NaN fitness and early-stopped runs never count)."""
    return max(
        (e for e in evaluations if not math.isnan(e["fitness"]) and e.get("stopped_at") is None),
        key=lambda e: e["fitness"],
        default=None,
    )


def _train_with_stopping(objective, arch, early_stop, best: dict | None) -> dict:
    """Consume the objective's per-epoch fitness until it ends or `early_stop` says stop."""
    incumbent = -math.inf if best is None else best["fitness"]  # -inf: none yet, never stop
    curve: list[float] = []
    values = objective(arch)
    if not isinstance(values, Iterable):
        raise ValueError(
            "run: with `early_stop` the objective must yield the fitness after each epoch "
            f"(a generator); it returned {type(values).__name__}"
        )
    for value in values:
        curve.append(float(value))
        stop, forecast = early_stop(curve, incumbent)
        if stop:
            return {"fitness": float(forecast.mean), "curve": curve, "stopped_at": len(curve)}
    if not curve:
        return {"fitness": math.nan, "curve": curve, "stopped_at": None}
    return {"fitness": curve[-1], "curve": curve, "stopped_at": None}
