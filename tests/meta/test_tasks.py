"""Few-shot task samplers and the Omniglot reader."""

import io
import pathlib
import zipfile

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from jnas import meta
from jnas.data import class_images, omniglot, omniglot_alphabets, omniglot_tfds

OMNIGLOT = pathlib.Path(__file__).resolve().parents[2] / ".." / "shared" / "omniglot"


def test_sinusoid_tasks_follow_finn_et_al(key):
    tasks = meta.task_batch(meta.sinusoid(10, 7), key, 500)
    assert tasks.support_x.shape == (500, 10, 1)
    assert tasks.query_y.shape == (500, 7, 1)
    x = jnp.concatenate([tasks.support_x, tasks.query_x], 1)
    y = jnp.concatenate([tasks.support_y, tasks.query_y], 1)
    assert float(x.min()) >= -5.0
    assert float(x.max()) <= 5.0
    amp = jnp.abs(y).max(1)[:, 0]
    assert float(amp.max()) <= 5.0 + 1e-5
    # y = A sin(x - phase) with one A and phase per task: recover them by least squares
    basis = jnp.stack([jnp.sin(x[..., 0]), jnp.cos(x[..., 0])], -1)
    coef = jax.vmap(lambda b, t: jnp.linalg.lstsq(b, t)[0])(basis, y)
    fit = jnp.einsum("tnk,tko->tno", basis, coef)
    np.testing.assert_allclose(fit, y, atol=1e-3)
    amplitude = jnp.linalg.norm(coef[:, :, 0], axis=1)
    phase = jnp.arctan2(-coef[:, 1, 0], coef[:, 0, 0])
    assert 0.1 - 1e-4 <= float(amplitude.min())
    assert float(amplitude.max()) <= 5.0 + 1e-4
    assert float(phase.min()) >= -1e-3
    assert float(phase.max()) <= np.pi + 1e-3
    # the ends are reached (500 draws of U[0.1, 5] come within 0.05 of 0.1; a range that
    # started at 0.2 would pass the bounds above and a Kolmogorov-Smirnov test)
    assert float(amplitude.min()) < 0.15
    assert float(amplitude.max()) > 4.95
    # and each is uniform over its whole range, not merely inside it (Kolmogorov-Smirnov)
    for draws, (lo, hi) in (
        (amplitude, (0.1, 5.0)),
        (jnp.clip(phase, 0.0, np.pi), (0.0, np.pi)),
        (x.ravel(), (-5.0, 5.0)),
    ):
        assert stats.kstest(np.asarray(draws), stats.uniform(lo, hi - lo).cdf).pvalue > 1e-3


def test_sampler_defaults_are_the_papers(key):
    """Sinusoid: 10 support and 10 query points (Finn et al.'s K = 10); few-shot: 5-way
    1-shot with 15 queries per class (the Omniglot / miniImageNet evaluation episodes)."""
    task = meta.sinusoid()(key)
    assert task.support_x.shape == task.query_x.shape == (10, 1)
    task = meta.few_shot(_pool(classes=5, per_class=16))(key)
    assert task.support_x.shape == (5, 2, 2, 1)
    assert task.query_x.shape == (75, 2, 2, 1)


def test_tasks_are_pure_functions_of_the_key(key):
    sample = meta.sinusoid(5, 5)
    a, b = sample(key), sample(key)
    c = sample(jax.random.key(1))
    np.testing.assert_array_equal(a.support_y, b.support_y)
    assert not np.allclose(a.support_y, c.support_y)


def _pool(classes=12, per_class=8):
    # image of class c, example e is the constant 100 c + e, so a task reveals its picks
    values = 100 * np.arange(classes)[:, None] + np.arange(per_class)[None]
    return np.broadcast_to(values[:, :, None, None, None], (classes, per_class, 2, 2, 1)).astype(
        np.float32
    )


def test_few_shot_tasks_draw_distinct_classes_and_examples(key):
    sample = meta.few_shot(_pool(), ways=5, shots=2, queries=3)
    tasks = meta.task_batch(sample, key, 50)
    assert tasks.support_x.shape == (50, 10, 2, 2, 1)
    assert tasks.query_x.shape == (50, 15, 2, 2, 1)
    for t in range(50):
        sx, qx = (
            np.asarray(tasks.support_x[t, :, 0, 0, 0]),
            np.asarray(tasks.query_x[t, :, 0, 0, 0]),
        )
        sy, qy = np.asarray(tasks.support_y[t]), np.asarray(tasks.query_y[t])
        np.testing.assert_array_equal(sy, np.repeat(np.arange(5), 2))
        np.testing.assert_array_equal(qy, np.repeat(np.arange(5), 3))
        cls_s, cls_q = sx // 100, qx // 100
        assert len(set(cls_s)) == 5  # 5 distinct classes
        for label in range(5):  # one class per label, in support and query alike
            assert len(set(cls_s[sy == label]) | set(cls_q[qy == label])) == 1
        assert len(set(sx) | set(qx)) == 25  # no example drawn twice
    assert len({int(tasks.support_x[t, 0, 0, 0, 0]) // 100 for t in range(50)}) > 5


def test_few_shot_rejects_impossible_tasks():
    with pytest.raises(ValueError, match="ways"):
        meta.few_shot(_pool(classes=3), ways=5)
    with pytest.raises(ValueError, match="`shots`"):
        meta.few_shot(_pool(), shots=0)
    with pytest.raises(ValueError, match=r"`shots \+ queries` = 9 exceeds the 8 examples"):
        meta.few_shot(_pool(per_class=8), ways=2, shots=4, queries=5)
    with pytest.raises(ValueError, match=r"\[classes, examples, \.\.\.\]"):
        meta.few_shot(np.zeros((12, 8), np.float32))
    # the limits themselves are possible: every class, every example, feature vectors
    task = meta.few_shot(np.ones((3, 8, 4), np.float32), ways=3, shots=4, queries=4)(
        jax.random.key(0)
    )
    assert task.support_x.shape == task.query_x.shape == (12, 4)


def test_class_images_groups_a_labelled_dataset():
    x = np.arange(10, dtype=np.float32)[:, None]
    y = np.array([1, 0, 1, 0, 1, 2, 2, 0, 1, 2])
    with pytest.raises(ValueError, match=r"classes hold 3 to 4 examples .*per_class='smallest'"):
        class_images(x, y)  # class 1 has 4: nothing dropped without being asked
    pool = class_images(x, y, per_class="smallest")
    assert pool.images.shape == (3, 3, 1)
    np.testing.assert_array_equal(pool.images[:, :, 0], [[1, 3, 7], [0, 2, 4], [5, 6, 9]])
    assert class_images(x, y, per_class=2).images.shape == (3, 2, 1)
    with pytest.raises(ValueError, match="per_class"):
        class_images(x, y, per_class=4)


def _png(value: int) -> bytes:
    from PIL import Image

    im = np.full((105, 105), 255, np.uint8)
    im[10:40, 60:100] = value  # ink in the top-right corner
    buf = io.BytesIO()
    Image.fromarray(im).save(buf, format="PNG")
    return buf.getvalue()


def _tiny_omniglot(path: pathlib.Path) -> pathlib.Path:
    with zipfile.ZipFile(path, "w") as z:
        for a in ("Alpha", "Beta"):
            for c in ("character01", "character02"):
                for i in range(3):
                    z.writestr(f"images_background_small1/{a}/{c}/0{i}.png", _png(0))
    return path


def test_omniglot_reads_the_zip_layout_with_rotations(tmp_path):
    zpath = _tiny_omniglot(tmp_path / "small.zip")
    pool = omniglot(zpath, size=28)
    assert pool.images.shape == (16, 3, 28, 28, 1)
    assert pool.names[:4] == (
        "Alpha/character01",
        "Alpha/character02",
        "Beta/character01",
        "Beta/character02",
    )
    assert pool.names[4] == "Alpha/character01@90"
    img = pool.images[0, 0, :, :, 0]
    assert img[5, 22] > 0.9  # ink (value 0 in the PNG) reads as 1, top right
    assert img[22, 5] < 0.1
    np.testing.assert_array_equal(pool.images[4], np.rot90(pool.images[0], 1, axes=(1, 2)))
    only = omniglot(zpath, alphabets=("Beta",), rotations=False)
    assert only.names == ("Beta/character01", "Beta/character02")
    assert omniglot_alphabets(zpath) == ("Alpha", "Beta")
    assert omniglot(zpath, exclude=("Alpha",), rotations=False).names == only.names


def test_omniglot_reads_an_unzipped_folder_the_same(tmp_path):
    zpath = _tiny_omniglot(tmp_path / "small.zip")
    with zipfile.ZipFile(zpath) as z:
        z.extractall(tmp_path / "dir")
    np.testing.assert_array_equal(omniglot(tmp_path / "dir").images, omniglot(zpath).images)


def test_omniglot_bad_input_gets_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        omniglot(tmp_path / "missing.zip")
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a readable zip"):
        omniglot(bad)
    with pytest.raises(ValueError, match="not in"):
        omniglot(_tiny_omniglot(tmp_path / "s.zip"), alphabets=("Klingon",))


@pytest.fixture(scope="module")
def omniglot_dir() -> pathlib.Path:
    if not (OMNIGLOT / "images_background_small1.zip").exists():
        pytest.skip(
            f"{OMNIGLOT} is absent: the Omniglot background_small zips live in ../shared/omniglot"
        )
    return OMNIGLOT


def test_omniglot_background_small_splits_are_class_disjoint(omniglot_dir):
    small1 = omniglot_dir / "images_background_small1.zip"
    small2 = omniglot_dir / "images_background_small2.zip"
    train = omniglot(small1)
    test = omniglot(small2, exclude=omniglot_alphabets(small1))
    assert omniglot_alphabets(small1) == ("Balinese", "Early_Aramaic", "Greek", "Korean", "Latin")
    assert train.images.shape == (4 * 136, 20, 28, 28, 1)
    assert test.images.shape == (4 * 106, 20, 28, 28, 1)
    assert {n.split("/")[0] for n in test.names} == {"Japanese_(katakana)", "Sanskrit", "Tagalog"}
    assert not {n.split("/")[0] for n in train.names} & {n.split("/")[0] for n in test.names}
    ink = train.images.mean()
    assert 0.03 < ink < 0.2  # strokes on white paper, inverted


def test_omniglot_from_tfds_mock_data_gives_classes_of_28x28_images():
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=40):
        pool = omniglot_tfds("train")
    assert pool.images.shape[2:] == (28, 28, 1)
    assert pool.images.dtype == np.float32
    assert pool.images.shape[0] % 4 == 0  # rotations
    assert pool.images.shape[0] // 4 == len({n for n in pool.names if "@" not in n})
    assert 0.0 <= float(pool.images.min())
    assert float(pool.images.max()) <= 1.0


def test_tfds_omniglot_not_prepared_names_the_directory(tmp_path):
    from jnas.data import DatasetNotPrepared

    with pytest.raises(DatasetNotPrepared, match=str(tmp_path)):
        omniglot_tfds("train", data_dir=str(tmp_path))


def test_omniglot_with_uneven_classes_says_so(tmp_path):
    zpath = _tiny_omniglot(tmp_path / "small.zip")
    with zipfile.ZipFile(zpath, "a") as z:
        z.writestr("images_background_small1/Beta/character02/09.png", _png(0))
    with pytest.raises(ValueError, match=r"3 to 4 examples .*Beta/character02: 4"):
        omniglot(zpath)
    assert omniglot(zpath, per_class="smallest", rotations=False).images.shape[1] == 3


def test_one_image_is_preprocessed_as_the_loader_does(tmp_path):
    """Ink reads 1, paper 0, [28, 28, 1]; a path, bytes, a PIL image and a uint8 array
    agree, and equal the image the loader gives for the same PNG."""
    from PIL import Image

    from jnas.data import omniglot_image

    png = _png(0)
    (tmp_path / "a.png").write_bytes(png)
    pool = omniglot(_tiny_omniglot(tmp_path / "small.zip"), rotations=False)
    pixels = np.asarray(Image.open(io.BytesIO(png)))
    for image in (png, tmp_path / "a.png", Image.open(io.BytesIO(png)), pixels):
        got = omniglot_image(image)
        assert got.shape == (28, 28, 1)
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, pool.images[0, 0])
    assert got[5, 22, 0] > 0.9  # the ink in the top-right corner
    assert got[22, 5, 0] < 0.1
    with pytest.raises(ValueError, match="uint8"):
        omniglot_image(pixels.astype(np.float32))


def test_omniglot_tasks_from_small1_alone_hold_out_its_last_alphabet(tmp_path):
    from jnas.recipes.meta import task_sources

    _tiny_omniglot(tmp_path / "images_background_small1.zip")  # no small2 beside it
    source = task_sources("omniglot", ways=2, shots=1, queries=1, omniglot_dir=tmp_path)
    assert "images_background_small2.zip is absent" in source["note"]
    assert "'Beta', held out of meta-training" in source["note"]
    assert source["classes"] == (8, 8)  # Alpha's and Beta's 2 characters x 4 rotations
    task = source["test"](jax.random.key(0))
    assert task.support_x.shape == (2, 28, 28, 1)
