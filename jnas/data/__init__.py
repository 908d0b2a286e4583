"""Datasets as device-ready arrays: bundled digits, TFDS (offline), splits, augmentation."""

from jnas.data._arrays import (
    Split,
    batch_indices,
    channel_stats,
    normalize,
    random_crop_flip,
    stratified_halves,
    upsample,
)
from jnas.data._digits import digits
from jnas.data._tfds import (
    TFDS_NAMES,
    DatasetNotPrepared,
    load_dataset,
    nb201_splits,
    tfds_arrays,
)

__all__ = [
    "TFDS_NAMES",
    "DatasetNotPrepared",
    "Split",
    "batch_indices",
    "channel_stats",
    "digits",
    "load_dataset",
    "nb201_splits",
    "normalize",
    "random_crop_flip",
    "stratified_halves",
    "tfds_arrays",
    "upsample",
]
