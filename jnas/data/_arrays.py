"""Labelled image arrays, their splits, normalisation and augmentation.

Images are NHWC float32 after `normalize`; labels int32. Everything that draws randomness
takes an explicit key and is jittable, so an epoch of augmented batches is one `lax.scan`.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array | np.ndarray  # a split lives on the device or, loaded, on the host


class Split(NamedTuple):
    """One split of a labelled image dataset: `x` float32[N, H, W, C], `y` int32[N], on the
    device or on the host (NumPy, as the loaders give them)."""

    x: Array
    y: Array


def _check_split(where: str, x: np.ndarray, y: np.ndarray) -> None:
    if x.ndim != 4:
        raise ValueError(f"{where}: images must be NHWC (4-D); got shape {x.shape}")
    if y.shape != (x.shape[0],):
        raise ValueError(f"{where}: labels must have shape ({x.shape[0]},); got {y.shape}")


def normalize(x: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """(x - mean) / std per channel, as float32."""
    return ((np.asarray(x, np.float32) - mean) / std).astype(np.float32)


def channel_stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and standard deviation of NHWC images (of the training split)."""
    x = np.asarray(x, np.float64)
    return x.mean(axis=(0, 1, 2)).astype(np.float32), x.std(axis=(0, 1, 2)).astype(np.float32)


def stratified_halves(key: jax.Array, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two disjoint index sets with (as near as possible) half of each class in each.

    NB201's search split (CIFAR-10 train 25k/25k) and its valid/test halves of the
    CIFAR-100 and ImageNet16 test sets are class-balanced halves; the authors' index
    files are not redistributable offline, so jnas draws the halves from `key`.
    """
    y = np.asarray(y)
    perm = np.asarray(jax.random.permutation(key, len(y)))
    first, second = [], []
    for c in np.unique(y):
        members = perm[y[perm] == c]
        first.append(members[: (len(members) + 1) // 2])
        second.append(members[(len(members) + 1) // 2 :])
    return np.sort(np.concatenate(first)), np.sort(np.concatenate(second))


def random_crop_flip(key: jax.Array, x: jax.Array, pad: int = 4) -> jax.Array:
    """Random crop after zero padding by `pad` and random horizontal flip, per image.

    The CIFAR augmentation of NB201 and DARTS; a pure function of `key`.
    """
    n, h, w, _ = x.shape
    k_crop, k_flip = jax.random.split(key)
    offsets = jax.random.randint(k_crop, (n, 2), 0, 2 * pad + 1)
    flips = jax.random.bernoulli(k_flip, 0.5, (n,))
    padded = jnp.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))

    def one(img, off, flip):
        img = jax.lax.dynamic_slice(img, (off[0], off[1], 0), (h, w, img.shape[-1]))
        return jnp.where(flip, img[:, ::-1], img)

    return jax.vmap(one)(padded, offsets, flips)


def batch_indices(key: jax.Array, n: int, batch_size: int) -> jax.Array:
    """int32[n // batch_size, batch_size]: one epoch of shuffled batches (remainder dropped)."""
    if batch_size > n:
        raise ValueError(f"batch_indices: `batch_size` {batch_size} exceeds the {n} examples")
    steps = n // batch_size
    return jax.random.permutation(key, n)[: steps * batch_size].reshape(steps, batch_size)


def upsample(x: np.ndarray, factor: int) -> np.ndarray:
    """Nearest-neighbour up-sampling of NHWC images by an integer factor."""
    return np.repeat(np.repeat(x, factor, axis=1), factor, axis=2)
