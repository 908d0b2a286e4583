"""Datasets as device-ready arrays: bundled digits, Omniglot zips, TFDS (offline), splits,
augmentation."""

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
from jnas.data._omniglot import (
    ClassImages,
    class_images,
    omniglot,
    omniglot_alphabets,
    omniglot_tfds,
)
from jnas.data._tfds import (
    TFDS_NAMES,
    DatasetNotPrepared,
    load_dataset,
    nb201_splits,
    tfds_arrays,
)

__all__ = [
    "TFDS_NAMES",
    "ClassImages",
    "DatasetNotPrepared",
    "Split",
    "batch_indices",
    "channel_stats",
    "class_images",
    "digits",
    "load_dataset",
    "nb201_splits",
    "normalize",
    "omniglot",
    "omniglot_alphabets",
    "omniglot_tfds",
    "random_crop_flip",
    "stratified_halves",
    "tfds_arrays",
    "upsample",
]
