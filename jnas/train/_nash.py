"""Hill climbing with network morphisms (Elsken, Metzen & Hutter, "NASH", ICLR-W 2018): each
step applies random function-preserving morphisms (`jnas.morphism`) to the incumbent, trains
every child briefly *from its inherited weights*, and keeps the best child by validation
accuracy. `inherit=False` trains the same children from scratch for the same epochs, the
baseline at equal compute.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
from flax import nnx

from jnas import morphism
from jnas._checks import check_positive
from jnas.data import Split
from jnas.spaces import Sequential
from jnas.train._train import TrainConfig, evaluate, train


def random_morphism(
    key: jax.Array, space: Sequential, arch: Any, model: Any, **build: Any
) -> tuple[Any, Any, str]:
    """One morphism drawn uniformly among those the architecture and the space allow
    (widen a conv / FC layer to a larger width of the space, insert an identity layer, grow
    a conv kernel); returns (arch, model, what was done)."""
    layers = space.layers(arch)
    options: list[tuple[str, Any]] = []
    for i, t in enumerate(layers):
        if t[0] == "conv":
            options += [("widen", (i, w)) for w in space.conv_filters if w > t[2]]
            options += [("grow_kernel", (i, k)) for k in space.conv_kernels if k > t[1] and k % 2]
            options += [("deepen", (i, k)) for k in space.conv_kernels if k % 2]
        elif t[0] == "fc":
            options += [("widen", (i, u)) for u in space.fc_units if u > t[1]]
            options.append(("deepen", (i, 0)))
        elif t[0] == "pool" and i > 0:
            options += [("deepen", (i, k)) for k in space.conv_kernels if k % 2]
    k_order, k_widen = jax.random.split(key)
    order = np.asarray(jax.random.permutation(k_order, len(options)))
    for j in order.tolist():
        name, (i, v) = options[j]
        try:
            if name == "widen":
                new_arch, new = morphism.widen(k_widen, space, arch, model, i, v, **build)
            elif name == "grow_kernel":
                new_arch, new = morphism.grow_kernel(space, arch, model, i, v, **build)
            else:
                kw = {"kernel": v} if v else {}
                new_arch, new = morphism.deepen(space, arch, model, i, **kw, **build)
        except ValueError:  # the space's rules forbid it (depth, FC count, sizes): next
            continue
        return new_arch, new, f"{name} layer {i} ({v})"
    raise ValueError(f"random_morphism: no morphism of {space.to_string(arch)} fits the space")


def nash(
    key: jax.Array,
    space: Sequential,
    arch: Any,
    data: dict[str, Split],
    *,
    steps: int = 5,
    children: int = 4,
    max_morphisms: int = 3,
    parent_config: TrainConfig,
    child_config: TrainConfig,
    inherit: bool = True,
    **build: Any,
) -> list[dict]:
    """NASH hill climbing from `arch` on `data["train"]`, scored on `data["valid"]`; one record
    per step: the incumbent, its validation and test accuracy and the epochs trained so far
    (compute). The parent is trained with `parent_config`, every child with `child_config`."""
    check_positive("nash", steps=steps, children=children, max_morphisms=max_morphisms)
    k_parent, k_steps = jax.random.split(key)
    model = space.build(
        arch, rngs=nnx.Rngs(int(jax.random.randint(k_parent, (), 0, 2**30))), **build
    )
    model, _ = train(model, k_parent, data["train"], parent_config)
    epochs = parent_config.epochs
    best_acc = evaluate(model, data["valid"])["acc"]
    history = [
        {
            "step": 0,
            "arch": space.to_string(arch),
            "valid_acc": best_acc,
            "test_acc": evaluate(model, data["test"])["acc"],
            "epochs": epochs,
        }
    ]
    for step in range(1, steps + 1):
        k_step = jax.random.fold_in(k_steps, step)
        best = None
        for c in range(children):
            k_child = jax.random.fold_in(k_step, c)
            k_n, k_m, k_train = jax.random.split(k_child, 3)
            n = int(jax.random.randint(k_n, (), 1, max_morphisms + 1))
            child_arch, child, done = arch, model, []
            for m in range(n):
                child_arch, child, what = random_morphism(
                    jax.random.fold_in(k_m, m), space, child_arch, child, **build
                )
                done.append(what)
            if not inherit:  # the same architecture, trained from scratch
                seed = int(jax.random.randint(k_train, (), 0, 2**30))
                child = space.build(child_arch, rngs=nnx.Rngs(seed), **build)
            child, _ = train(child, k_train, data["train"], child_config)
            epochs += child_config.epochs
            acc = evaluate(child, data["valid"])["acc"]
            if best is None or acc > best[0]:
                best = (acc, child_arch, child, done)
        assert best is not None
        if best[0] >= best_acc:  # hill climbing: keep the incumbent unless a child is better
            best_acc, arch, model = best[0], best[1], best[2]
        history.append(
            {
                "step": step,
                "arch": space.to_string(arch),
                "valid_acc": best_acc,
                "test_acc": evaluate(model, data["test"])["acc"],
                "epochs": epochs,
                "morphisms": best[3],
            }
        )
    return history
