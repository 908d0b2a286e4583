"""A data-parallel one-shot search spread over processes (multi-host), one process per host.

Every process runs this script with its own `--process-id`; `jax.distributed` joins them,
the mesh spans all their devices, each process loads only its share of every batch, and
the compiled step all-reduces batch statistics and gradients, so every process holds the
same weights and α. With `--num-processes 1` it is the single-process search on the same
batches, which the test suite compares against (tests/oneshot/test_multihost.py):

    python experiments/multihost_oneshot.py --num-processes 2 --process-id 0 \\
        --coordinator localhost:12345 --out /tmp/p0.json &
    python experiments/multihost_oneshot.py --num-processes 2 --process-id 1 \\
        --coordinator localhost:12345 --out /tmp/p1.json

On CPU the processes talk through gloo; on GPU hosts through NCCL (drop `--cpu`-specific
flags: `initialize_multihost(..., cpu_collectives=None)`).
"""

from __future__ import annotations

import argparse
import json

import numpy as np


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-processes", type=int, default=1)
    parser.add_argument("--process-id", type=int, default=0)
    parser.add_argument("--coordinator", default="localhost:12345")
    parser.add_argument("--method", default="darts-v1")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=16, help="global batch")
    parser.add_argument("--channels", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="JSON file for α and the derived cell")
    args = parser.parse_args(argv)

    import jax

    from jnas import oneshot, parallel
    from jnas.data import digits
    from jnas.spaces import NB201

    if args.num_processes > 1:
        parallel.initialize_multihost(args.coordinator, args.num_processes, args.process_id)
    space = NB201()
    method = oneshot.REGISTRY[args.method].make(
        space,
        channels=args.channels,
        cells_per_stage=1,
        num_classes=10,
        epochs=1,
        steps_per_epoch=args.steps,
    )
    data = digits(jax.random.key(args.seed), size=16)
    train = (np.asarray(data["train"].x), np.asarray(data["train"].y))
    valid = (np.asarray(data["valid"].x), np.asarray(data["valid"].y))
    mesh = parallel.mesh()
    rows = parallel.process_rows(args.batch_size)
    state = parallel.replicate(method.init(jax.random.key(args.seed)), mesh)
    alpha0 = np.asarray(jax.device_get(state.alpha))
    step = jax.jit(
        lambda s, t, v, i: method.step(
            jax.random.fold_in(jax.random.key(args.seed + 1), i), s, t, v
        )
    )
    rng = np.random.default_rng(args.seed)  # the same batches on every process
    for i in range(args.steps):
        it = rng.choice(len(train[1]), args.batch_size, replace=False)[rows]
        iv = rng.choice(len(valid[1]), args.batch_size, replace=False)[rows]
        state, metrics = step(
            state,
            parallel.global_batch((train[0][it], train[1][it]), mesh),
            parallel.global_batch((valid[0][iv], valid[1][iv]), mesh),
            np.int32(i),
        )
    alpha = np.asarray(jax.device_get(state.alpha))
    result = {
        "processes": jax.process_count(),
        "devices": jax.device_count(),
        "alpha": alpha.tolist(),
        "alpha_init": alpha0.tolist(),
        "arch": space.to_string(method.derive(state)),
        "w_loss": float(metrics["w_loss"]),
    }
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f)
    print(json.dumps({k: result[k] for k in ("processes", "devices", "arch", "w_loss")}))
    return result


if __name__ == "__main__":
    main()
