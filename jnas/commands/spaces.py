"""`jnas spaces`: list the search spaces, sample architectures and compile their networks."""

from __future__ import annotations

import argparse
import pathlib
import time

from jnas.commands._common import SPACE_NAMES, make_space

# Network settings that make each space's network take a 32x32x3 image with 10 classes.
_BUILD_FOR_CIFAR = {"chain": {"num_classes": 10, "stem_stride": 1}}


def _arch(space, seed: int, arch: str | None):
    import jax

    return space.sample(jax.random.key(seed)) if arch is None else space.from_string(arch)


def describe(name: str, seed: int, arch: str | None = None) -> dict:
    """Sample an architecture of a space (or parse `arch`), compile its network, count its
    parameters."""
    import jax
    import jax.numpy as jnp
    from flax import nnx

    from jnas.nn import count_flops, count_params

    space = make_space(name)
    arch = _arch(space, seed, arch)
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


def cmd_spaces(args: argparse.Namespace) -> int:
    names = SPACE_NAMES if args.space == "all" else (args.space,)
    if args.list:
        for name in SPACE_NAMES:
            space = make_space(name)
            print(f"{name:13s} {type(space).__name__:13s} size {space.size:.3e}")
        return 0
    for flag in ("arch", "draw"):
        if getattr(args, flag) is not None and args.space == "all":
            raise ValueError(f"--{flag} needs one SPACE (e.g. `jnas spaces darts --{flag} ...`)")
    if args.draw is not None:
        from jnas import plots

        path = pathlib.Path(args.draw)
        if path.suffix.lower() not in (".png", ".svg", ".pdf"):
            raise ValueError(f"--draw: expected a .png, .svg or .pdf path; got {args.draw!r}")
        if not path.parent.is_dir():
            raise FileNotFoundError(f"--draw: folder {str(path.parent)!r} does not exist")
        space = make_space(args.space)
        arch = _arch(space, args.seed, args.arch)
        plots.draw_cell(space, arch, path)
        print(f"{args.space}: {space.to_string(arch)}")
        print(f"wrote {path}")
        return 0
    for name in names:
        row = describe(name, args.seed, args.arch)
        print(
            f"{name:13s} params {row['params']:>10,d}  flops {row['flops_M']:>9.2f}M  {row['arch']}"
        )
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    """`jnas spaces`: its flags, its choices from the registries."""
    spaces = sub.add_parser(
        "spaces",
        help="list search spaces, sample and print architectures",
        description="List the search spaces, or sample "
        "an architecture of one (or all) and print its network's size.",
    )
    spaces.add_argument(
        "space",
        nargs="?",
        default="all",
        choices=("all", *SPACE_NAMES),
        help="which space (default: all)",
    )
    spaces.add_argument("--list", action="store_true", help="list spaces and their sizes")
    spaces.add_argument("--seed", type=int, default=0, help="PRNG seed (default: 0)")
    spaces.add_argument(
        "--arch",
        help="an architecture string of SPACE (as printed) to "
        "describe or draw instead of a sampled one",
    )
    spaces.add_argument(
        "--draw",
        metavar="PATH",
        help="draw the architecture to PATH (.png, .svg or .pdf); needs one SPACE",
    )
    spaces.set_defaults(func=cmd_spaces)
