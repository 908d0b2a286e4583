"""NASH hill climbing with network morphisms against the same search with children trained
from scratch, at equal compute, on the digits (#18 §3).

    python experiments/nash_digits.py --seeds 3

Both runs climb from `C(3,16,1)-P(2,2)-C(3,16,1)-P(2,2)-FC(32)` (parent trained 4 epochs),
5 steps of 4 children, each child 1-3 random morphisms away from the incumbent and trained 2
epochs (SGD Nesterov lr 0.05 cosine, batch 64, batch norm): NASH's children start from the
parent's morphed weights, the baseline's from a fresh initialisation. Reported per step: the
incumbent's validation and test accuracy against epochs trained (mean over seeds). Writes
`benchmarks/results/nash_digits.json`.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import time

import jax
import numpy as np

from jnas.data import digits
from jnas.spaces import Sequential
from jnas.train import TrainConfig, nash

HERE = pathlib.Path(__file__).parent
SPACE = Sequential(input_size=16, conv_filters=(16, 32, 64, 128), fc_units=(32, 64, 128))
START = "C(3,16,1)-P(2,2)-C(3,16,1)-P(2,2)-FC(32)"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--children", type=int, default=4)
    p.add_argument(
        "--out", default=str(HERE.parent / "benchmarks" / "results" / "nash_digits.json")
    )
    args = p.parse_args()
    data = digits(jax.random.key(0), size=16, channels=3)
    runs: dict[str, list] = {"morphism (NASH)": [], "from scratch": []}
    t0 = time.perf_counter()
    for seed in range(args.seeds):
        for name, inherit in (("morphism (NASH)", True), ("from scratch", False)):
            history = nash(
                jax.random.key(seed),
                SPACE,
                SPACE.from_string(START),
                data,
                steps=args.steps,
                children=args.children,
                parent_config=TrainConfig(epochs=4, batch_size=64, lr=0.05, augment=False),
                child_config=TrainConfig(epochs=2, batch_size=64, lr=0.05, augment=False),
                inherit=inherit,
            )
            runs[name].append(history)
            print(
                f"seed {seed} {name}: valid {history[-1]['valid_acc']:.4f} test "
                f"{history[-1]['test_acc']:.4f} {history[-1]['arch']} "
                f"({time.perf_counter() - t0:.0f} s)",
                flush=True,
            )
    summary = {}
    for name, hs in runs.items():
        summary[name] = {
            "epochs": [h["epochs"] for h in hs[0]],
            "valid_acc_mean": np.mean([[h["valid_acc"] for h in r] for r in hs], 0).tolist(),
            "test_acc_mean": np.mean([[h["test_acc"] for h in r] for r in hs], 0).tolist(),
            "test_acc_final": [r[-1]["test_acc"] for r in hs],
        }
        print(name, {k: np.round(v, 4).tolist() for k, v in summary[name].items()})
    out = pathlib.Path(args.out)
    out.write_text(
        json.dumps(
            {"start": START, "seeds": args.seeds, "summary": summary, "runs": runs}, indent=1
        )
    )
    print("wrote", out)


if __name__ == "__main__":
    main()
