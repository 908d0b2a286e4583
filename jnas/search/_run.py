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

import concurrent.futures as cf
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
from jnas.search._executors import Pool, executor_width

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
    executor: cf.Executor | None = None,
    asynchronous: bool = False,
    workers: int | None = None,
    retries: int = 1,
    settings: dict | None = None,
) -> tuple[Any, list[dict]]:
    """Run `searcher` for `num_evaluations` evaluations of `objective` (rounded up to whole
    batches); returns (final state, one record per round). Round t asks with
    `fold_in(key, t)`. A NaN fitness is recorded as NaN and told as the worst. For a
    multi-fidelity searcher, `fidelities` are its budgets, lowest first (see the module
    docstring).

    With an `executor` (`process_executor(n)`, `dask_executor(...)`, any
    `concurrent.futures.Executor`; the objective must pickle) a round's evaluations run in
    parallel and the records equal a serial run's. An evaluation that raises, or whose
    worker dies, is retried `retries` times, then recorded as NaN with its `error` (without
    an executor the objective's exceptions propagate). `asynchronous=True` keeps `workers`
    evaluations in flight (default: the executor's width) and tells each as it ends, then
    asks the next (batch-size-1 searchers; see `_run_async`). `settings` are stored in the
    run folder and a resume must repeat them.
    """
    multi = searcher.fidelities > 1
    if multi and (fidelities is None or len(fidelities) != searcher.fidelities):
        raise ValueError(
            f"run: the searcher is multi-fidelity ({searcher.fidelities} fidelities): pass "
            f"`fidelities`, the budget of each (e.g. epochs), lowest first; got {fidelities!r}"
        )
    if not multi and fidelities is not None:
        raise ValueError(
            "run: `fidelities` is for multi-fidelity searchers (hyperband, bohb, dehb); "
            f"this one evaluates at one fidelity; got {fidelities!r}"
        )
    if multi and early_stop is not None:
        raise ValueError("run: `early_stop` and a multi-fidelity searcher do not combine")
    check_positive("run", num_evaluations=num_evaluations)
    if executor is not None and early_stop is not None:
        raise ValueError("run: `early_stop` decides epoch by epoch in this process; no executor")
    if asynchronous:
        if executor is None:
            raise ValueError("run: `asynchronous=True` needs an `executor`")
        if multi or searcher.batch_size != 1 or early_stop is not None:
            raise ValueError(
                "run: `asynchronous=True` hands out one architecture at a time: it needs a "
                "single-fidelity searcher with batch_size 1 and no early_stop; got batch_size "
                f"{searcher.batch_size}, {searcher.fidelities} fidelities"
            )
        return _run_async(
            searcher,
            objective,  # type: ignore[arg-type]
            key,
            num_evaluations=num_evaluations,
            space=space,
            out=out,
            resume=resume,
            on_evaluation=on_evaluation,
            pool=Pool(executor, retries),
            workers=workers or executor_width(executor),
            settings=settings,
        )
    pool = None if executor is None else Pool(executor, retries)
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
            if "state_file" in e:
                partial.reach(e["arch"], e["budget_index"], e.get("state_file"))

    def job(t: int, i: int, arch: Any, fid: int | None) -> tuple[Callable, tuple, Callable]:
        """(function, arguments, finish(output) -> entry) of one evaluation."""
        if fid is None:
            return objective, (arch,), lambda out: {"fitness": float(out)}
        budgets = fidelities
        assert budgets is not None
        name = space.to_string(arch)
        since, saved = partial.prepare(name, fid, budgets)
        return (
            objective,
            (arch, budgets[fid], saved),
            lambda out: partial.finish(out, name, fid, budgets, since, t, i),
        )

    def evaluate(t: int, archs: Any, fids: Any) -> dict[int, dict]:
        """The entries of round t's evaluations not finished before a kill, each logged as
        soon as it ends (serially, or all at once on the executor)."""
        entries, jobs, heads = {}, {}, {}
        for i in range(searcher.batch_size):
            if (t, i) in done:
                entries[i] = done[(t, i)]
                continue
            arch = jax.tree.map(lambda a, i=i: a[i], archs)
            head = {"round": t, "i": i, "arch": space.to_string(arch)}
            if pool is not None:
                arch = jax.tree.map(np.asarray, arch)  # workers need no device arrays
            if early_stop is not None:
                entry = _train_with_stopping(objective, arch, early_stop, _best(seen))
                entries[i] = _log({**head, **entry})
                continue
            fn, args, finish = job(t, i, arch, None if fids is None else int(fids[i]))
            if pool is None:
                entries[i] = _log({**head, **finish(fn(*args))})
            else:
                heads[i] = head
                jobs[i] = finish
                pool.submit(i, fn, args)
        try:
            while pool is not None and pool.running:
                for i, out, error in pool.wait():
                    entry = finish_or_fail(jobs[i], out, error)
                    entries[i] = _log({**heads[i], **entry})
        finally:
            if pool is not None:
                pool.cancel()  # after an interrupt: nothing left running unrecorded
        return entries

    def _log(entry: dict) -> dict:
        if log:
            with open(log[0], "a") as f:
                f.write(json.dumps(entry) + "\n")
        return entry

    def unit(state: Any, t: int) -> tuple[Any, dict, dict]:
        archs, state = ask(jax.random.fold_in(k_rounds, t), state)
        fids = np.asarray(fidelity_of(state)) if fidelity_of is not None else None
        entries = evaluate(t, archs, fids)
        evaluations = []
        for i in range(searcher.batch_size):
            arch = jax.tree.map(lambda a, i=i: a[i], archs)
            evaluation = {**entries[i], "arch": space.to_string(arch)}
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
        unit,
        units=rounds,
        init=searcher.init,
        key=k_init,
        out=out,
        resume=resume,
        on_open=on_open,
        settings=settings,
    )


def finish_or_fail(finish: Callable[[Any], dict], out: Any, error: str | None) -> dict:
    """The entry of an ended evaluation: its result, or NaN fitness and the reason."""
    return finish(out) if error is None else {"fitness": math.nan, "error": error}


def _run_async(
    searcher: Searcher,
    objective: Objective,
    key: jax.Array,
    *,
    num_evaluations: int,
    space: Any,
    out: str | pathlib.Path | None,
    resume: bool,
    on_evaluation: Callable[[dict], None] | None,
    pool: Pool,
    workers: int,
    settings: dict | None,
) -> tuple[Any, list[dict]]:
    """Asynchronous search: `workers` asked architectures (slots) are always in flight; each
    unit waits for one to end, tells it, and asks the next into its slot (Real et al.'s
    asynchronous evolution; Hyperband's ASHA schedules the same way). Ask j uses
    `fold_in(k_asks, j)`, `k_init, k_asks = split(key)`; asks 0..workers-1 are made before
    the first unit, the ask of unit u is number workers + u, so the pending architectures
    are part of the checkpointed state.
    Which evaluation ends first is up to the workers, so records are not a serial run's;
    they are exact: each ask is evaluated once (a killed run resubmits only the asks not in
    `evaluations.jsonl`) and told once, and a unit's record names its ask (`ask`)."""
    check_positive("run", workers=workers)
    k_init, k_asks = jax.random.split(key)

    def init(k: jax.Array) -> dict:
        state = searcher.init(k)
        archs = []
        for j in range(workers):
            arch, state = searcher.ask(jax.random.fold_in(k_asks, j), state)
            archs.append(arch)
        return {
            "searcher": state,
            "archs": jax.tree.map(lambda *a: _cat(a), *archs),
            "ids": jax.numpy.arange(workers, dtype=jax.numpy.int32),
        }

    @jax.jit
    def advance(carry: dict, slot: jax.Array, fitness: jax.Array, j: jax.Array) -> dict:
        told = jax.tree.map(lambda a: jax.lax.dynamic_slice_in_dim(a, slot, 1), carry["archs"])
        state = searcher.tell(carry["searcher"], told, fitness[None])
        arch, state = searcher.ask(jax.random.fold_in(k_asks, j), state)
        archs = jax.tree.map(
            lambda a, n: jax.lax.dynamic_update_slice_in_dim(a, n, slot, 0), carry["archs"], arch
        )
        return {"searcher": state, "archs": archs, "ids": carry["ids"].at[slot].set(j)}

    done: dict[int, dict] = {}  # ask -> its finished evaluation, from the log after a kill
    names: dict[int, str] = {}  # ask -> its architecture string
    seen: list[dict] = []
    log: list[pathlib.Path] = []

    def on_open(rundir: Any, start: int, records: list[dict]) -> None:
        seen.extend(e for r in records for e in r["evaluations"])
        if rundir is not None:
            log.append(rundir.path / "evaluations.jsonl")
            if resume:
                done.update({e["ask"]: e for e in read_jsonl(log[0])})
            else:
                log[0].write_text("")

    def _log(entry: dict) -> None:
        done[entry["ask"]] = entry
        if log:
            with open(log[0], "a") as f:
                f.write(json.dumps(entry) + "\n")

    def unit(carry: dict, u: int) -> tuple[Any, dict, dict]:
        ids = [int(j) for j in np.asarray(carry["ids"])]
        told = {e["ask"] for e in seen}
        for slot, j in enumerate(ids):  # every pending ask runs (after a resume: again)
            if j < num_evaluations and j not in done and j not in told and not pool.busy(j):
                arch = jax.tree.map(lambda a, s=slot: np.asarray(a[s]), carry["archs"])
                names[j] = space.to_string(arch)
                pool.submit(j, objective, (arch,))
        try:
            while not any(j in done and j not in told for j in ids):
                for j, result, error in pool.wait():
                    entry = finish_or_fail(lambda r: {"fitness": float(r)}, result, error)
                    _log({"ask": j, "arch": names[j], **entry})
        except BaseException:
            pool.cancel()
            raise
        slot = min(s for s, j in enumerate(ids) if j in done and j not in told)
        arch = jax.tree.map(lambda a: a[slot], carry["archs"])
        evaluation = {
            **done[ids[slot]],
            "round": u,
            "i": 0,
            "arch": space.to_string(arch),
        }
        if on_evaluation is not None:
            on_evaluation(evaluation)
        seen.append(evaluation)
        carry = advance(
            carry, jax.numpy.int32(slot), jax.numpy.float32(evaluation["fitness"]), workers + u
        )
        best = _best(seen)
        record = {
            "round": u,
            "evaluations": [evaluation],
            "best_arch": best and best["arch"],
            "best_fitness": best and best["fitness"],
        }
        if u == num_evaluations - 1:
            pool.cancel()
        return carry, {}, record

    return run_units(
        unit,
        units=num_evaluations,
        init=init,
        key=k_init,
        out=out,
        resume=resume,
        on_open=on_open,
        settings=settings,
    )


def _cat(arrays: Sequence[Any]) -> Any:
    return jax.numpy.concatenate(arrays)


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

    def prepare(self, key: str, index: int, budgets: Sequence[Any]) -> tuple[Any, Any]:
        """(the budget continued from or None, the state there) for an evaluation
        at budget `index`: it continues from the highest budget reached below it (a budget
        at or below one reached starts a fresh run: its state is past it)."""
        before, state_file = self.reached.get(key, (-1, None))
        start = state_file if before < index else None
        return (None if start is None else budgets[before]), self._load(start)

    def finish(
        self, out: Any, key: str, index: int, budgets: Sequence[Any], since: Any, t: int, i: int
    ) -> dict:
        """The record of a finished evaluation; its state saved for later promotions."""
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
            "continued_from": since,
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
