"""Meta-learning runs with the papers' settings: task sources (sinusoid, Omniglot from the
zips or TFDS, digits), each method's preset (`make_learner`) and a checkpointed
meta-training run with its held-out evaluation (`run_meta`): what `jnas meta`, the
meta-learning experiments and `benchmarks/meta_step.py` run."""

from __future__ import annotations

import json
import pathlib
import time
from collections.abc import Callable
from typing import Any

import jax
import optax

Progress = Callable[[int, int], None]  # (done, total)
# nothing adapts at test
METRIC_METHODS = (
    "protonet",
    "matching_net",
    "matching_net_fce",
    "matching_net_scaled",
    "matching_net_fce_scaled",
    "relation_net",
    "relation_net_conv",
    "snail",
)
METHODS = ("maml", "fomaml", "reptile", "anil", *METRIC_METHODS, "metanas", "tnas")
DATASETS = ("sinusoid", "omniglot", "omniglot-tfds", "digits")
OMNIGLOT_DIR = pathlib.Path(__file__).resolve().parents[2] / ".." / "shared" / "omniglot"


def task_sources(
    dataset: str,
    *,
    ways: int,
    shots: int,
    queries: int,
    omniglot_dir: str | pathlib.Path | None = None,
    data_dir: str | None = None,
    test_ways: int | None = None,
    test_shots: int | None = None,
    test_queries: int | None = None,
) -> dict:
    """{"train", "test": task samplers with disjoint classes, "image": bool, "note"}; the
    test tasks have `test_ways/shots/queries` (default: the training ones).

    - sinusoid: Finn et al.'s regression tasks (train and test from the same distribution);
    - omniglot: meta-train on every character of images_background_small1, meta-test on
      the alphabets of images_background_small2 that small1 lacks; rotations as classes;
      with small1 alone, its last alphabet is held out for meta-testing (said in "note");
    - omniglot-tfds: a prepared TFDS `omniglot` (`data_dir`), meta-train on its `train`
      (background) characters, meta-test on `test` (evaluation), rotations as classes;
    - digits: scikit-learn's digits, classes 0-4 to meta-train, 5-9 to meta-test (the
      first 174 images of each class: the smallest class's size).
    """
    from jnas import meta

    tw, ts, tq = test_ways or ways, test_shots or shots, test_queries or queries

    def pair(train: Any, test: Any, note: str = "") -> dict:
        return {
            "train": meta.few_shot(train, ways, shots, queries),
            "test": meta.few_shot(test, tw, ts, tq),
            "image": True,
            "classes": (train.shape[0], test.shape[0]),
            "note": note,
        }

    if dataset == "sinusoid":
        return {
            "train": meta.sinusoid(shots, queries),
            "test": meta.sinusoid(ts, tq),
            "image": False,
            "note": "",
        }
    if dataset == "omniglot":
        from jnas.data import omniglot, omniglot_alphabets

        folder = pathlib.Path(omniglot_dir or OMNIGLOT_DIR)
        small1, small2 = (folder / f"images_background_small{i}.zip" for i in (1, 2))
        if not small1.exists():
            raise FileNotFoundError(
                f"omniglot: {small1} is absent; pass --omniglot DIR holding "
                "images_background_small1.zip (and small2.zip to meta-test on its alphabets)"
            )
        if small2.exists():
            train = omniglot(small1)
            test = omniglot(small2, exclude=omniglot_alphabets(small1))
            return pair(train.images, test.images)
        alphabets = omniglot_alphabets(small1)
        if len(alphabets) < 2:
            raise ValueError(f"omniglot: {small1} holds one alphabet; nothing to hold out")
        train = omniglot(small1, alphabets=alphabets[:-1])
        test = omniglot(small1, alphabets=alphabets[-1:])
        return pair(
            train.images,
            test.images,
            f"{small2.name} is absent: meta-testing on {small1.name}'s alphabet "
            f"{alphabets[-1]!r}, held out of meta-training",
        )
    if dataset == "omniglot-tfds":
        from jnas.data import omniglot_tfds

        train, test = (omniglot_tfds(s, data_dir=data_dir) for s in ("train", "test"))
        return pair(train.images, test.images)
    if dataset == "digits":
        import numpy as np

        from jnas.data import class_images, digit_arrays

        x, y = digit_arrays()
        x = (x.reshape(-1, 8, 8, 1) / 16.0).astype(np.float32)
        pool = class_images(x, y, per_class="smallest")
        half = pool.images.shape[0] // 2
        return pair(pool.images[:half], pool.images[half:])
    raise ValueError(f"unknown dataset {dataset!r}; expected one of {', '.join(DATASETS)}")


def make_learner(
    method: str,
    *,
    image: bool,
    ways: int,
    steps: int,
    inner_steps: int | None = None,
    channels: int = 64,
    task_map: str = "auto",
    inner_lr: float | None = None,
    outer_lr: float | None = None,
    shots: int = 1,
) -> Any:
    """`method` with the settings of its paper for Omniglot (image tasks) or the sinusoid;
    `inner_lr` / `outer_lr` replace the paper's inner and outer learning rates.

    MAML/FOMAML/ANIL: inner SGD 0.4, 1 step (3 at test) for images; 0.01, 1 step for the
    sinusoid (Finn et al.); Adam 1e-3 outer. Reptile (Nichol et al.'s Omniglot setting):
    5 inner Adam steps (1e-3, β1 = 0) on minibatches of 10 drawn from support + query, so
    10 "train shots" per class; 50 steps on the support set at test; outer step size 1
    annealed linearly to 0 (meta-batch 5 in the paper: pass `meta_batch=5`); on the
    sinusoid 5 SGD steps of 0.01. ProtoNets, Matching networks (`matching_net_fce`: with
    the full-context embeddings, 5 attention reads; `matching_net_scaled`: the cosines
    times a learned scale from 10; `matching_net_fce_scaled`: both), Relation networks
    (`relation_net_conv`: the paper's convolutional relation module on conv4's 2x2 maps),
    SNAIL (its sequence of `ways * shots` support pairs and a query): Adam 1e-3. MetaNAS and
    T-NAS: an NB201 supernet (C=8, one cell per stage, stride-2 stem so it costs about
    what conv4 does; 99k weights against conv4's 112k) adapted in w and α with MAML's
    inner settings; MetaNAS with the exact (second-order) meta-gradient in w and α, T-NAS
    first-order (the MetaNAS paper's Reptile outer loop is
    `jnas.meta.metanas(outer="reptile")`).
    """
    from jnas import meta

    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; expected one of {', '.join(METHODS)}")
    if not image and method in (*METRIC_METHODS, "metanas", "tnas"):
        raise ValueError(f"{method} needs image tasks (--dataset omniglot or digits)")
    model = meta.conv4(ways, channels=channels) if image else meta.mlp()
    loss = "cross_entropy" if image else "mse"
    lr = inner_lr or (0.4 if image else 0.01)
    adam = {} if outer_lr is None else {"outer_optimizer": optax.adam(outer_lr)}
    k = inner_steps or 1
    test_steps = 3 * k if image else k
    if method in METRIC_METHODS:
        # relation networks: the conv4 embedding (global pooled: `channels` features) and
        # the paper's relation module with 8 hidden units, trained by MSE
        extra: dict = {"features": channels, "hidden": 8} if method == "relation_net" else {}
        if method == "snail":
            extra = {"shots": shots, "features": channels}
        if method == "matching_net_fce":  # the paper's full-context embeddings, 5 reads
            method, extra = "matching_net", {"fce": True, "features": channels}
        if method == "matching_net_scaled":  # a learned cosine scale from 10 (TADAM)
            method, extra = "matching_net", {"scale": 10.0}
        if method == "matching_net_fce_scaled":  # both
            method, extra = "matching_net", {"fce": True, "features": channels, "scale": 10.0}
        maps = method == "relation_net_conv"  # the paper's convolutional relation module
        if maps:
            method, extra = "relation_net", {"features": channels, "module": "conv"}
        return getattr(meta, method)(
            meta.conv4(None, channels=channels, pool=not maps),
            ways,
            task_map=task_map,
            optimizer=optax.adam(outer_lr or 1e-3),
            **extra,
        )
    if method in ("maml", "fomaml", "anil"):
        maker = getattr(meta, method)
        extra = {"head": "head" if image else "layers/2"} if method == "anil" else {}
        return maker(
            model,
            inner_lr=lr,
            inner_steps=k,
            eval_inner_steps=test_steps,
            loss=loss,
            task_map=task_map,
            **extra,
            **adam,
        )
    if method == "reptile":
        k = inner_steps or 5
        anneal = optax.sgd(optax.linear_schedule(outer_lr or 1.0, 0.0, steps))
        if not image:
            return meta.reptile(
                model,
                inner_lr=inner_lr or 0.01,
                inner_steps=k,
                eval_inner_steps=k,
                loss=loss,
                task_map=task_map,
                outer_optimizer=anneal,
            )
        return meta.reptile(
            model,
            inner_optimizer=optax.adam(inner_lr or 1e-3, b1=0.0),
            inner_steps=k,
            train_on="all",
            inner_batch=10,
            eval_inner_steps=50,
            loss=loss,
            task_map=task_map,
            outer_optimizer=anneal,
        )
    from jnas.spaces import NB201

    # im2col patches, not the CPU default's XLA convolution: the exact second-order
    # meta-gradient differentiates the convolution's backward pass again, which the
    # forward-form rules do not cover (`jnas.nn._canonical_conv`), and at C=8 XLA:CPU
    # runs these small convolutions on its slower path: a MetaNAS meta-step 69.6-69.8 ms
    # a task with patches against 78.5-96.8 native (`benchmarks/meta_step.py --methods
    # metanas --sizes 1 --maps unroll`, 2 cores); T-NAS shares the model
    net = meta.supernet_model(
        NB201(),
        channels=8,
        cells_per_stage=1,
        num_classes=ways,
        in_channels=1,
        stem_stride=2,
        conv_impl="patches",
    )
    return getattr(meta, method)(
        net,
        inner_lr={"w": lr, "alpha": lr},
        inner_steps=k,
        eval_inner_steps=test_steps,
        outer="maml" if method == "metanas" else "fomaml",
        task_map=task_map,
        **adam,
    )


def run_meta(
    method: str,
    dataset: str,
    *,
    ways: int = 5,
    shots: int = 1,
    queries: int = 15,
    steps: int = 1000,
    meta_batch: int = 16,
    test_tasks: int = 600,
    inner_steps: int | None = None,
    seed: int = 0,
    out: str | pathlib.Path,
    resume: bool = False,
    omniglot_dir: str | None = None,
    data_dir: str | None = None,
    log_every: int = 10,
    progress: Progress | None = None,
    test_ways: int | None = None,
    test_shots: int | None = None,
    test_queries: int | None = None,
    inner_lr: float | None = None,
    outer_lr: float | None = None,
) -> dict:
    """Meta-train `method` on `dataset`, evaluate on `test_tasks` held-out tasks of
    `test_ways/shots/queries` (default: the training ones); writes records, checkpoints
    and `summary.json` under `out` and returns the summary. `progress(done, total)` after
    every logged chunk of `log_every` steps."""
    from jnas import meta

    if test_ways not in (None, ways) and method != "protonet":
        raise ValueError(
            f"--test-ways {test_ways} differs from --ways {ways}: only protonet classifies "
            f"another number of classes ({method}'s head has {ways} outputs)"
        )
    source = task_sources(
        dataset,
        ways=ways,
        shots=shots,
        queries=queries,
        omniglot_dir=omniglot_dir,
        data_dir=data_dir,
        test_ways=test_ways,
        test_shots=test_shots,
        test_queries=test_queries,
    )
    learner = make_learner(
        method,
        image=source["image"],
        ways=ways,
        steps=steps,
        inner_steps=inner_steps,
        inner_lr=inner_lr,
        outer_lr=outer_lr,
        shots=shots,
    )
    out = pathlib.Path(out)
    start = time.perf_counter()
    state, records = meta.meta_train(
        learner,
        source["train"],
        jax.random.key(seed),
        steps=steps,
        meta_batch=meta_batch,
        log_every=min(log_every, steps),
        out=out,
        resume=resume,
        on_log=None if progress is None else lambda r: progress(r["step"], steps),
    )
    train_s = time.perf_counter() - start
    result = meta.evaluate_tasks(
        learner,
        state.params,
        source["test"],
        jax.random.key(seed + 10_000),
        num_tasks=test_tasks,
        batch=min(20, test_tasks),
    )
    summary = {
        "method": method,
        "dataset": dataset,
        "ways": ways,
        "shots": shots,
        "queries": queries,
        "test_ways": test_ways or ways,
        "test_shots": test_shots or shots,
        "test_queries": test_queries or queries,
        "inner_lr": inner_lr,
        "outer_lr": outer_lr,
        "note": source["note"],
        "steps": steps,
        "meta_batch": meta_batch,
        "seed": seed,
        "test_tasks": test_tasks,
        "train_seconds": round(train_s, 1),
        "device": jax.devices()[0].device_kind,
        "final_train": records[-1] if records else None,
        "test": {k: {"mean": m, "ci95": c} for k, (m, c) in result.items()},
    }
    if "classes" in source:
        summary["classes"] = {"meta_train": source["classes"][0], "meta_test": source["classes"][1]}
    if method in ("metanas", "tnas"):
        from jnas.spaces import NB201

        task = meta.task_batch(source["test"], jax.random.key(seed + 20_000), 1)
        task = jax.tree.map(lambda a: a[0], task)
        adapted = jax.jit(learner.adapt)(state.params, task)
        summary["cell_meta"] = NB201().to_string(meta.derive(NB201(), state.params))
        summary["cell_first_test_task"] = NB201().to_string(meta.derive(NB201(), adapted))
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary
