"""The Weisfeiler-Lehman subtree kernel on labelled cells (Shervashidze et al., JMLR 2011;
for NAS: Ru et al., "Interpretable Neural Architecture Search via Bayesian Optimisation
with Weisfeiler-Lehman Kernels", ICLR 2021).

A cell is a DAG with an op label on every node (`space.adjacency(arch)`). Iteration 0
labels a node by its op; iteration h relabels it by (its label, the sorted multiset of its
in-neighbours' labels), as NAS-BOWL does along the data flow. Labels are hashed to 24-bit
integers (exact in float32, so the features live in the float32 buffers of the SMBO
history; distinct labels collide with probability 2^-24), and the kernel counts pairs of
equal labels at equal iteration:
    k(G, G') = sum_h sum_{u in G, v in G'} [l_h(u) = l_h(v)],
normalised to k / sqrt(k(G, G) k(G', G')). Nodes without edges (pruned ones) are left out.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from jnas._hash import mix32

_ABSENT = -1.0  # the label of a node that is not in the graph


def wl_features(matrix: jax.Array, ops: jax.Array, iterations: int = 2) -> jax.Array:
    """float32[(iterations + 1) * V]: every node's hashed WL label at each iteration
    (`-1` for nodes outside the graph). `matrix[i, j] = 1` for an edge i -> j."""
    matrix = jnp.asarray(matrix) > 0
    v = matrix.shape[0]
    present = jnp.any(matrix, 0) | jnp.any(matrix, 1)
    sentinel = jnp.uint32(0xFFFFFFFF)
    labels = mix32(jnp.asarray(ops).astype(jnp.uint32) + jnp.uint32(0x9E3779B9))
    out = [labels]
    for h in range(1, iterations + 1):
        # row j: the labels of j's in-neighbours, sorted (the multiset), sentinel elsewhere
        neighbours = jnp.sort(
            jnp.where(matrix.T & present[None, :], labels[None, :], sentinel), axis=1
        )
        acc = mix32(labels ^ mix32(jnp.uint32(h)))
        for k in range(v):
            acc = mix32(acc * jnp.uint32(31) + neighbours[:, k])
        labels = acc
        out.append(labels)
    hashed = jnp.stack(out) >> 8  # 24 bits: exact in float32
    return jnp.where(present[None, :], hashed.astype(jnp.float32), _ABSENT).reshape(-1)


def wl_kernel(num_nodes: int) -> Callable[[jax.Array, jax.Array], jax.Array]:
    """`k(a[N, F], b[M, F]) -> float32[N, M]`: the normalised WL kernel of feature rows
    from `wl_features` of cells with `num_nodes` nodes."""

    def raw(a: jax.Array, b: jax.Array) -> jax.Array:
        a = a.reshape(a.shape[0], -1, num_nodes)
        b = b.reshape(b.shape[0], -1, num_nodes)
        same = (a[:, None, :, :, None] == b[None, :, :, None, :]) & (
            a[:, None, :, :, None] != _ABSENT
        )
        return jnp.sum(same, axis=(2, 3, 4)).astype(jnp.float32)

    def self_raw(a: jax.Array) -> jax.Array:
        a = a.reshape(a.shape[0], -1, num_nodes)
        same = (a[:, :, :, None] == a[:, :, None, :]) & (a[:, :, :, None] != _ABSENT)
        return jnp.sum(same, axis=(1, 2, 3)).astype(jnp.float32)

    def kernel(a: jax.Array, b: jax.Array) -> jax.Array:
        norm = jnp.sqrt(jnp.maximum(self_raw(a)[:, None] * self_raw(b)[None, :], 1.0))
        return raw(a, b) / norm

    return kernel


def wl_distance(num_nodes: int) -> Callable[[jax.Array, jax.Array], jax.Array]:
    """`d(a, b) = 1 - k(a, b)` in [0, 1] for the GP's `exp(-d / lengthscale)` kernel
    (an exponential of a PSD kernel, so PSD)."""
    kernel = wl_kernel(num_nodes)
    return lambda a, b: 1.0 - kernel(a, b)
