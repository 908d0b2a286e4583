"""The `jnas` command."""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time
from collections.abc import Sequence

SPACE_NAMES = ("nb201", "nb101", "darts", "nats_size", "chain", "sequential", "hierarchical")


def make_space(name: str):
    """The search space called `name` with its default configuration."""
    from jnas import spaces

    table = {
        "nb201": spaces.NB201, "nb101": spaces.NB101, "darts": spaces.DARTS,
        "nats_size": spaces.NATSSize, "chain": spaces.Chain,
        "sequential": spaces.Sequential, "hierarchical": spaces.Hierarchical,
    }
    if name not in table:
        raise ValueError(f"unknown space {name!r}; expected one of {', '.join(table)}")
    return table[name]()


# Network settings that make each space's network take a 32x32x3 image with 10 classes.
_BUILD_FOR_CIFAR = {"chain": {"num_classes": 10, "stem_stride": 1}}


def describe(name: str, seed: int) -> dict:
    """Sample an architecture of a space, compile its network, count its parameters."""
    import jax
    import jax.numpy as jnp
    from flax import nnx

    from jnas.nn import count_flops, count_params

    space = make_space(name)
    arch = space.sample(jax.random.key(seed))
    start = time.perf_counter()
    model = space.build(arch, **_BUILD_FOR_CIFAR.get(name, {}), rngs=nnx.Rngs(seed))
    model.eval()
    graphdef, state = nnx.split(model)
    out = jax.jit(lambda s, x: nnx.merge(graphdef, s)(x))(state, jnp.zeros((1, 32, 32, 3)))
    return {
        "space": name,
        "arch": space.to_string(arch),
        "params": count_params(model, exclude=("aux",)),
        "flops_M": round(count_flops(model, (1, 32, 32, 3)) / 1e6, 3),
        "output_shape": list(out.shape),
        "build_s": round(time.perf_counter() - start, 2),
    }


def _cmd_spaces(args: argparse.Namespace) -> int:
    names = SPACE_NAMES if args.space == "all" else (args.space,)
    if args.list:
        for name in SPACE_NAMES:
            space = make_space(name)
            print(f"{name:13s} {type(space).__name__:13s} size {space.size:.3e}")
        return 0
    for name in names:
        row = describe(name, args.seed)
        print(f"{name:13s} params {row['params']:>10,d}  flops {row['flops_M']:>9.2f}M  "
              f"{row['arch']}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    print(f"jnas demo: one architecture of each of the {len(SPACE_NAMES)} search spaces, "
          "compiled to a Flax network (32x32 input, 10 classes)")
    for name in SPACE_NAMES:
        row = describe(name, args.seed)
        rows.append(row)
        print(f"  {name:13s} params {row['params']:>10,d}  flops {row['flops_M']:>9.2f}M  "
              f"built in {row['build_s']:5.2f}s  {row['arch'][:70]}")
    path = out / "architectures.jsonl"
    with path.open("w") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
    print(f"wrote {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jnas", description="JAX-native, functional neural architecture search.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser("demo", help="the main job: sample and compile an architecture "
                          "of every search space", description="Sample an architecture of "
                          "every search space, compile it to a Flax network and report its "
                          "parameters and FLOPs; writes JSON lines under --out.")
    demo.add_argument("--out", default="out/demo", help="output folder (default: out/demo)")
    demo.add_argument("--seed", type=int, default=0, help="PRNG seed (default: 0)")
    demo.set_defaults(func=_cmd_demo)

    spaces = sub.add_parser("spaces", help="list search spaces, sample and print "
                            "architectures", description="List the search spaces, or sample "
                            "an architecture of one (or all) and print its network's size.")
    spaces.add_argument("space", nargs="?", default="all", choices=("all", *SPACE_NAMES),
                        help="which space (default: all)")
    spaces.add_argument("--list", action="store_true", help="list spaces and their sizes")
    spaces.add_argument("--seed", type=int, default=0, help="PRNG seed (default: 0)")
    spaces.set_defaults(func=_cmd_spaces)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `jnas` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, OSError) as err:
        print(f"jnas {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
