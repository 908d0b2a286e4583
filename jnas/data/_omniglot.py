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
from typing import Any, NamedTuple

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


def omniglot_image(image: Any, size: int = 28) -> np.ndarray:
    """One image as the Omniglot learners train on it: float32 `[size, size, 1]`,
    grayscale, resized with LANCZOS (as MAML's code does), ink = 1 and paper = 0 (dark
    strokes on a light background, as scanned). `image` is a file path, PNG/JPEG bytes,
    a PIL image, or a uint8 array `[H, W]` / `[H, W, C]`; to classify your own drawings
    with a model trained by `jnas meta` (stack them into `query_x`)."""
    from PIL import Image

    check_positive("omniglot_image", size=size)
    if isinstance(image, (str, pathlib.Path)):
        with Image.open(image) as im:
            return _resized(im, size)[..., None]
    if isinstance(image, (bytes, bytearray)):
        return _decode(bytes(image), size)[..., None]
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8 or image.ndim not in (2, 3):
            raise ValueError(
                "omniglot_image: an array `image` must be uint8 [H, W] or [H, W, C]; got "
                f"{image.dtype} {image.shape}"
            )
        image = Image.fromarray(image[..., 0] if image.ndim == 3 else image)
    if not isinstance(image, Image.Image):
        raise ValueError(
            "omniglot_image: `image` must be a path, bytes, a PIL image or a uint8 array; "
            f"got {type(image).__name__}"
        )
    return _resized(image, size)[..., None]


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
    per_class: int | str | None = None,
) -> ClassImages:
    """Omniglot characters as classes: `images[C, 20, size, size, 1]` float32 in [0, 1].

    `path` is an official zip or its unzipped folder; `alphabets` keeps only those,
    `exclude` drops alphabets (e.g. the ones a meta-training split already holds).
    `rotations=True` appends each character rotated by 90/180/270 degrees as new classes
    (names suffixed `@90` etc.). Classes are sorted by name, so the order is reproducible.
    Every class must hold as many images (Omniglot's 20), else `per_class` says how many
    to keep: an int, or `"smallest"` (the first n of each, n the smallest class's size).
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
    per_class = _per_class("omniglot", {f"{a}/{c}": len(files[(a, c)]) for a, c in keys}, per_class)
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
    pool = class_images(gray, y, per_class="smallest")  # TFDS omniglot: 20 per class
    return _with_rotations(pool) if rotations else pool


def _per_class(where: str, sizes: dict[str, int], per_class: int | str | None) -> int:
    """How many examples per class to keep: all when every class has as many; else what
    `per_class` says, or an error naming the uneven classes (no silent truncation)."""
    smallest = min(sizes.values())
    if per_class is None:
        if len(set(sizes.values())) > 1:
            low = min(sizes, key=lambda k: sizes[k])
            high = max(sizes, key=lambda k: sizes[k])
            raise ValueError(
                f"{where}: classes hold {smallest} to {sizes[high]} examples (e.g. {low}: "
                f"{smallest}, {high}: {sizes[high]}); pass per_class='smallest' to keep the "
                f"first {smallest} of each, or an int"
            )
        return smallest
    if per_class == "smallest":
        return smallest
    if not isinstance(per_class, int) or isinstance(per_class, bool) or per_class < 1:
        raise ValueError(
            f"{where}: `per_class` must be an int >= 1 or 'smallest'; got {per_class!r}"
        )
    if per_class > smallest:
        raise ValueError(
            f"{where}: `per_class`={per_class} exceeds the smallest class's {smallest} examples"
        )
    return per_class


def omniglot_alphabets(path: str | pathlib.Path) -> tuple[str, ...]:
    """The alphabets in an Omniglot zip or folder."""
    return tuple(sorted({a for a, _ in _read_files(pathlib.Path(path))}))


def class_images(x: np.ndarray, y: np.ndarray, per_class: int | str | None = None) -> ClassImages:
    """Group a labelled array dataset by class (`images[C, M, ...]`), for few-shot tasks
    from any dataset (digits, TFDS). Classes of unequal sizes need `per_class`: an int M
    (the first M of each) or `"smallest"`; nothing is dropped without being asked."""
    x, y = np.asarray(x), np.asarray(y)
    if len(x) != len(y):
        raise ValueError(f"class_images: {len(x)} images but {len(y)} labels")
    classes = np.unique(y)
    members = [np.flatnonzero(y == c) for c in classes]
    sizes = {str(c): len(i) for c, i in zip(classes.tolist(), members, strict=True)}
    m = _per_class("class_images", sizes, per_class)
    return ClassImages(
        np.stack([x[i[:m]] for i in members]), tuple(str(c) for c in classes.tolist())
    )
