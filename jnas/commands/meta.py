"""`jnas meta`: meta-train a method with its paper's settings on a task source and
evaluate it on held-out tasks (the run itself is `jnas.recipes.meta.run_meta`)."""

from __future__ import annotations

import pathlib
from typing import Any

from jnas.commands._common import progress
from jnas.recipes.meta import DATASETS, METHODS, run_meta

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
    )
    metric = "MSE" if args.dataset == "sinusoid" else "accuracy"
    print(f"{args.method} on {args.dataset}, {s['test_tasks']} held-out tasks (mean ± 95% CI):")
    for when in ("before", "after"):
        m = s["test"][f"metric_{when}"]
        print(f"  {metric} {when:>6s} adaptation: {m['mean']:.4f} ± {m['ci95']:.4f}")
    if "cell_first_test_task" in s:
        print(f"  cell adapted to a test task: {s['cell_first_test_task']}")
    print(f"wrote {pathlib.Path(args.out) / 'summary.json'}")
    return 0
