"""Omniglot character images read straight from the official zips (or an unzipped folder).

Layout (Lake et al.'s release): `images_background_small1/ALPHABET/characterNN/*.png`,
105x105 binary PNGs, 20 drawings per character. Each character is a class; the usual
few-shot protocol (Vinyals et al. 2016, Finn et al. 2017) resizes to 28x28 and adds the
90/180/270-degree rotations of every character as further classes.
"""

from __future__ import annotations

import io
import pathlib
import zipfile
from typing import NamedTuple

import numpy as np

from jnas._checks import check_positive

ROTATIONS = (0, 1, 2, 3)  # multiples of 90 degrees


class ClassImages(NamedTuple):
    """Images grouped by class, `images[class, example, H, W, C]`, and the class names."""

    images: np.ndarray
    names: tuple[str, ...]


def _resized(im, size: int) -> np.ndarray:
    from PIL import Image

    im = im.convert("L").resize((size, size), resample=Image.Resampling.LANCZOS)
    return 1.0 - np.asarray(im, np.float32) / 255.0  # ink = 1, paper = 0


def _decode(data: bytes, size: int) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        return _resized(im, size)


def _with_rotations(pool: ClassImages) -> ClassImages:
    """Each class rotated by 90/180/270 degrees appended as a new class (`name@90`...)."""
    images = np.concatenate([np.rot90(pool.images, r, axes=(2, 3)) for r in ROTATIONS])
    names = tuple(f"{n}@{90 * r}" if r else n for r in ROTATIONS for n in pool.names)
    return ClassImages(np.ascontiguousarray(images), names)


def _read_files(path: pathlib.Path) -> dict[tuple[str, str], list[tuple[str, bytes]]]:
    """{(alphabet, character): [(file name, png bytes)]} from a zip or a folder."""
    files: dict[tuple[str, str], list[tuple[str, bytes]]] = {}

    def add(parts: tuple[str, ...], read):
        if len(parts) >= 3 and parts[-1].endswith(".png"):
            files.setdefault((parts[-3], parts[-2]), []).append((parts[-1], read()))

    if path.is_file():
        try:
            with zipfile.ZipFile(path) as z:
                for name in z.namelist():
                    add(tuple(name.split("/")), lambda name=name: z.read(name))
        except zipfile.BadZipFile as e:
            raise ValueError(f"omniglot: {path} is not a readable zip file ({e})") from e
    elif path.is_dir():
        for png in sorted(path.rglob("*.png")):
            add(png.relative_to(path).parts, png.read_bytes)
    else:
        raise FileNotFoundError(
            f"omniglot: {path} does not exist; expected an Omniglot zip "
            "such as images_background_small1.zip, or its unzipped folder"
        )
    if not files:
        raise ValueError(f"omniglot: no ALPHABET/character/*.png images found in {path}")
    return files


def omniglot(
    path: str | pathlib.Path,
    *,
    size: int = 28,
    rotations: bool = True,
    alphabets: tuple[str, ...] | None = None,
    exclude: tuple[str, ...] = (),
) -> ClassImages:
    """Omniglot characters as classes: `images[C, 20, size, size, 1]` float32 in [0, 1].

    `path` is an official zip or its unzipped folder; `alphabets` keeps only those,
    `exclude` drops alphabets (e.g. the ones a meta-training split already holds).
    `rotations=True` appends each character rotated by 90/180/270 degrees as new classes
    (names suffixed `@90` etc.). Classes are sorted by name, so the order is reproducible.
    """
    check_positive("omniglot", size=size)
    files = _read_files(pathlib.Path(path))
    found = sorted({a for a, _ in files})
    unknown = sorted(set(alphabets or ()) - set(found))
    if unknown:
        raise ValueError(f"omniglot: alphabets {unknown} are not in {path}; it holds {found}")
    keys = sorted(
        k for k in files if (alphabets is None or k[0] in alphabets) and k[0] not in exclude
    )
    if not keys:
        raise ValueError(
            f"omniglot: no characters left in {path} after choosing "
            f"alphabets={alphabets} exclude={exclude}"
        )
    counts = {len(files[k]) for k in keys}
    per_class = min(counts)
    images = np.stack(
        [np.stack([_decode(data, size) for _, data in sorted(files[k])[:per_class]]) for k in keys]
    )[..., None]
    pool = ClassImages(images, tuple(f"{a}/{c}" for a, c in keys))
    return _with_rotations(pool) if rotations else pool


def omniglot_tfds(
    split: str, *, data_dir: str | None = None, size: int = 28, rotations: bool = True
) -> ClassImages:
    """Omniglot from a prepared TFDS `omniglot` (`train` = background, `test` = evaluation
    alphabets, `small1`, `small2`), read without TensorFlow; classes are TFDS's character
    labels, images treated as the zips' are."""
    from PIL import Image

    from jnas.data._tfds import tfds_arrays

    x, y = tfds_arrays("omniglot", split, data_dir=data_dir)
    gray = np.stack(
        [_resized(Image.fromarray(np.ascontiguousarray(im[..., 0])), size) for im in x]
    )[..., None]
    pool = class_images(gray, y)
    return _with_rotations(pool) if rotations else pool


def omniglot_alphabets(path: str | pathlib.Path) -> tuple[str, ...]:
    """The alphabets in an Omniglot zip or folder."""
    return tuple(sorted({a for a, _ in _read_files(pathlib.Path(path))}))


def class_images(x: np.ndarray, y: np.ndarray, per_class: int | None = None) -> ClassImages:
    """Group a labelled array dataset by class (`images[C, M, ...]`, M = the smallest
    class's size or `per_class`), for few-shot tasks from any dataset (digits, TFDS)."""
    x, y = np.asarray(x), np.asarray(y)
    if len(x) != len(y):
        raise ValueError(f"class_images: {len(x)} images but {len(y)} labels")
    classes = np.unique(y)
    members = [np.flatnonzero(y == c) for c in classes]
    m = min(len(i) for i in members) if per_class is None else per_class
    if m > min(len(i) for i in members):
        raise ValueError(
            f"class_images: `per_class`={per_class} exceeds the smallest "
            f"class's {min(len(i) for i in members)} examples"
        )
    return ClassImages(
        np.stack([x[i[:m]] for i in members]), tuple(str(c) for c in classes.tolist())
    )
