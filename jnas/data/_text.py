"""Text corpora for language models, offline: the Python standard library's own sources as
a character-level code corpus (present wherever Python is; no download), word-level corpora
as the language-modelling papers read them (PTB's and WikiText's token files, or the text of
a prepared TFDS dataset such as `lm1b`), and the batching AWD-LSTM uses for truncated
back-propagation through time.

Why the default corpus: PTB and WikiText need a download, while every machine that runs
jnas holds a few MB of well-formed Python. Files are split into train / valid / test by a
hash of their path, so the split does not depend on the order a file system lists them in.
TFDS (4.9) ships no `ptb` or `wikitext` builder (its language-model dataset is `lm1b`), so
PTB / WikiText are read from their own files (`text_file_corpus`), the format every
language-modelling codebase downloads, and TFDS text through `tfds_text_corpus`.
"""

from __future__ import annotations

import hashlib
import os
import pathlib
import sysconfig
from collections.abc import Iterable, Mapping
from typing import NamedTuple

import numpy as np


class TextCorpus(NamedTuple):
    """Token ids (int32) per split and the vocabulary (`vocab[i]` is token i's text)."""

    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray
    vocab: tuple[str, ...]
    source: str


def char_corpus(texts: dict[str, str], *, source: str = "texts") -> TextCorpus:
    """A character-level corpus from `{name: text}` (at least 3 texts): in the order of
    the MD5 of their names, each text goes to the split furthest below its share of the
    characters (train 80%, valid 10%, test 10%), so the split does not depend on the
    listing order; the vocabulary is every character seen, sorted."""
    if len(texts) < 3:
        raise ValueError(f"char_corpus: `texts` must hold at least 3 texts; got {len(texts)}")
    parts: dict[str, list[str]] = {"train": [], "valid": [], "test": []}
    share = {"train": 0.8, "valid": 0.1, "test": 0.1}
    size = dict.fromkeys(parts, 0)
    for name in sorted(texts, key=lambda name: hashlib.md5(name.encode()).hexdigest()):
        total = sum(size.values()) + len(texts[name])
        split = min(parts, key=lambda k: (size[k] - share[k] * total) / share[k])
        parts[split].append(texts[name])
        size[split] += len(texts[name])
    joined = {k: "".join(v) for k, v in parts.items()}
    vocab = tuple(sorted(set("".join(joined.values()))))
    index = {c: i for i, c in enumerate(vocab)}
    table = np.full(max(map(ord, vocab)) + 1, -1, np.int32)
    table[[ord(c) for c in vocab]] = [index[c] for c in vocab]

    def encode(text: str) -> np.ndarray:
        return table[np.frombuffer(text.encode("utf-32-le"), np.uint32)].astype(np.int32)

    return TextCorpus(
        encode(joined["train"]), encode(joined["valid"]), encode(joined["test"]), vocab, source
    )


def python_corpus(max_chars: int = 2_000_000, *, ascii_only: bool = True) -> TextCorpus:
    """The standard library's `.py` files (sorted by path, read until `max_chars`) as a
    character-level corpus; `ascii_only` drops the few files with other characters."""
    if not isinstance(max_chars, int) or max_chars < 1000:
        raise ValueError(
            f"python_corpus: `max_chars` must be an integer >= 1000; got {max_chars!r}"
        )
    root = pathlib.Path(sysconfig.get_paths()["stdlib"])
    texts, total = {}, 0
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        if "site-packages" in rel or "test" in rel.split("/")[0]:
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        if ascii_only and not text.isascii():
            continue
        texts[rel] = text
        total += len(text)
        if total >= max_chars:
            break
    return char_corpus(texts, source=f"python stdlib at {root} ({total} characters)")


WORD_FILES = (  # (train, valid, test) names: PTB (Mikolov's), WikiText (Merity et al.), plain
    ("ptb.train.txt", "ptb.valid.txt", "ptb.test.txt"),
    ("wiki.train.tokens", "wiki.valid.tokens", "wiki.test.tokens"),
    ("train.txt", "valid.txt", "test.txt"),
)


def word_corpus(
    splits: Mapping[str, Iterable[str]], *, source: str = "lines", eos: str = "<eos>"
) -> TextCorpus:
    """A word-level corpus from `{"train" | "valid" | "test": lines}` as AWD-LSTM's `Corpus`
    builds it (Merity et al. 2018, the code NAS-Bench-NLP and DARTS use): each line's
    whitespace-separated words then `eos`; one vocabulary over train, valid and test in the
    order words first appear (so PTB gives its 10,000 words, WikiText-2 its 33,278)."""
    if set(splits) != {"train", "valid", "test"}:
        raise ValueError(
            f"word_corpus: `splits` must have keys train, valid, test; got {sorted(splits)}"
        )
    index: dict[str, int] = {}
    ids: dict[str, list[int]] = {}
    for name in ("train", "valid", "test"):
        out = ids[name] = []
        for line in splits[name]:
            for word in [*line.split(), eos]:
                out.append(index.setdefault(word, len(index)))
    if not ids["train"]:
        raise ValueError("word_corpus: the train split is empty")
    arrays = {k: np.asarray(v, np.int32) for k, v in ids.items()}
    return TextCorpus(arrays["train"], arrays["valid"], arrays["test"], tuple(index), source)


def text_file_corpus(folder: str | os.PathLike) -> TextCorpus:
    """PTB or WikiText from their token files in `folder` (`ptb.{train,valid,test}.txt`,
    `wiki.{train,valid,test}.tokens`, or `{train,valid,test}.txt`), word-level, lines
    skipped by nothing (`word_corpus`; WikiText's empty lines give one `<eos>` each, as
    AWD-LSTM reads them)."""
    root = pathlib.Path(folder)
    for names in WORD_FILES:
        paths = [root / n for n in names]
        if all(p.is_file() for p in paths):
            lines = {
                k: p.read_text(encoding="utf-8").splitlines()
                for k, p in zip(("train", "valid", "test"), paths, strict=True)
            }
            return word_corpus(lines, source=f"{names[0]} in {root}")
    raise FileNotFoundError(
        f"text_file_corpus: no corpus in {str(root)!r}; expected one of "
        + "; ".join(", ".join(n) for n in WORD_FILES)
    )


def bptt_batches(tokens: np.ndarray, batch_size: int, bptt: int) -> tuple[np.ndarray, np.ndarray]:
    """AWD-LSTM's `batchify` + `get_batch`: the stream cut into `batch_size` rows (the
    remainder dropped), then into windows of `bptt` steps. Returns (inputs, targets),
    each int32[windows, batch_size, bptt], targets shifted by one token; hidden states
    carry from one window to the next."""
    tokens = np.asarray(tokens, np.int32)
    per_row = (tokens.shape[0] - 1) // batch_size
    windows = per_row // bptt
    if windows < 1:
        raise ValueError(
            f"bptt_batches: {tokens.shape[0]} tokens cannot fill one window of "
            f"batch_size {batch_size} x bptt {bptt}"
        )
    n = windows * bptt
    rows = tokens[: batch_size * per_row + 1]
    x = np.stack([rows[r * per_row : r * per_row + n] for r in range(batch_size)])
    y = np.stack([rows[r * per_row + 1 : r * per_row + n + 1] for r in range(batch_size)])
    split = lambda a: a.reshape(batch_size, windows, bptt).transpose(1, 0, 2)
    return split(x), split(y)
