"""NEAT with complexification on XOR, the paper's first experiment (Stanley & Miikkulainen
2002, §4.1: population 150, solved in 32 generations on average (4,755 evaluations), never
failing in 100 runs; solutions had 2.35 hidden nodes on average).

All seeds run in one compiled program (`vmap` over seeds of a `lax.scan` over generations,
`jnas.search.neat_networks`). Reported: the fraction of seeds that solve XOR (every output
on the right side of 0.5) within `--generations`, the generations and evaluations to the
first solution, and the hidden nodes and enabled connections of that first solution; then
the same with weight steps of std 0.5 (jnas' earlier default), without the stagnation rule
(a species that stops improving keeps reproducing), without refocusing (after 20
generations without a new population best, only the two best species reproduce), without
speciation (one species: every genome shares with the whole population) and without
add-node mutations (no hidden node can appear: XOR is out of reach).

    python experiments/neat_xor.py --seeds 50  # ~25 min on 2 CPU cores (4 min a row)
"""

from __future__ import annotations

import argparse
import json
import pathlib
import time

import jax
import jax.numpy as jnp
import numpy as np

from jnas.search import neat_networks as neat

HERE = pathlib.Path(__file__).parent


def run(searcher, seeds: int, generations: int) -> dict:
    def one(key):
        def gen(state, k):
            g, state = searcher.ask(k, state)
            f, solved = jax.vmap(lambda x: neat.xor_fitness(x, state.node_order))(g)
            first = jnp.argmax(solved)
            hidden = jnp.sum(g.node_active[first, 4:])
            enabled = jnp.sum(g.enabled[first] & (g.innovation[first] >= 0))
            return searcher.tell(state, g, f), (jnp.any(solved), hidden, enabled)

        _, out = jax.lax.scan(
            gen, searcher.init(key), jax.random.split(jax.random.fold_in(key, 1), generations)
        )
        return out

    t0 = time.perf_counter()
    solved, hidden, enabled = jax.jit(jax.vmap(one))(jax.random.split(jax.random.key(0), seeds))
    solved, hidden, enabled = (np.asarray(a) for a in (solved, hidden, enabled))
    seconds = time.perf_counter() - t0
    ok = solved.any(1)
    first = np.argmax(solved, 1)
    gens = first[ok] + 1
    return {
        "seeds": seeds,
        "solved_fraction": float(ok.mean()),
        "generations_to_solve_mean": float(gens.mean()) if ok.any() else None,
        "generations_to_solve_median": float(np.median(gens)) if ok.any() else None,
        "evaluations_to_solve_mean": float(gens.mean() * 150) if ok.any() else None,
        "hidden_nodes_of_solution_mean": float(hidden[ok, first[ok]].mean()) if ok.any() else None,
        "enabled_connections_of_solution_mean": float(enabled[ok, first[ok]].mean())
        if ok.any()
        else None,
        "seconds": seconds,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--seeds", type=int, default=50)
    p.add_argument("--generations", type=int, default=100)
    p.add_argument("--out", default=str(HERE.parent / "benchmarks" / "results" / "neat_xor.json"))
    p.add_argument("--rows", type=int, default=None, help="run only the first ROWS rows")
    args = p.parse_args()
    rows = {}
    variants = [
        ("NEAT", {}),
        ("weight perturbation std 0.5", {"weight_sigma": 0.5}),
        ("no stagnation (species live forever)", {"stagnation": 10**6}),
        ("no refocusing (on a stagnant population)", {"refocus": 10**6}),
        ("no speciation (one species)", {"compatibility_threshold": 1e9}),
        ("no add-node mutation", {"add_node_rate": 0.0}),
    ]
    for name, kwargs in variants[: args.rows]:
        rows[name] = run(neat.neat_networks(2, 1, **kwargs), args.seeds, args.generations)
        print(name, rows[name], flush=True)
    pathlib.Path(args.out).write_text(
        json.dumps(
            {
                "task": "XOR, fitness (4 - sum |out - target|)^2, population 150",
                "generations": args.generations,
                "paper": "solved in 100/100 runs, 32 generations (4,755 evaluations) on "
                "average, 2.35 hidden nodes, 7.48 enabled connections",
                "rows": rows,
                "command": f"python experiments/neat_xor.py --seeds {args.seeds}"
                + (f" --rows {args.rows}" if args.rows else ""),
            },
            indent=1,
        )
    )
    print("wrote", args.out)


if __name__ == "__main__":
    main()
