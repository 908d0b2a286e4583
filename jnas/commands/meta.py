"""`jnas meta`: meta-train a method with its paper's settings on a task source and
evaluate it on held-out tasks (the run itself is `jnas.recipes.meta.run_meta`)."""

from __future__ import annotations

import argparse
import pathlib
from typing import Any

from jnas.commands._common import positive_int, progress
from jnas.recipes.meta import DATASETS, METHODS, METRIC_METHODS, run_meta

__all__ = ["DATASETS", "METHODS", "cmd_meta"]


def cmd_meta(args: Any) -> int:
    from jnas.commands._common import enable_compilation_cache

    enable_compilation_cache()
    s = run_meta(
        args.method,
        args.dataset,
        ways=args.ways,
        shots=args.shots,
        queries=args.queries,
        steps=args.steps,
        meta_batch=args.meta_batch,
        test_tasks=args.test_tasks,
        inner_steps=args.inner_steps,
        seed=args.seed,
        out=args.out,
        resume=args.resume,
        omniglot_dir=args.omniglot,
        data_dir=args.data_dir,
        progress=progress(f"{args.method} {args.dataset}", "steps"),
        log_every=args.log_every,
        test_ways=args.test_ways,
        test_shots=args.test_shots,
        test_queries=args.test_queries,
        inner_lr=args.inner_lr,
        outer_lr=args.outer_lr,
    )
    if s["note"]:
        print(f"note: {s['note']}")
    metric = "MSE" if args.dataset == "sinusoid" else "accuracy"
    ways = "" if args.dataset == "sinusoid" else f"{s['test_ways']}-way "
    print(
        f"{args.method} on {args.dataset}, {s['test_tasks']} held-out {ways}"
        f"{s['test_shots']}-shot tasks (mean ± 95% CI):"
    )
    adapts = args.method not in METRIC_METHODS
    if not adapts:  # nothing adapts: one figure
        m = s["test"]["metric_after"]
        print(f"  {metric}: {m['mean']:.4f} ± {m['ci95']:.4f}")
    for when in ("before", "after") if adapts else ():
        m = s["test"][f"metric_{when}"]
        print(f"  {metric} {when:>6s} adaptation: {m['mean']:.4f} ± {m['ci95']:.4f}")
    if "cell_first_test_task" in s:
        print(f"  cell adapted to a test task: {s['cell_first_test_task']}")
    print(f"wrote {pathlib.Path(args.out) / 'summary.json'}")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    """`jnas meta`: its flags, its choices from the registries."""
    meta = sub.add_parser(
        "meta",
        help="meta-learning: MAML, Reptile, ANIL, ProtoNets, MetaNAS, T-NAS",
        description="Meta-train on few-shot tasks (sinusoid regression, Omniglot from the "
        "official zips, or the bundled digits) and report the held-out tasks' loss and "
        "accuracy before and after adaptation (mean ± 95% CI). MetaNAS and T-NAS adapt an "
        "NB201 supernet's weights and α per task and print the task's cell. Records, "
        "checkpoints (--resume) and summary.json go under --out.",
    )
    meta.add_argument("method", choices=METHODS, help="meta-learning method")
    meta.add_argument(
        "--dataset",
        default="omniglot",
        choices=DATASETS,
        help="task source (default: omniglot)",
    )
    meta.add_argument(
        "--omniglot",
        default=None,
        help="folder of images_background_small{1,2}.zip (default: ../shared/omniglot)",
    )
    meta.add_argument(
        "--data-dir",
        default=None,
        help="TFDS data_dir for --dataset "
        "omniglot-tfds (default: $TFDS_DATA_DIR or ~/tensorflow_datasets)",
    )
    meta.add_argument("--ways", type=positive_int, default=5, help="classes per task (default: 5)")
    meta.add_argument(
        "--shots",
        type=positive_int,
        default=1,
        help="support examples per class, or points for the sinusoid (default: 1)",
    )
    meta.add_argument(
        "--queries", type=positive_int, default=15, help="query examples per class (default: 15)"
    )
    meta.add_argument(
        "--steps", type=positive_int, default=1000, help="outer (meta) steps (default: 1000)"
    )
    meta.add_argument(
        "--meta-batch", type=positive_int, default=16, help="tasks per outer step (default: 16)"
    )
    meta.add_argument(
        "--inner-steps",
        type=positive_int,
        default=None,
        help="inner steps (default: the method's paper setting)",
    )
    for name, what in (("ways", "classes"), ("shots", "support examples per class")):
        meta.add_argument(
            f"--test-{name}",
            type=positive_int,
            default=None,
            help=f"{what} of the held-out tasks (default: --{name}; other ways: protonet only)",
        )
    meta.add_argument(
        "--test-queries",
        type=positive_int,
        default=None,
        help="query examples per class of the held-out tasks (default: --queries)",
    )
    meta.add_argument(
        "--inner-lr",
        type=float,
        default=None,
        help="inner-loop learning rate (default: the method's paper setting)",
    )
    meta.add_argument(
        "--outer-lr",
        type=float,
        default=None,
        help="outer (meta) learning rate (default: the method's paper setting)",
    )
    meta.add_argument(
        "--log-every",
        type=positive_int,
        default=10,
        help="record and show progress every this many steps (default: 10)",
    )
    meta.add_argument(
        "--test-tasks",
        type=positive_int,
        default=600,
        help="held-out tasks to evaluate (default: 600)",
    )
    meta.add_argument("--seed", type=int, default=0, help="PRNG seed (default: 0)")
    meta.add_argument("--resume", action="store_true", help="continue a killed run")
    meta.add_argument(
        "--out", default=None, help="run folder (default: a new folder out/meta/<date-time>)"
    )
    meta.set_defaults(func=cmd_meta)
