"""SMASH: one-shot model architecture search through hypernetworks (Brock, Lim, Ritchie &
Weston, ICLR 2018).

A hypernetwork H maps an architecture's encoding c to the weights of that architecture;
each step trains H on a uniformly sampled architecture with its generated weights, and
afterwards architectures are ranked by validation accuracy with the weights H generates
for them (the paper's correlation of SMASH score with trained accuracy).

jnas' hypernetwork works for the supernet of any space (`hypernetwork(net, shape)`): c is
the supernet's op weights (one-hot [E, K] for a discrete architecture, for the memory-bank
space exactly SMASH's read / write / op encoding), e = MLP(c) an embedding of `embedding`
dimensions, and every kernel (every parameter of two or more dimensions) is generated as

    W(c) = W0 + sum_d e_d U_d,

a low-rank, architecture-conditioned generator: with U = 0 it is the shared weights of
random search with weight sharing, so SMASH starts there (U = 0 at initialisation) and
learns what each architecture needs beyond them. Biases and normalisation parameters stay
shared. Deviation from the paper: SMASH's hypernetwork is a convolutional network emitting
weight slices from a spatial encoding tensor and has no shared W0; this one is a dense
generator over the flat encoding, the form that applies to every space of jnas.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax

from jnas._checks import check_positive
from jnas.oneshot._base import OneShot, SharedWeightsState, Supernet
from jnas.oneshot._bilevel import weight_sharing
from jnas.oneshot._relaxations import uniform_path_relaxation
from jnas.oneshot._rsws_spos_dropout import random_candidates_derive


def _generated(leaf: Any) -> bool:
    return jnp.issubdtype(leaf.dtype, jnp.floating) and leaf.ndim >= 2


def hypernetwork(
    net: Supernet, shape: tuple[int, int], *, embedding: int = 32, hidden: int = 64
) -> Supernet:
    """A supernet whose parameters are a hypernetwork's: `apply(params, x, weights, index)`
    generates `net`'s kernels from `weights` (float[E, K], the architecture encoding) and
    runs `net` with them. `params` = {"base": W0 and the shared parameters, "mlp": the
    encoder, "up": U per generated kernel, float[embedding, *kernel.shape]}."""
    check_positive("hypernetwork", embedding=embedding, hidden=hidden)
    slots, k = shape
    fan_in = slots * k

    def init_params(key: jax.Array) -> dict:
        k_base, k1, k2 = jax.random.split(key, 3)
        base = net.init_params(k_base)
        mlp = {
            "w1": jax.random.normal(k1, (fan_in, hidden)) / jnp.sqrt(fan_in),
            "b1": jnp.zeros((hidden,)),
            "w2": jax.random.normal(k2, (hidden, embedding)) / jnp.sqrt(hidden),
            "b2": jnp.zeros((embedding,)),
        }
        up = jax.tree.map(
            lambda w: jnp.zeros((embedding, *w.shape), w.dtype) if _generated(w) else None,
            base,
        )
        return {"base": base, "mlp": mlp, "up": up}

    def apply(
        params: dict, x: jax.Array, weights: jax.Array, index: jax.Array | None = None
    ) -> jax.Array:
        return net.apply(generate(params, weights), x, weights, index)

    return Supernet(init_params, apply)


def generate(params: dict, weights: jax.Array) -> Any:
    """The supernet parameters a `hypernetwork`'s `params` generate for the architecture
    encoding `weights` (float[E, K])."""
    mlp = params["mlp"]
    c = weights.reshape(-1).astype(mlp["w1"].dtype)
    e = jnp.tanh(c @ mlp["w1"] + mlp["b1"]) @ mlp["w2"] + mlp["b2"]
    return jax.tree.map(
        lambda w, u: w if u is None else w + jnp.tensordot(e.astype(u.dtype), u, 1),
        params["base"],
        params["up"],
    )


def smash(
    space: Any,
    *,
    embedding: int = 32,
    hidden: int = 64,
    epochs: int = 50,
    steps_per_epoch: int = 391,
    num_candidates: int = 100,
    w_lr: optax.ScalarOrSchedule | None = None,
    w_optimizer: optax.GradientTransformation | None = None,
    **supernet: Any,
) -> OneShot[SharedWeightsState]:
    """SMASH on `space`'s supernet: each step trains the hypernetwork on one uniform
    architecture with the weights it generates for it; `derive(state, key, batch)` picks
    the best of `num_candidates` random architectures by accuracy on `batch` with their
    generated weights (`apply(state.params, x, weights, index)` scores any other set)."""
    check_positive("smash", num_candidates=num_candidates)
    return weight_sharing(
        space,
        uniform_path_relaxation(space),
        random_candidates_derive(space, num_candidates, "smash"),
        name="smash",
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        w_lr=w_lr,
        w_optimizer=w_optimizer,
        wrap=lambda net: hypernetwork(
            net, tuple(space.supernet_shape), embedding=embedding, hidden=hidden
        ),
        **supernet,
    )
