"""Word-level corpora as AWD-LSTM's `Corpus` reads PTB / WikiText (words, then `<eos>` per
line; one vocabulary in order of first appearance over train, valid, test), from the token
files and from a TFDS text dataset (mock data), against token streams written out by hand."""

import numpy as np
import pytest

from jnas import data


def test_word_corpus_numbers_words_in_order_of_first_appearance():
    corpus = data.word_corpus(
        {"train": ["the cat sat", " the  dog "], "valid": ["a cat"], "test": ["", "dog sat"]}
    )
    assert corpus.vocab == ("the", "cat", "sat", "<eos>", "dog", "a")
    np.testing.assert_array_equal(corpus.train, [0, 1, 2, 3, 0, 4, 3])
    np.testing.assert_array_equal(corpus.valid, [5, 1, 3])
    np.testing.assert_array_equal(corpus.test, [3, 4, 2, 3])  # an empty line: one <eos>
    assert corpus.train.dtype == np.int32
    with pytest.raises(ValueError, match="train, valid, test"):
        data.word_corpus({"train": ["x"], "valid": []})


@pytest.mark.parametrize("names", data.WORD_FILES[:2])
def test_text_file_corpus_reads_ptb_and_wikitext_files(tmp_path, names):
    texts = (" aer banknote <unk> \n n years old\n", " <unk> years\n", " old aer \n")
    for name, text in zip(names, texts, strict=True):
        (tmp_path / name).write_text(text, encoding="utf-8")
    corpus = data.text_file_corpus(tmp_path)
    assert corpus.vocab == ("aer", "banknote", "<unk>", "<eos>", "n", "years", "old")
    np.testing.assert_array_equal(corpus.train, [0, 1, 2, 3, 4, 5, 6, 3])
    np.testing.assert_array_equal(corpus.valid, [2, 5, 3])
    np.testing.assert_array_equal(corpus.test, [6, 0, 3])
    assert names[0] in corpus.source
    (tmp_path / names[2]).unlink()
    with pytest.raises(FileNotFoundError, match=str(tmp_path)):
        data.text_file_corpus(tmp_path)


def test_tfds_text_corpus_reads_lm1b_through_data_source(tmp_path):
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=10):
        corpus = data.tfds_text_corpus("lm1b")
        records = [r["text"] for r in tfds.data_source("lm1b", split="test", download=False)]
        small = data.tfds_text_corpus("lm1b", max_records=4)
    eos = corpus.vocab.index("<eos>")
    assert np.sum(corpus.train == eos) == 10  # a record is a line
    assert np.sum(corpus.valid == eos) == 5  # the test split's halves
    assert np.sum(corpus.test == eos) == 5
    words = [corpus.vocab[i] for i in corpus.valid if i != eos]
    first = [w for r in records[:5] for w in (r.decode() if isinstance(r, bytes) else r).split()]
    assert words == first
    assert np.sum(small.train == small.vocab.index("<eos>")) == 4
    with pytest.raises(data.DatasetNotPrepared, match=str(tmp_path)):
        data.tfds_text_corpus("lm1b", data_dir=str(tmp_path))
    with pytest.raises(ValueError, match="text_file_corpus"):
        data.tfds_text_corpus("ptb")


def test_one_shot_text_splits_read_ptb_files_as_word_windows(tmp_path):
    """`jnas oneshot --space darts_rnn --dataset text --data-dir FOLDER` reads PTB files:
    windows of 35 words, each label the next word."""
    from jnas.recipes.oneshot import text_splits

    line = " ".join(f"w{i % 7}" for i in range(60))
    for split in ("train", "valid", "test"):
        (tmp_path / f"ptb.{split}.txt").write_text((line + "\n") * 3)
    splits, vocab = text_splits(dataset="text", data_dir=str(tmp_path))
    assert vocab == 8  # w0..w6 and <eos>
    x, y = np.asarray(splits["train"].x), np.asarray(splits["train"].y)
    assert x.shape[1:] == (35,)
    np.testing.assert_array_equal(x[0, 1:], y[0, :-1])  # the next word
    np.testing.assert_array_equal(x[0, :8], [0, 1, 2, 3, 4, 5, 6, 0])
    with pytest.raises(ValueError, match="--data-dir"):
        text_splits(dataset="text")
