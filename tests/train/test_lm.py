"""Language-model training of recipe cells on the offline code corpus: AWD-LSTM's batching
by hand, the corpus split, and a cell that learns beyond character frequencies."""

import jax
import numpy as np

from jnas.data import bptt_batches, char_corpus, python_corpus
from jnas.spaces import NBNLP_EXAMPLES
from jnas.train import train_lm


def test_bptt_batches_are_awd_lstms_batchify_and_get_batch():
    tokens = np.arange(103)
    x, y = bptt_batches(tokens, batch_size=4, bptt=5)
    # batchify: 4 rows of 25 tokens (102 // 4), windows of 5 steps; targets one ahead
    assert x.shape == (5, 4, 5)
    np.testing.assert_array_equal(x[0, 1], [25, 26, 27, 28, 29])
    np.testing.assert_array_equal(x[2, 3], [85, 86, 87, 88, 89])
    np.testing.assert_array_equal(y, x + 1)


def test_char_corpus_split_ignores_listing_order_and_round_trips():
    texts = {f"f{i}.py": f"def f{i}():\n    return {i * 7}\n" * (1 + i % 5) for i in range(40)}
    a = char_corpus(texts)
    b = char_corpus(dict(reversed(list(texts.items()))))
    for x, y in zip(a[:3], b[:3], strict=True):
        np.testing.assert_array_equal(x, y)
    sizes = np.array([len(a.train), len(a.valid), len(a.test)]) / sum(map(len, texts.values()))
    np.testing.assert_allclose(sizes, [0.8, 0.1, 0.1], atol=0.03)
    joined = "".join(a.vocab[i] for i in np.concatenate(a[:3]))
    assert sorted(joined) == sorted("".join(texts.values()))


def test_an_lstm_cell_learns_beyond_character_frequencies():
    corpus = python_corpus(60_000)
    counts = np.bincount(corpus.train, minlength=len(corpus.vocab)) + 1.0
    unigram = np.exp(-np.mean(np.log(counts / counts.sum())[corpus.valid]))  # NumPy baseline
    run = train_lm(
        jax.random.key(0),
        NBNLP_EXAMPLES["lstm"],
        corpus,
        epochs=3,
        batch_size=8,
        lr=5e-3,
        bptt=20,
        emsize=16,
        nhid=32,
        nlayers=1,
        dropouti=0.1,
    )
    assert run.valid_ppl[-1] < 0.8 * unigram
    assert run.valid_ppl[-1] < run.valid_ppl[0]
    assert np.isfinite(run.test_ppl)
