"""`jnas spaces`: list the search spaces, sample architectures and compile their networks."""

from __future__ import annotations

import argparse
import time

from jnas.commands._common import SPACE_NAMES, make_space

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


def cmd_spaces(args: argparse.Namespace) -> int:
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


