"""Recurrent language models of NAS-Bench-NLP cells: the parameter count of every run of
the benchmark, the LSTM recipe against a hand-written NumPy LSTM language model, and the
AWD-LSTM regularisers' masks."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from jnas.nn import RecurrentLM, count_params, lm_loss
from jnas.spaces import NBNLP_EXAMPLES

LSTM, VANILLA = NBNLP_EXAMPLES["lstm"], NBNLP_EXAMPLES["rnn"]


@pytest.mark.parametrize(
    "stride",
    # building 250+ modules (eval_shape) takes 45 s: the default run builds every 8th
    [8, pytest.param(1, marks=pytest.mark.slow)],
)
def test_parameter_count_equals_the_benchmark_for_every_run(nasbench_dir, stride):
    data = np.load(nasbench_dir / "nbnlp_wt2.npz")
    # the README's worked example: the vanilla RNN (recipe 1000000)
    vanilla = (
        33_278 * 400
        + 33_278
        + sum(i * h + h * h + h for i, h in [(400, 600), (600, 600), (600, 400)])
    )
    assert vanilla == 15_066_078 == int(data["num_params"][0])
    expected = {}
    for recipe, count in zip(data["recipe"].tolist(), data["num_params"].tolist(), strict=True):
        assert expected.setdefault(recipe, count) == count, recipe  # one count a recipe
    assert len(expected) > 250
    vanilla_recipe = str(data["recipe"][0])
    for recipe in dict.fromkeys([vanilla_recipe, *sorted(expected)[::stride]]):
        model = nnx.eval_shape(lambda r=recipe: RecurrentLM(json.loads(r), rngs=nnx.Rngs(0)))
        assert count_params(model) == expected[recipe], recipe


def _numpy_lstm_lm(model: RecurrentLM, tokens: np.ndarray) -> np.ndarray:
    """The LSTM recipe by hand: i = tanh, j = sigm, f = sigm, o = tanh gates of
    (x W + h U + b); c' = f c + i j; h' = tanh(c') o; embedding in, tied decoder out."""
    emb = np.asarray(model.encoder.embedding.get_value(), np.float64)
    out = emb[tokens]  # [B, T, E]
    sig = lambda z: 1 / (1 + np.exp(-z))
    for cell in model.layers:
        p = {
            name: (
                [np.asarray(k.get_value(), np.float64) for k in cell.linears[name].kernels],
                np.asarray(cell.linears[name].bias.get_value(), np.float64),
            )
            for name in "ijfo"
        }
        b, t = out.shape[:2]
        h = np.zeros((b, cell.hidden_size))
        c = np.zeros((b, cell.hidden_size))
        steps = []
        for s in range(t):
            x = out[:, s]
            gate = {n: x @ w[0] + h @ w[1] + bias for n, (w, bias) in p.items()}
            c = sig(gate["f"]) * c + np.tanh(gate["i"]) * sig(gate["j"])
            h = np.tanh(c) * np.tanh(gate["o"])
            steps.append(h)
        out = np.stack(steps, axis=1)
    return out @ emb.T + np.asarray(model.decoder_bias.get_value(), np.float64)


def test_lstm_recipe_equals_a_hand_written_lstm_language_model(key):
    model = RecurrentLM(LSTM, vocab_size=13, emsize=4, nhid=5, nlayers=2, rngs=nnx.Rngs(0))
    model.decoder_bias.set_value(jax.random.normal(key, (13,)) * 0.1)
    tokens = np.asarray(jax.random.randint(key, (3, 7), 0, 13))
    logits, hidden, _ = model(jnp.asarray(tokens))
    np.testing.assert_allclose(logits, _numpy_lstm_lm(model, tokens), rtol=1e-5, atol=1e-6)
    assert [len(h) for h in hidden] == [2, 2]
    assert hidden[1][0].shape == (3, 4)  # tied: the last layer's size is emsize
    # jit == eager, and evaluation (no key) is deterministic
    graph, state = nnx.split(model)
    jitted = jax.jit(lambda s, t: nnx.merge(graph, s)(t)[0])(state, jnp.asarray(tokens))
    np.testing.assert_allclose(jitted, logits, rtol=1e-5, atol=1e-6)


def test_locked_dropout_and_weight_drop_masks(key):
    model = RecurrentLM(
        VANILLA,
        vocab_size=11,
        emsize=6,
        nhid=6,
        nlayers=2,
        dropout=0.5,
        dropouth=0.0,
        dropouti=0.0,
        wdrop=0.5,
        rngs=nnx.Rngs(0),
    )
    tokens = jax.random.randint(key, (4, 9), 0, 11)
    # weight drop acts on the recurrent weight only (h_prev_0's matrix, input 1 of f)
    assert set(model.layers[0].recurrent_weights()) == {"f/1"}
    _, _, extra = model(tokens, key=key)
    ratio = np.asarray(extra["dropped"] / extra["raw"])
    assert set(np.round(np.unique(ratio), 5).tolist()) <= {0.0, 2.0}
    np.testing.assert_array_equal(ratio, np.broadcast_to(ratio[:, :1], ratio.shape))  # locked
    assert 0.2 < (ratio == 0).mean() < 0.8
    # a key means training: outputs differ from evaluation; no key, no dropout at all
    train, _, _ = model(tokens, key=key)
    evaluate, _, e = model(tokens)
    assert not np.allclose(train, evaluate)
    np.testing.assert_array_equal(e["dropped"], e["raw"])
    # AR/TAR only in training; the evaluation loss is the plain cross-entropy
    loss, (ce, _) = lm_loss(model, tokens[:, :-1], tokens[:, 1:])
    ref = optax.softmax_cross_entropy_with_integer_labels(model(tokens[:, :-1])[0], tokens[:, 1:])
    np.testing.assert_allclose(loss, ref.mean(), rtol=1e-6)
    np.testing.assert_allclose(ce, loss)
    train_loss, (train_ce, _) = lm_loss(model, tokens[:, :-1], tokens[:, 1:], key=key)
    assert float(train_loss) > float(train_ce)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="dropout"):
        RecurrentLM(VANILLA, dropout=1.0, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="h_new_0"):
        RecurrentLM({"f": VANILLA["f"]}, rngs=nnx.Rngs(0))
