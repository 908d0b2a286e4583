"""Few-shot Omniglot: MAML, first-order MAML, Reptile, ANIL, ProtoNets, MetaNAS, T-NAS.

    python experiments/meta_omniglot.py --methods maml protonet --shots 1 5 --steps 1500

Meta-train on every character of images_background_small1 (5 alphabets, 136 characters,
x4 rotations = 544 classes), meta-test on the alphabets of images_background_small2 that
small1 does not hold (Japanese (katakana), Sanskrit, Tagalog: 106 characters x4 = 424
classes), 5-way, 15 queries per class; mean ± 95% CI over --test-tasks held-out tasks.
Appends one entry per (method, shots) to --results (JSON) and keeps each run's records,
checkpoints and summary under --out (`--resume` continues killed runs).
"""

from __future__ import annotations

import argparse
import json
import pathlib

from jnas.recipes.meta import METHODS, run_meta


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--shots", nargs="+", type=int, default=[1, 5])
    parser.add_argument("--ways", type=int, default=5)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--meta-batch", type=int, default=16)
    parser.add_argument("--test-tasks", type=int, default=600)
    parser.add_argument("--omniglot", default=None, help="folder of the Omniglot zips")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--out", default="out/meta_omniglot")
    parser.add_argument("--results", default="benchmarks/results/meta_omniglot.json")
    args = parser.parse_args()
    results_path = pathlib.Path(args.results)
    results = json.loads(results_path.read_text()) if results_path.exists() else []
    for shots in args.shots:
        for method in args.methods:
            s = run_meta(
                method,
                "omniglot",
                ways=args.ways,
                shots=shots,
                steps=args.steps,
                meta_batch=args.meta_batch,
                test_tasks=args.test_tasks,
                out=pathlib.Path(args.out) / f"{method}_{args.ways}w{shots}s",
                resume=args.resume,
                omniglot_dir=args.omniglot,
            )
            acc = s["test"]["metric_after"]
            print(
                f"{method:9s} {args.ways}-way {shots}-shot: {100 * acc['mean']:.2f} ± "
                f"{100 * acc['ci95']:.2f} %  ({s['train_seconds']} s)",
                flush=True,
            )
            results = [
                r
                for r in results
                if (r["method"], r["shots"], r["ways"]) != (method, shots, args.ways)
            ] + [s]
            results_path.parent.mkdir(parents=True, exist_ok=True)
            results_path.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
