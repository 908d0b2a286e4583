"""Tracing a network's construction (`nnx.eval_shape`, the first half of `jit(init)`):
`nnx.Rngs` against `jnas.nn.init_rngs`, side by side, for the supernets of each space.

    python benchmarks/build_trace.py --out benchmarks/results

With `nnx.Rngs` each counter update probes a tracer's `sharding`, which in jax 0.10 walks
every equation traced so far (jax-ml/jax#40041): the time grows with the square of the
number of parameter draws. `init_rngs` holds the counters as array refs (no probe). Writes
`build_trace_<device>.json`; also checks both build the same abstract parameters.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import time

import jax
from _child import cpu_name
from flax import nnx

from jnas.nn import count_params, init_rngs
from jnas.spaces import DARTS, NB201, Chain

CASES = {
    "nb201 supernet (16 ch, 5 cells/stage)": (NB201, {"channels": 16, "cells_per_stage": 5}),
    "darts supernet (16 ch, 8 cells)": (DARTS, {"channels": 16, "num_cells": 8}),
    "darts supernet (16 ch, 5 cells)": (DARTS, {"channels": 16, "num_cells": 5}),
    "chain supernet": (Chain, {}),
}


def _trace(make) -> tuple[float, int]:
    start = time.perf_counter()
    model = nnx.eval_shape(make)
    return time.perf_counter() - start, count_params(model)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--out", default=None, help="folder for the JSON")
    args = parser.parse_args()
    rows = []
    for name in args.cases:
        space_cls, config = CASES[name]
        space = space_cls()
        t_ref, n_ref = _trace(
            lambda space=space, config=config: space.supernet(**config, rngs=init_rngs(0))
        )
        t_plain, n_plain = _trace(
            lambda space=space, config=config: space.supernet(**config, rngs=nnx.Rngs(0))
        )
        assert n_ref == n_plain, (name, n_ref, n_plain)
        rows.append(
            {
                "case": name,
                "params": n_ref,
                "nnx_rngs_s": round(t_plain, 2),
                "init_rngs_s": round(t_ref, 2),
                "speedup": round(t_plain / t_ref, 1),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    result = {
        "device": jax.devices()[0].device_kind,
        "cpu": cpu_name(),
        "jax": jax.__version__,
        "rows": rows,
    }
    if args.out:
        path = pathlib.Path(args.out) / f"build_trace_{jax.devices()[0].platform}.json"
        path.write_text(json.dumps(result, indent=1) + "\n")
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
