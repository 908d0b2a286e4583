"""TFDS datasets read through `tfds.data_source` (array_record; no TensorFlow needed)."""

from __future__ import annotations

import os
from typing import Any, cast

import jax
import numpy as np

from jnas.data._arrays import Split, channel_stats, normalize, stratified_halves
from jnas.data._text import TextCorpus, word_corpus

# NB201's datasets and the splits the benchmark reports on.
TFDS_NAMES = {
    "cifar10": "cifar10",
    "cifar100": "cifar100",
    "mnist": "mnist",
    "fashion_mnist": "fashion_mnist",
    "svhn": "svhn_cropped",
    "svhn_cropped": "svhn_cropped",
    "omniglot": "omniglot",
    "imagenet16": "imagenet_resized/16x16",
    "imagenet_resized/16x16": "imagenet_resized/16x16",
}


# TFDS's text datasets for language models (4.9 has no `ptb` / `wikitext` builder; those are
# read from their own files: `jnas.data.text_file_corpus`), with their (train, valid, test)
TFDS_TEXT_NAMES = {"lm1b": ("train", "test", "test")}  # lm1b has no validation split


class DatasetNotPrepared(FileNotFoundError):
    """A TFDS dataset is not prepared in the searched `data_dir`."""


def default_tfds_dir() -> str:
    return os.environ.get("TFDS_DATA_DIR", os.path.expanduser("~/tensorflow_datasets"))


def _open(
    where: str, name: str, split: str, data_dir: str | None, names: Any = None
) -> tuple[Any, str]:
    """The `tfds.data_source` of a prepared split, or `DatasetNotPrepared` saying how to
    prepare it (`names`: jnas's names -> TFDS's, `TFDS_NAMES` by default)."""
    names = TFDS_NAMES if names is None else names
    try:
        import tensorflow_datasets as tfds
    except ImportError:
        raise ImportError(
            f"{where}: the TFDS data path needs tensorflow-datasets: pip install 'jnas[tfds]'"
        ) from None

    if name not in names:
        raise ValueError(
            f"{where}: unknown dataset `name` {name!r}; expected one of {', '.join(sorted(names))}"
        )
    tfds_name = names[name] if isinstance(names[name], str) else name
    data_dir = data_dir or default_tfds_dir()
    try:
        source = tfds.data_source(tfds_name, split=split, data_dir=data_dir, download=False)
        size = len(source)
        if size:
            cast(Any, source)[0]  # reading one record finds a wrong format early
    except Exception as e:  # tfds raises several types for "not there" and "wrong format"
        raise DatasetNotPrepared(
            f"TFDS dataset {tfds_name!r} (split {split!r}) is not prepared in {data_dir!r} "
            f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}). Prepare it "
            f"once on a machine with internet: `tfds build {tfds_name} "
            f"--file_format=array_record --data_dir {data_dir}` and copy the folder here, "
            "or set TFDS_DATA_DIR / pass data_dir."
        ) from e
    if not size:
        raise DatasetNotPrepared(f"TFDS split {tfds_name}:{split} in {data_dir!r} is empty")
    return source, tfds_name


def _decode(records: list[dict], image_key: str, label_key: str) -> tuple[np.ndarray, np.ndarray]:
    x = np.stack([np.asarray(r[image_key]) for r in records])
    if x.ndim == 3:
        x = x[..., None]
    return x, np.asarray([r[label_key] for r in records], np.int32)


def tfds_text_corpus(
    name: str = "lm1b",
    *,
    data_dir: str | None = None,
    text_key: str = "text",
    max_records: int | None = None,
) -> TextCorpus:
    """A word-level corpus (`word_corpus`: words, `<eos>` per record, one vocabulary) from
    a prepared TFDS text dataset read through `tfds.data_source` (no download), one record
    a line. Its (train, valid, test) splits are `TFDS_TEXT_NAMES[name]`; where valid and
    test name the same split (lm1b has none for validation) its first half of records is
    valid, the second test. `max_records`: at most that many records per TFDS split, the
    first ones (lm1b's train holds 30M sentences)."""
    if name not in TFDS_TEXT_NAMES:
        raise ValueError(
            f"tfds_text_corpus: unknown dataset `name` {name!r}; expected one of "
            f"{', '.join(sorted(TFDS_TEXT_NAMES))} (PTB / WikiText: `text_file_corpus`)"
        )
    if max_records is not None and (not isinstance(max_records, int) or max_records < 2):
        raise ValueError(
            f"tfds_text_corpus: `max_records` must be an int >= 2; got {max_records!r}"
        )
    train, valid, test = TFDS_TEXT_NAMES[name]
    lines: dict[str, list[str]] = {}
    for split in dict.fromkeys((train, valid, test)):
        source, _ = _open("tfds_text_corpus", name, split, data_dir, TFDS_TEXT_NAMES)
        count = len(source) if max_records is None else min(len(source), max_records)
        texts = (source[i][text_key] for i in range(count))
        lines[split] = [t.decode("utf-8") if isinstance(t, bytes) else str(t) for t in texts]
    if valid == test:
        half = len(lines[valid]) // 2
        parts = {"valid": lines[valid][:half], "test": lines[valid][half:]}
    else:
        parts = {"valid": lines[valid], "test": lines[test]}
    return word_corpus({"train": lines[train], **parts}, source=f"TFDS {name}")


def tfds_arrays(
    name: str,
    split: str,
    *,
    data_dir: str | None = None,
    image_key: str = "image",
    label_key: str = "label",
) -> tuple[np.ndarray, np.ndarray]:
    """All (images uint8[N,H,W,C], labels int32[N]) of a prepared TFDS split.

    Reads with `tfds.data_source(..., download=False)`: nothing is downloaded. A dataset
    that is not prepared raises `DatasetNotPrepared` naming the directory searched and
    how to prepare it.
    """
    source, _ = _open("tfds_arrays", name, split, data_dir)
    return _decode([source[i] for i in range(len(source))], image_key, label_key)


class TFDSSource:
    """A prepared TFDS split as a `HostSource`: records are read and decoded per batch,
    so the dataset never has to fit in memory. Images become float32 in [0, 1], then
    `(x - mean) / std` per channel when `mean` and `std` are given (use the training
    split's statistics)."""

    def __init__(
        self,
        name: str,
        split: str,
        *,
        data_dir: str | None = None,
        mean: np.ndarray | None = None,
        std: np.ndarray | None = None,
        image_key: str = "image",
        label_key: str = "label",
    ) -> None:
        if (mean is None) != (std is None):
            raise ValueError("TFDSSource: give both `mean` and `std`, or neither")
        self._source, self.name = _open("TFDSSource", name, split, data_dir)
        self.split, self.mean, self.std = split, mean, std
        self._keys = (image_key, label_key)

    def __len__(self) -> int:
        return len(self._source)

    def batch(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x, y = _decode([self._source[int(i)] for i in indices], *self._keys)
        x = x.astype(np.float32) / 255.0
        if self.mean is not None and self.std is not None:  # both or neither (`__init__`)
            x = normalize(x, self.mean, self.std)
        return x, y


def nb201_splits(
    name: str, key: jax.Array, *, data_dir: str | None = None, num_classes: int | None = None
) -> dict[str, Split]:
    """A dataset split as NB201 uses it, normalised with the training statistics.

    - `train` / `valid`: class-balanced halves of the training set (CIFAR-10's 25k/25k
      search split; for every dataset the one-shot search split);
    - `train_full`: the whole training set (final training);
    - `test`, and for datasets other than CIFAR-10 `x-valid` / `x-test`: the halves of the
      test set NB201 reports CIFAR-100 and ImageNet16-120 on.
    `num_classes` keeps the first classes only (ImageNet16-120: 120).
    """
    x_tr, y_tr = tfds_arrays(name, "train", data_dir=data_dir)
    test_split = "validation" if TFDS_NAMES[name].startswith("imagenet") else "test"
    x_te, y_te = tfds_arrays(name, test_split, data_dir=data_dir)
    if num_classes is not None:
        keep_tr, keep_te = y_tr < num_classes, y_te < num_classes
        x_tr, y_tr, x_te, y_te = x_tr[keep_tr], y_tr[keep_tr], x_te[keep_te], y_te[keep_te]
    mean, std = channel_stats(x_tr.astype(np.float32) / 255.0)
    x_tr = normalize(x_tr.astype(np.float32) / 255.0, mean, std)
    x_te = normalize(x_te.astype(np.float32) / 255.0, mean, std)
    k_train, k_test = jax.random.split(key)
    a, b = stratified_halves(k_train, y_tr)
    out = {
        "train": Split(x_tr[a], y_tr[a]),
        "valid": Split(x_tr[b], y_tr[b]),
        "train_full": Split(x_tr, y_tr),
        "test": Split(x_te, y_te),
    }
    if name != "cifar10":
        c, d = stratified_halves(k_test, y_te)
        out["x-valid"], out["x-test"] = Split(x_te[c], y_te[c]), Split(x_te[d], y_te[d])
    return out


def load_dataset(name: str, key: jax.Array, *, data_dir: str | None = None) -> dict[str, Split]:
    """Splits of a dataset by name: `digits` (bundled, no download) or a TFDS dataset with
    NB201's splits (`cifar10`, `cifar100`, `imagenet16` = the first 120 classes, ...)."""
    if name == "digits":
        from jnas.data._digits import digits

        return digits(key)
    if name not in TFDS_NAMES:
        raise ValueError(
            f"unknown dataset {name!r}; expected 'digits' or one of {', '.join(sorted(TFDS_NAMES))}"
        )
    classes = 120 if TFDS_NAMES[name].startswith("imagenet") else None
    return nb201_splits(name, key, data_dir=data_dir, num_classes=classes)
