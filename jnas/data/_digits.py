"""scikit-learn's bundled digits: 1,797 real 8x8 handwritten digits, no download needed."""

from __future__ import annotations

import gzip
import pathlib

import jax
import numpy as np

from jnas.data._arrays import (
    Split,
    channel_stats,
    normalize,
    stratified_halves,
    upsample,
)


def digit_arrays() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits as (pixels (1797, 64) float64 in 0..16, labels (1797,) int32),
    read from the CSV file scikit-learn ships, without importing scikit-learn: its import
    (SciPy's with it) is ~3 s of every `jnas` process that touches the digits, longer than
    the tiny runs themselves. The same file `sklearn.datasets.load_digits` reads."""
    import importlib.util

    spec = importlib.util.find_spec("sklearn")  # locates the package; runs none of it
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("the digits ship with scikit-learn: pip install scikit-learn")
    path = pathlib.Path(spec.submodule_search_locations[0]) / "datasets" / "data"
    with gzip.open(path / "digits.csv.gz", "rt") as f:
        data = np.loadtxt(f, delimiter=",")
    return data[:, :-1], data[:, -1].astype(np.int32)


def digits(
    key: jax.Array, *, size: int = 16, channels: int = 3, test_fraction: float = 0.25
) -> dict[str, Split]:
    """The digits as `train` / `valid` / `test` splits plus `train_full` (train + valid).

    The test split is a class-stratified `test_fraction` of the images; the rest is halved
    into `train` and `valid` (the one-shot search split, like NB201's CIFAR-10 25k/25k) and
    `train_full` is both halves (the final-training split). Images are up-sampled from 8x8
    to `size` x `size` (a multiple of 8) and repeated to `channels` channels, so the NB201
    and DARTS networks take them as they take CIFAR; normalised with the train_full
    statistics. The split is a pure function of `key`.
    """
    if size % 8 or size < 8:
        raise ValueError(f"digits: `size` must be a positive multiple of 8; got {size}")
    if channels not in (1, 3):
        raise ValueError(f"digits: `channels` must be 1 or 3; got {channels}")
    if not 0 < test_fraction < 1:
        raise ValueError(f"digits: `test_fraction` must be in (0, 1); got {test_fraction}")
    pixels, y = digit_arrays()
    x = pixels.reshape(-1, 8, 8, 1).astype(np.float32) / 16.0
    x = np.repeat(upsample(x, size // 8), channels, axis=-1)
    k_test, k_half = jax.random.split(key)
    test_idx, rest = _stratified_fraction(k_test, y, test_fraction)
    half_a, half_b = stratified_halves(k_half, y[rest])
    train_idx, valid_idx = rest[half_a], rest[half_b]
    full_idx = np.sort(np.concatenate([train_idx, valid_idx]))
    mean, std = channel_stats(x[full_idx])
    x = normalize(x, mean, std)
    return {
        # host (NumPy) arrays: the caller moves them to the device
        name: Split(x[idx], y[idx])  # pyright: ignore[reportArgumentType]
        for name, idx in (
            ("train", train_idx),
            ("valid", valid_idx),
            ("train_full", full_idx),
            ("test", test_idx),
        )
    }


def _stratified_fraction(
    key: jax.Array, y: np.ndarray, fraction: float
) -> tuple[np.ndarray, np.ndarray]:
    perm = np.asarray(jax.random.permutation(key, len(y)))
    chosen, rest = [], []
    for c in np.unique(y):
        members = perm[y[perm] == c]
        k = round(fraction * len(members))
        chosen.append(members[:k])
        rest.append(members[k:])
    return np.sort(np.concatenate(chosen)), np.sort(np.concatenate(rest))
