"""HELP (Lee, Lee & Hwang, NeurIPS 2021): a latency predictor meta-learned across devices.

A device is a task. Its hardware embedding is its measured latency of a fixed set of
reference architectures (standardised by their own mean and spread); the predictor is an MLP
on [one-hot architecture, hardware embedding] whose initialisation is meta-learned with MAML
(the exact meta-gradient through the inner SGD steps, devices batched by `vmap`), so that an
unseen device needs only its reference architectures measured: the predictor adapts to
those measurements and ranks every architecture of the space. The paper's split of the 27
device configurations is `HELP_SPLIT`; the metric is Spearman's rho between the predicted
and the measured latency over the whole space.
"""

from __future__ import annotations

import json
import os
import pathlib
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jnas import meta
from jnas._checks import check_positive
from jnas.bench import Table
from jnas.predictors import spearman
from jnas.transfer._resume import fingerprint, run_steps

HELP_SPLIT: dict[str, tuple[str, ...]] = {
    "meta_train": (
        "1080ti_1",
        "1080ti_32",
        "1080ti_256",
        "silver_4114",
        "silver_4210r",
        "samsung_a50",
        "pixel3",
        "essential_ph_1",
        "samsung_s7",
    ),
    "meta_valid": ("titanx_1", "titanx_32", "titanx_256", "gold_6240"),
    "meta_test": ("titan_rtx_256", "gold_6226", "fpga", "pixel2", "raspi4", "eyeriss"),
}
"""HELP's device split (its `nasbench201` configuration): meta-train, meta-validation (model
selection), meta-test (reported)."""

HELP_PUBLISHED = {"help": 0.932, "flops": 0.787}
"""HELP Table 2 (NAS-Bench-201, 10 samples), mean Spearman over the six meta-test devices."""


class LatencyPredictor(NamedTuple):
    """A meta-trained latency predictor: the meta-learned initialisation `params`, the
    space's row indices of the `references` a new device measures, and the settings the
    model is rebuilt from (`hidden`, `inner_lr`, `inner_steps`)."""

    params: Any
    references: jax.Array  # int32[R]
    hidden: tuple[int, ...]
    inner_lr: float
    inner_steps: int


def _model(features: int, references: int, hidden: tuple[int, ...]) -> meta.Model:
    return meta.mlp((features + references, *hidden, 1))


def _learner(features: int, references: int, hidden: tuple[int, ...], lr: float, steps: int):
    return meta.maml(
        _model(features, references, hidden),
        loss="mse",
        inner_lr=lr,
        inner_steps=steps,
        outer_optimizer=optax.adam(1e-3),
        task_map="vmap",
    )


def architecture_features(table: Table) -> jax.Array:
    """float32[N, F]: the one-hot encoding of every row's architecture."""
    space = table.space
    return jnp.asarray(space.one_hot(space.enumerate()), jnp.float32).reshape(table.num_rows, -1)


def device_latencies(table: Table, devices: tuple[str, ...]) -> jax.Array:
    """float32[D, N]: the devices' latency columns of `bench.load_latency()`."""
    if not devices:
        raise ValueError("device_latencies: expected at least one device; got none")
    return jnp.stack([table.column(d, "latency_ms", None) for d in devices])


def _standardise(y: jax.Array, references: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    ref = y[..., references]
    mean = ref.mean(-1, keepdims=True)
    std = ref.std(-1, keepdims=True) + 1e-6
    return (y - mean) / std, mean, std


def _inputs(x: jax.Array, embedding: jax.Array) -> jax.Array:
    return jnp.concatenate([x, jnp.broadcast_to(embedding, (x.shape[0], embedding.shape[-1]))], -1)


def _task(x: jax.Array, y: jax.Array, references: jax.Array, queries: jax.Array) -> meta.Task:
    """One device as a few-shot regression task: support = its references, query = rows."""
    z, _, _ = _standardise(y, references)
    h = z[references]
    return meta.Task(
        _inputs(x[references], h), z[references, None], _inputs(x[queries], h), z[queries, None]
    )


class LatencyMetaTraining(NamedTuple):
    """The parts of HELP's meta-training: the MAML learner, the reference rows, and
    `step(state, key) -> (state, loss)`, one outer step over all devices (vmapped),
    pure and jittable."""

    learner: meta.MetaLearner
    references: jax.Array
    step: Callable[[Any, jax.Array], tuple[Any, jax.Array]]


def latency_meta_training(
    key: jax.Array,
    table: Table,
    devices: tuple[str, ...],
    *,
    references: int = 10,
    hidden: tuple[int, ...] = (64, 64),
    inner_lr: float = 0.1,
    inner_steps: int = 10,
    queries: int = 256,
) -> LatencyMetaTraining:
    """HELP's meta-training problem on `devices` of a latency table: `references` rows
    drawn with `key` (the hardware embedding), one few-shot regression task per device
    whose query set is `queries` rows drawn per step."""
    check_positive(
        "latency_meta_training", references=references, inner_steps=inner_steps, queries=queries
    )
    x = architecture_features(table)
    y = device_latencies(table, devices)
    refs = jax.random.choice(key, table.num_rows, (references,), replace=False).astype(jnp.int32)
    learner = _learner(x.shape[1], references, hidden, inner_lr, inner_steps)

    def step(state: Any, k: jax.Array) -> tuple[Any, jax.Array]:
        q = jax.random.choice(k, table.num_rows, (len(devices), queries))
        tasks = jax.vmap(lambda yd, qd: _task(x, yd, refs, qd))(y, q)
        state, metrics = learner.step(state, tasks)
        return state, metrics["loss"]

    return LatencyMetaTraining(learner, refs, step)


def meta_train_latency(
    key: jax.Array,
    table: Table,
    *,
    devices: tuple[str, ...] = HELP_SPLIT["meta_train"],
    valid: tuple[str, ...] = HELP_SPLIT["meta_valid"],
    references: int = 10,
    hidden: tuple[int, ...] = (64, 64),
    inner_lr: float = 0.1,
    inner_steps: int = 10,
    steps: int = 3000,
    queries: int = 256,
    eval_every: int = 500,
    out: str | os.PathLike | None = None,
    resume: bool = False,
) -> tuple[LatencyPredictor, list[dict]]:
    """MAML over the `devices` of a latency table (one task per device, all devices in one
    vmapped step). Every `eval_every` steps the predictor adapts to each `valid` device's
    references and is scored by Spearman over the space; the first best-scoring parameters are
    kept (HELP's model selection on meta-validation devices; before any finite score, the
    latest: a NaN Spearman, from constant predictions, is never the best). Returns the
    predictor and the validation history. With `out`, a checkpoint after every validation;
    `resume=True` continues a killed run (or extends a finished one to more `steps`) from its
    folder."""
    check_positive("meta_train_latency", steps=steps, eval_every=eval_every)
    if steps % eval_every:
        raise ValueError(
            f"meta_train_latency: `steps` must be a multiple of eval_every ({eval_every}); "
            f"got {steps}"
        )
    k_ref, k_init, k_run = jax.random.split(key, 3)
    problem = latency_meta_training(
        k_ref,
        table,
        devices,
        references=references,
        hidden=hidden,
        inner_lr=inner_lr,
        inner_steps=inner_steps,
        queries=queries,
    )
    init_state = problem.learner.init(k_init)
    predictor = LatencyPredictor(
        init_state.params, problem.references, tuple(hidden), inner_lr, inner_steps
    )

    def step(carry: Any, i: jax.Array) -> tuple[Any, jax.Array]:
        state, best, best_params = carry
        state, loss = problem.step(state, jax.random.fold_in(k_run, i))
        return (state, best, best_params), loss

    def validate(carry: Any, done: int) -> tuple[Any, dict]:
        state, best, best_params = carry
        score = float("nan")
        if valid:
            p = predictor._replace(params=state.params)
            score = float(np.mean(evaluate_latency(p, table, valid)["spearman"]))
        # float32 both: a tie keeps the first. A NaN score (constant predictions) is never
        # the best, but until a finite one comes the latest parameters are kept, not init
        undefined = np.isnan(score) and best == -np.inf
        if not valid or undefined or np.float32(score) > best:
            best, best_params = jnp.float32(-np.inf if undefined else score), state.params
        return (state, best, best_params), {"step": done, "valid_spearman": score}

    settings = {
        "devices": list(devices),
        "valid": list(valid),
        "references": references,
        "hidden": list(hidden),
        "inner_lr": inner_lr,
        "inner_steps": inner_steps,
        "queries": queries,
        "key": fingerprint(jax.random.key_data(key)),
        "table": fingerprint(problem.references, device_latencies(table, devices)),
    }
    (_, _, best_params), records = run_steps(
        "meta_train_latency",
        step,
        lambda k: (init_state, jnp.float32(-jnp.inf), init_state.params),
        k_init,
        steps=steps,
        chunk=eval_every,
        out=out,
        resume=resume,
        settings=settings,
        after_chunk=validate,
    )
    history = [
        {"step": r["step"], "loss": r["values"][-1], "valid_spearman": r["valid_spearman"]}
        for r in records
    ]
    return predictor._replace(params=best_params), history


def adapt_latency(
    predictor: LatencyPredictor, features: jax.Array, measured: jax.Array
) -> jax.Array:
    """Predicted latency (ms) of every row of `features` on a device whose latencies of the
    predictor's references are `measured` (float[R]): the meta-learned initialisation
    adapted to those measurements, its standardised output scaled back by their mean and
    spread. Jittable; vmap over devices."""
    r = predictor.references.shape[0]
    if measured.shape[-1] != r:
        raise ValueError(
            f"adapt_latency: `measured` must hold the latency of the {r} references; "
            f"got shape {measured.shape}"
        )
    learner = _learner(
        features.shape[1], r, predictor.hidden, predictor.inner_lr, predictor.inner_steps
    )
    mean, std = measured.mean(), measured.std() + 1e-6
    h = (measured - mean) / std
    out = learner.predict(
        predictor.params,
        _inputs(features[predictor.references], h),
        h[:, None],
        _inputs(features, h),
    )
    return out[:, 0] * std + mean


def evaluate_latency(
    predictor: LatencyPredictor, table: Table, devices: tuple[str, ...]
) -> dict[str, Any]:
    """Per device: Spearman between the adapted predictor's latency of every architecture
    and the table's, the device measuring only the predictor's references."""
    x = architecture_features(table)
    y = device_latencies(table, devices)
    pred = jax.jit(jax.vmap(lambda yd: adapt_latency(predictor, x, yd[predictor.references])))(y)
    rho = jax.vmap(spearman)(pred, y)
    return {"devices": list(devices), "spearman": [float(v) for v in rho]}


def fit_latency_from_scratch(
    key: jax.Array,
    features: jax.Array,
    references: jax.Array,
    measured: jax.Array,
    *,
    hidden: tuple[int, ...] = (64, 64),
    steps: int = 500,
    lr: float = 1e-3,
) -> jax.Array:
    """The non-meta baseline: the same MLP (on the architecture alone) trained from a
    random initialisation on the measured references with Adam; predicted ms per row."""
    model = meta.mlp((features.shape[1], *hidden, 1))
    mean, std = measured.mean(), measured.std() + 1e-6
    z = (measured - mean) / std
    params = model.init(key)
    opt = optax.adam(lr)

    def loss(p: Any) -> jax.Array:
        return jnp.mean((model.apply(p, features[references])[:, 0] - z) ** 2)

    def step(carry: Any, _: Any) -> tuple[Any, None]:
        p, s = carry
        u, s = opt.update(jax.grad(loss)(p), s, p)
        return (optax.apply_updates(p, u), s), None

    (params, _), _ = jax.lax.scan(step, (params, opt.init(params)), None, length=steps)
    return model.apply(params, features)[:, 0] * std + mean


def constrained_best(
    predicted_ms: jax.Array, accuracy: jax.Array, bound_ms: float | jax.Array
) -> jax.Array:
    """The row of highest `accuracy` whose predicted latency is within `bound_ms` (-1 when
    none is): latency-constrained search over a tabulated space on an unseen device."""
    ok = (predicted_ms <= bound_ms) & ~jnp.isnan(accuracy)
    score = jnp.where(ok, accuracy, -jnp.inf)
    return jnp.where(ok.any(), jnp.argmax(score), -1)


def save_latency_predictor(predictor: LatencyPredictor, path: str | os.PathLike) -> None:
    """Writes the predictor as one `.npz` (arrays) with its settings in JSON."""
    leaves, _ = jax.tree.flatten_with_path(predictor.params)
    arrays = {jax.tree_util.keystr(k): np.asarray(v) for k, v in leaves}
    settings = {
        "hidden": list(predictor.hidden),
        "inner_lr": predictor.inner_lr,
        "inner_steps": predictor.inner_steps,
        "keys": list(arrays),
    }
    p = pathlib.Path(path)
    tmp = p.with_name(p.name + ".tmp.npz")
    payload = {f"param{i}": a for i, a in enumerate(arrays.values())}
    payload["references"] = np.asarray(predictor.references)
    payload["settings"] = np.asarray(json.dumps(settings))
    np.savez(tmp, **payload)  # pyright: ignore[reportArgumentType]
    os.replace(tmp, p)


def load_latency_predictor(path: str | os.PathLike, features: int) -> LatencyPredictor:
    """Reads `save_latency_predictor`'s file; `features`: the encoding's width."""
    with np.load(path) as f:
        settings = json.loads(str(f["settings"]))
        refs = jnp.asarray(f["references"])
        leaves = [jnp.asarray(f[f"param{i}"]) for i in range(len(settings["keys"]))]
    hidden = tuple(settings["hidden"])
    shape = jax.eval_shape(_model(features, refs.shape[0], hidden).init, jax.random.key(0))
    treedef = jax.tree.structure(shape)
    want = [tuple(s.shape) for s in jax.tree.leaves(shape)]
    if [tuple(a.shape) for a in leaves] != want:
        raise ValueError(
            f"load_latency_predictor: {path} holds parameters of shapes "
            f"{[tuple(a.shape) for a in leaves]}; a {features}-feature model expects {want}"
        )
    return LatencyPredictor(
        jax.tree.unflatten(treedef, leaves),
        refs,
        hidden,
        float(settings["inner_lr"]),
        int(settings["inner_steps"]),
    )
