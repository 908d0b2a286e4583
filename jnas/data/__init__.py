"""Datasets as device-ready arrays: bundled digits, Omniglot zips, TFDS (offline), splits,
augmentation; and host sources streamed to the device for data that does not fit."""

from jnas.data._arrays import (
    Split,
    batch_indices,
    channel_stats,
    normalize,
    random_crop_flip,
    stratified_halves,
    upsample,
)
from jnas.data._digits import digit_arrays, digits
from jnas.data._omniglot import (
    ClassImages,
    class_images,
    omniglot,
    omniglot_alphabets,
    omniglot_image,
    omniglot_tfds,
)
from jnas.data._stream import ArraySource, HostSource, chunks, stream
from jnas.data._text import (
    WORD_FILES,
    TextCorpus,
    bptt_batches,
    char_corpus,
    python_corpus,
    text_file_corpus,
    word_corpus,
)
from jnas.data._tfds import (
    TFDS_NAMES,
    TFDS_TEXT_NAMES,
    DatasetNotPrepared,
    TFDSSource,
    load_dataset,
    nb201_splits,
    tfds_arrays,
    tfds_text_corpus,
)

__all__ = [
    "TFDS_NAMES",
    "TFDS_TEXT_NAMES",
    "WORD_FILES",
    "ArraySource",
    "ClassImages",
    "DatasetNotPrepared",
    "HostSource",
    "Split",
    "TFDSSource",
    "TextCorpus",
    "batch_indices",
    "bptt_batches",
    "channel_stats",
    "char_corpus",
    "chunks",
    "class_images",
    "digit_arrays",
    "digits",
    "load_dataset",
    "nb201_splits",
    "normalize",
    "omniglot",
    "omniglot_alphabets",
    "omniglot_image",
    "omniglot_tfds",
    "python_corpus",
    "random_crop_flip",
    "stratified_halves",
    "stream",
    "text_file_corpus",
    "tfds_arrays",
    "tfds_text_corpus",
    "upsample",
    "word_corpus",
]
