"""Hyperband on the digits, end to end with real training (#20 §2).

    python experiments/hyperband_digits.py --evaluations 60 --results benchmarks/results

NB201 cells trained on scikit-learn's digits (16 x 16, `jnas.data.digits`) for 1, 3 or 9
epochs (`search.run(hyperband(...), fidelities=(1, 3, 9))`); a promoted cell continues
from the parameters and optimiser state it reached (the objective's state), so it trains
only the added epochs. Every cell is the NB201 supernet with fixed one-hot op weights, so
one compiled step serves all cells. SGD with momentum at a constant learning rate (a
schedule over the largest budget would make a 3-epoch run differ from the first 3 epochs
of a 9-epoch one). Prints the search and the incumbent's test accuracy, writes
`hyperband_digits.json` in `--out` (with the run's records and partial states).
"""

from __future__ import annotations

import argparse
import json
import pathlib
import time
import zlib

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jnas import data, search
from jnas.nn import functional
from jnas.spaces import NB201


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--evaluations", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="out/hyperband-digits")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--results", default=None, help="also write the summary JSON here")
    args = parser.parse_args()
    space = NB201()
    splits = data.digits(jax.random.key(args.seed))
    net = functional(
        lambda rngs: space.supernet(channels=8, cells_per_stage=1, num_classes=10, rngs=rngs)
    )
    tx = optax.sgd(0.05, momentum=0.9)
    batch = 64
    x_tr, y_tr = jnp.asarray(splits["train"].x), jnp.asarray(splits["train"].y)
    steps = len(y_tr) // batch

    def loss_fn(params, weights, x, y):
        logits = net.apply(params, x, weights)
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    @jax.jit
    def epoch(params, opt_state, weights, key):
        order = jax.random.permutation(key, len(y_tr))[: steps * batch].reshape(steps, batch)

        def step(carry, idx):
            params, opt_state = carry
            grads = jax.grad(loss_fn)(params, weights, x_tr[idx], y_tr[idx])
            updates, opt_state = tx.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), None

        return jax.lax.scan(step, (params, opt_state), order)[0]

    @jax.jit
    def accuracy(params, weights, x, y):
        return jnp.mean(jnp.argmax(net.apply(params, x, weights), -1) == y)

    template = net.init(jax.random.key(0))
    opt_template = tx.init(template)

    def weights_of(arch):
        return jax.nn.one_hot(space.supernet_index(arch), space.supernet_shape[1])

    def objective(arch, epochs, state):
        """Validation accuracy (%) after `epochs` epochs, continuing `state`."""
        weights = weights_of(arch)
        cell_key = jax.random.key(zlib.crc32(space.to_string(arch).encode()))  # stable
        if state is None:
            params, opt_state, done = net.init(cell_key), None, 0
            opt_state = tx.init(params)
        else:
            params, opt_state, done = search.restore_state(
                (template, opt_template, np.int32(0)), state
            )
            done = int(done)
        for e in range(done, epochs):
            params, opt_state = epoch(params, opt_state, weights, jax.random.fold_in(cell_key, e))
        acc = 100 * float(
            accuracy(
                params, weights, jnp.asarray(splits["valid"].x), jnp.asarray(splits["valid"].y)
            )
        )
        return acc, (params, opt_state, np.int32(epochs))

    start = time.perf_counter()

    def show(e):
        print(
            f"round {e['round']:3d}  {e['budget']} epochs"
            + (f" (from {e['continued_from']})" if e["continued_from"] else "")
            + f"  valid {e['fitness']:.1f}%  {e['arch']}",
            flush=True,
        )

    _, records = search.run(
        search.hyperband(space, fidelities=3, eta=3),
        objective,
        jax.random.key(args.seed),
        num_evaluations=args.evaluations,
        space=space,
        fidelities=(1, 3, 9),
        out=args.out,
        resume=args.resume,
        on_evaluation=show,
    )
    evaluations = [e for r in records for e in r["evaluations"]]
    best = records[-1]["best_arch"]
    arch = space.from_string(best)
    _, (params, _, _) = objective(arch, 9, None)
    test = 100 * float(
        accuracy(
            params, weights_of(arch), jnp.asarray(splits["test"].x), jnp.asarray(splits["test"].y)
        )
    )
    trained = sum(e["budget"] - (e["continued_from"] or 0) for e in evaluations)
    summary = {
        "evaluations": len(evaluations),
        "epochs_trained": trained,
        "epochs_without_continuation": sum(e["budget"] for e in evaluations),
        "best_arch": best,
        "best_valid_acc": records[-1]["best_fitness"],
        "best_test_acc_retrained_9_epochs": test,
        "wall_s": round(time.perf_counter() - start, 1),
    }
    pathlib.Path(args.out, "hyperband_digits.json").write_text(json.dumps(summary, indent=2))
    if args.results:
        pathlib.Path(args.results).mkdir(parents=True, exist_ok=True)
        pathlib.Path(args.results, "hyperband_digits.json").write_text(
            json.dumps(summary, indent=2)
        )
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
