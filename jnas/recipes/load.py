"""Loading a finished (or interrupted) run to use it: `load(run_dir)` rebuilds what the
run trained (a meta-learner, a one-shot method, a searcher, a trained network) from the
arguments the run stored in its folder and its latest checkpoint, without writing to the
folder."""

from __future__ import annotations

import dataclasses
import json
import pathlib
from typing import Any

COMMANDS = ("meta", "oneshot", "search", "train", "automl-zero")


@dataclasses.dataclass
class LoadedRun:
    """A run rebuilt from its folder.

    - `command`: which run (`meta`, `oneshot`, `search`, `train`, `automl-zero`); `args`
      its arguments;
      `records` the finished units; `summary` its `summary.json` (None if it did not end);
      `state` the latest checkpointed state (`MetaState`, a one-shot state, a searcher
      state, or the training carry; for an asynchronous search `{"searcher": state,
      "archs": the asks in flight, "ids": their ask numbers}`; for AutoML-Zero the
      `EvolutionState`); `units` how many units it holds.
    - `learner` (meta), `method` (oneshot), `searcher` (search) or `model` (train, an
      `nnx.Module` holding the trained weights) — the object that state belongs to.
    - `arch`: the architecture found (oneshot: derived from the state; search: the best
      evaluated; train: the cell trained; automl-zero: the best program, an
      `automl_zero.Program` to run with `automl_zero.evaluate` on new tasks).
    """

    command: str
    args: dict
    records: list[dict]
    summary: dict | None
    state: Any
    units: int
    learner: Any = None
    method: Any = None
    searcher: Any = None
    model: Any = None
    arch: Any = None

    def predict(self, support_x: Any, support_y: Any, query_x: Any, **kwargs: Any) -> Any:
        """A meta-learner's query logits after adapting to the support set (see
        `MetaLearner.predict`; `norm="support"` for batch-independent predictions)."""
        if self.learner is None:
            raise ValueError(f"predict: a {self.command} run has no meta-learner")
        return self.learner.predict(self.state.params, support_x, support_y, query_x, **kwargs)

    def logits(self, x: Any) -> Any:
        """Class logits of images `x` [N, H, W, C]: the trained network (train), or the
        supernet's shared weights running the derived cell alone (oneshot)."""
        import jax

        if self.model is not None:
            self.model.eval()
            return self.model(x)
        if self.method is not None:
            from jnas.oneshot import alpha_shape
            from jnas.recipes.oneshot import oneshot_space

            space = oneshot_space(self.args.get("space", "nb201"))
            index = space.supernet_index(self.arch)
            weights = jax.nn.one_hot(index, alpha_shape(space)[1])
            return self.method.apply(self.state.params, x, weights, index)
        raise ValueError(f"logits: a {self.command} run holds no network")


def load(run_dir: str | pathlib.Path) -> LoadedRun:
    """Rebuild the run in `run_dir` (a folder a `jnas` run command wrote) from its stored
    arguments and latest checkpoint; reads only. Raises `FileNotFoundError` naming the
    folder when it holds no jnas run, `ValueError` when the run kept no arguments."""
    import jax

    from jnas.checkpoint import read_jsonl, read_marker

    folder = pathlib.Path(run_dir).absolute()
    marker = read_marker(folder) if folder.is_dir() else None
    if marker is None:
        raise FileNotFoundError(f"load: {folder} holds no jnas run (no .jnas-run mark)")
    args = marker.get("args")
    if not args or args.get("command") not in COMMANDS:
        raise ValueError(
            f"load: {folder} does not record the arguments of a `jnas "
            f"{'|'.join(COMMANDS)}` run (it was started from Python, or by an older jnas): "
            "rebuild its objects and restore it with jnas.checkpoint.RunDir"
        )
    summary_path = folder / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else None
    command = args["command"]
    build = {
        "meta": _meta,
        "oneshot": _oneshot,
        "search": _search,
        "train": _train,
        "automl-zero": _automl_zero,
    }[command]
    fields, template = build(args)
    if command == "search" and args.get("asynchronous") and (folder / "checkpoints").is_dir():
        template = _async_template(folder, fields["searcher"])
    units, state = _restore(folder, template)
    records = read_jsonl(folder / "records.jsonl")[:units]
    run = LoadedRun(command, args, records, summary, state, units, **fields)
    if command == "oneshot" and state is not None:
        run.arch = run.method.derive(state, jax.random.key(0))
    if command == "search" and records:
        from jnas.recipes.spaces import make_space

        run.arch = make_space(args.get("space", "nb201")).from_string(records[-1]["best_arch"])
    if command == "automl-zero" and state is not None:
        run.arch = state.best
    if command == "train":
        import flax.nnx as nnx

        if state is not None:
            nnx.update(run.model, state[0], state[1])
    return run


def _restore(folder: pathlib.Path, template: Any) -> tuple[int, Any]:
    """(units done, the latest checkpoint restored onto `template`), read-only."""
    import orbax.checkpoint as ocp

    if not (folder / "checkpoints").is_dir():
        return 0, None
    if template is None:  # a state load cannot rebuild: only how far the run got
        steps = [int(p.name) for p in (folder / "checkpoints").iterdir() if p.name.isdigit()]
        return max(steps, default=-1) + 1, None
    manager = ocp.CheckpointManager(
        folder / "checkpoints", options=ocp.CheckpointManagerOptions(read_only=True)
    )
    try:
        latest = manager.latest_step()
        if latest is None:
            return 0, None
        state = manager.restore(latest, args=ocp.args.StandardRestore(template))
        return int(latest) + 1, state
    finally:
        manager.close()


def _meta(args: dict) -> tuple[dict, Any]:
    import jax

    from jnas.recipes.meta import make_learner

    learner = make_learner(
        args["method"],
        image=args["dataset"] != "sinusoid",
        ways=args["ways"],
        steps=args["steps"],
        inner_steps=args.get("inner_steps"),
        inner_lr=args.get("inner_lr"),
        outer_lr=args.get("outer_lr"),
        shots=args.get("shots", 1),
    )
    return {"learner": learner}, jax.eval_shape(learner.init, jax.random.key(0))


def _oneshot(args: dict) -> tuple[dict, Any]:
    import jax

    from jnas.recipes.oneshot import oneshot_setup

    method, *_ = oneshot_setup(
        args["method"],
        args["dataset"],
        args["seed"],
        args["epochs"],
        args["batch_size"],
        args["channels"],
        args["cells"],
        args.get("data_dir"),
        args.get("space", "nb201"),
        args.get("alpha_lr"),
    )
    return {"method": method}, jax.eval_shape(method.init, jax.random.key(0))


def _search(args: dict) -> tuple[dict, Any]:
    import jax

    from jnas.recipes.tables import search_setup
    from jnas.search import make_searcher

    space, _ = search_setup(
        args.get("space", "nb201"), args.get("objective", "train"), args.get("nasbench")
    )
    searcher = make_searcher(args["searcher"], space)
    if args.get("asynchronous"):  # the template needs the slot count: see `_async_template`
        return {"searcher": searcher}, None
    return {"searcher": searcher}, jax.eval_shape(searcher.init, jax.random.key(0))


def _async_template(folder: pathlib.Path, searcher: Any) -> Any:
    """The checkpointed carry of an asynchronous search (`jnas.search.run(...,
    asynchronous=True)`): the searcher state, the architectures asked and still in flight
    (one per worker slot) and their ask numbers. The slot count is read from the latest
    checkpoint's metadata (a resume may run another number of workers than the flag)."""
    import jax
    import orbax.checkpoint as ocp

    steps = sorted(int(p.name) for p in (folder / "checkpoints").glob("[0-9]*"))
    if not steps:
        return None
    checkpointer = ocp.StandardCheckpointer()
    try:
        meta = checkpointer.metadata(folder / "checkpoints" / str(steps[-1]) / "default")
    finally:
        checkpointer.close()
    tree = getattr(meta.item_metadata, "tree", None)
    if tree is None or "ids" not in tree:
        return None
    slots = int(tree["ids"].shape[0])
    key = jax.random.key(0)
    state = jax.eval_shape(searcher.init, key)
    arch = jax.eval_shape(searcher.ask, key, state)[0]  # one ask (a batch of one)
    archs = jax.tree.map(
        lambda a: jax.ShapeDtypeStruct((slots * a.shape[0], *a.shape[1:]), a.dtype), arch
    )
    return {"searcher": state, "archs": archs, "ids": jax.ShapeDtypeStruct((slots,), "int32")}


def _train(args: dict) -> tuple[dict, Any]:
    import jax
    from flax import nnx

    from jnas.recipes.train import train_setup

    model, config, splits, _ = train_setup(
        args["arch"],
        args["dataset"],
        args["seed"],
        args["epochs"],
        args["batch_size"],
        args["lr"],
        args["channels"],
        args["cells"],
        args.get("data_dir"),
        args.get("space", "nb201"),
    )
    _, params, rest = nnx.split(model, nnx.Param, ...)
    steps = len(splits["train_full"].y) // config.batch_size
    optimizer = config.optimizer(steps)
    template = jax.eval_shape(lambda: (params, rest, optimizer.init(params)))
    return {"model": model, "arch": args["arch"]}, template


def _automl_zero(args: dict) -> tuple[dict, Any]:
    import jax

    from jnas.recipes.automl_zero import METRICS, automl_zero_tasks, population_init

    search_tasks, _ = automl_zero_tasks(args["task"], args["seed"], held_out_tasks=1)
    init = population_init(
        search_tasks,
        population=args["population"],
        sizes=tuple(args["sizes"]) if args.get("sizes") else None,
        vectors=args["vectors"],
        metric=args.get("metric") or METRICS[args["task"]][0],
        op_set=args["op_set"],
    )
    return {}, jax.eval_shape(init, jax.random.key(0))
