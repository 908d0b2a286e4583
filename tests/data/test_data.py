"""Datasets: the digits splits, TFDS through data_source (mock data), augmentation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jnas import data


def test_digits_splits_are_disjoint_stratified_and_normalised(key):
    splits = data.digits(key)
    sizes = {k: len(v.y) for k, v in splits.items()}
    assert sizes["train"] + sizes["valid"] + sizes["test"] == 1797
    assert sizes["train_full"] == sizes["train"] + sizes["valid"]
    assert abs(sizes["train"] - sizes["valid"]) <= 10
    assert splits["train"].x.shape[1:] == (16, 16, 3)
    flat = {
        k: {v.x[i].tobytes() + bytes([v.y[i]]) for i in range(len(v.y))} for k, v in splits.items()
    }
    assert not flat["train"] & flat["test"]
    assert not flat["valid"] & flat["test"]
    for name in ("train", "valid", "test"):  # every class in every split, near its share
        counts = np.bincount(splits[name].y, minlength=10)
        assert counts.min() >= 0.8 * counts.mean()
    full = splits["train_full"].x
    np.testing.assert_allclose(full.mean(axis=(0, 1, 2)), 0, atol=1e-5)
    np.testing.assert_allclose(full.std(axis=(0, 1, 2), dtype=np.float64), 1, atol=1e-5)


def test_digit_arrays_are_scikit_learns_digits_without_importing_it():
    """Read from the file scikit-learn ships, equal to its own loader's arrays, and with
    no scikit-learn (nor SciPy) module imported on the way (checked in a fresh process)."""
    import subprocess
    import sys

    from sklearn.datasets import load_digits

    pixels, labels = data.digit_arrays()
    want_x, want_y = load_digits(return_X_y=True)
    np.testing.assert_array_equal(pixels, want_x)
    np.testing.assert_array_equal(labels, want_y)
    assert pixels.shape == (1797, 64)
    assert labels.dtype == np.int32
    code = (
        "import sys; from jnas.data._digits import digit_arrays; digit_arrays(); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('sklearn', 'scipy')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_digits_same_key_same_split_and_bad_args(key):
    a, b = data.digits(key), data.digits(key)
    c = data.digits(jax.random.key(1))
    np.testing.assert_array_equal(a["test"].y, b["test"].y)
    assert not np.array_equal(a["train"].x, c["train"].x)
    with pytest.raises(ValueError, match="size"):
        data.digits(key, size=12)
    with pytest.raises(ValueError, match="channels"):
        data.digits(key, channels=2)


def test_stratified_halves_cover_every_index_once(key):
    y = np.repeat(np.arange(5), [7, 8, 9, 10, 11])
    a, b = data.stratified_halves(key, y)
    np.testing.assert_array_equal(np.sort(np.concatenate([a, b])), np.arange(len(y)))
    assert np.all(np.abs(np.bincount(y[a]) - np.bincount(y[b])) <= 1)


def test_batch_indices_is_a_permutation_prefix(key):
    idx = np.asarray(data.batch_indices(key, 103, 10))
    assert idx.shape == (10, 10)
    assert len(set(idx.ravel())) == 100
    with pytest.raises(ValueError, match="batch_size"):
        data.batch_indices(key, 5, 10)


def test_random_crop_flip_is_a_pure_function_of_the_key_and_crops(key):
    x = jax.random.normal(jax.random.key(3), (6, 8, 8, 2))
    a, b = data.random_crop_flip(key, x), data.random_crop_flip(key, x)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, data.random_crop_flip(jax.random.key(9), x))
    assert jnp.allclose(jax.jit(data.random_crop_flip)(key, x), a)
    # each output is a crop of the zero-padded input, possibly mirrored
    padded = np.pad(np.asarray(x), ((0, 0), (4, 4), (4, 4), (0, 0)))
    for n in range(6):
        out = np.asarray(a[n])
        hits = [
            (i, j, f)
            for i in range(9)
            for j in range(9)
            for f in (False, True)
            if np.array_equal(
                out, (lambda c: c[:, ::-1] if f else c)(padded[n, i : i + 8, j : j + 8])
            )
        ]
        assert hits, f"image {n} is not a crop of its padded input"


def test_tfds_arrays_read_mock_data_through_data_source():
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=12):
        x, y = data.tfds_arrays("mnist", "train")
        splits = data.nb201_splits("cifar100", jax.random.key(0), num_classes=120)
    assert x.shape == (12, 28, 28, 1)
    assert x.dtype == np.uint8
    assert y.dtype == np.int32
    assert set(splits) == {"train", "valid", "train_full", "test", "x-valid", "x-test"}
    assert len(splits["train"].y) + len(splits["valid"].y) == len(splits["train_full"].y)
    assert len(splits["x-valid"].y) + len(splits["x-test"].y) == len(splits["test"].y)
    assert splits["train"].x.dtype == np.float32


def test_unprepared_tfds_dataset_names_the_directory(tmp_path):
    with pytest.raises(data.DatasetNotPrepared, match=str(tmp_path)) as info:
        data.tfds_arrays("cifar10", "train", data_dir=str(tmp_path))
    assert "tfds build cifar10" in str(info.value)
    with pytest.raises(ValueError, match="unknown dataset"):
        data.tfds_arrays("cifar11", "train")


def test_stream_yields_the_batches_of_batch_indices_in_order(key):
    x = np.arange(50 * 2 * 2 * 1, dtype=np.float32).reshape(50, 2, 2, 1)
    y = np.arange(50, dtype=np.int32)
    source = data.ArraySource(x, y)
    order = np.asarray(data.batch_indices(key, 50, 8))
    batches = list(data.stream(source, key, 8, prefetch=3))
    assert len(batches) == len(order) == 6  # the remainder of 2 is dropped
    for batch, idx in zip(batches, order, strict=True):
        assert isinstance(batch.x, jax.Array)
        np.testing.assert_array_equal(batch.y, idx)
        np.testing.assert_array_equal(batch.x, x[idx])
    # a device-resident Split streams the same batches
    same = list(data.stream(data.Split(x, y), key, 8, prefetch=1))
    np.testing.assert_array_equal(np.stack([b.y for b in same]), order)
    chunked = list(data.chunks(source, 16))
    assert [len(c[1]) for c in chunked] == [16, 16, 16, 2]
    np.testing.assert_array_equal(np.concatenate([c[1] for c in chunked]), y)


class _Meeting:
    """A source whose batches wait (up to 10 s) until another batch is being gathered at
    the same time: it only finishes quickly when batches are gathered in parallel."""

    def __init__(self, x):
        import threading

        self.x, self.barrier, self.met = x, threading.Barrier(2, timeout=10), 0

    def __len__(self):
        return len(self.x)

    def batch(self, indices):
        import threading

        try:
            self.barrier.wait()
            self.met += 1
        except threading.BrokenBarrierError:
            self.barrier.reset()
        return self.x[indices], np.asarray(indices, np.int32)


def test_stream_workers_gather_batches_at_once_in_the_same_order(key):
    x = np.arange(48 * 4, dtype=np.float32).reshape(48, 2, 2, 1)
    order = np.asarray(data.batch_indices(key, 48, 8))
    source = _Meeting(x)
    batches = list(data.stream(source, key, 8, workers=2))
    assert source.met >= 2  # two batches were being decoded at the same moment
    np.testing.assert_array_equal(np.stack([b.y for b in batches]), order)
    for batch, idx in zip(batches, order, strict=True):
        np.testing.assert_array_equal(batch.x, x[idx])
    with pytest.raises(ValueError, match="workers"):
        next(data.stream(source, key, 8, workers=0))


def test_stream_rejects_bad_arguments(key, tmp_path):
    source = data.ArraySource(np.zeros((4, 2, 2, 1), np.float32), np.zeros(4, np.int32))
    with pytest.raises(ValueError, match="prefetch"):
        next(data.stream(source, key, 2, prefetch=0))
    with pytest.raises(ValueError, match="batch_size"):
        next(data.stream(source, key, 5))
    with pytest.raises(TypeError, match="HostSource"):
        next(data.stream([1, 2, 3], key, 2))
    with pytest.raises(ValueError, match="NHWC"):
        data.ArraySource(np.zeros((4, 2)), np.zeros(4))
    with pytest.raises(FileNotFoundError, match="x_path"):
        data.ArraySource.load(tmp_path / "nope.npy", tmp_path / "y.npy")


def test_tfds_source_streams_a_prepared_split_record_by_record(key):
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=20):
        source = data.TFDSSource("mnist", "train", mean=np.float32([0.5]), std=np.float32([0.25]))
        x_all, y_all = data.tfds_arrays("mnist", "train")
        batches = list(data.stream(source, key, 6))
    assert len(source) == 20
    assert len(batches) == 3
    order = np.asarray(data.batch_indices(key, 20, 6))
    for batch, idx in zip(batches, order, strict=True):
        assert batch.x.shape == (6, 28, 28, 1)
        assert batch.x.dtype == np.float32
        np.testing.assert_array_equal(batch.y, y_all[idx])
        np.testing.assert_allclose(batch.x, (x_all[idx] / 255.0 - 0.5) / 0.25, atol=1e-6)
    with pytest.raises(ValueError, match="both `mean` and `std`"):
        data.TFDSSource("mnist", "train", mean=np.float32([0.5]))
