"""Train-from-scratch: accuracy floor on the digits, resume equality, NaN stop."""

import functools

import jax
import numpy as np
import optax
import pytest
from flax import nnx

from jnas import data
from jnas.spaces import NB201
from jnas.train import TrainConfig, evaluate, train

CELL = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"


@pytest.fixture(scope="module")
def digits():
    return data.digits(jax.random.key(0))


def small_net(seed=0, channels=8):
    space = NB201()
    return space.build(
        space.from_string(CELL), channels=channels, cells_per_stage=1, rngs=nnx.Rngs(seed)
    )


def test_small_nb201_cell_learns_the_digits(digits):
    config = TrainConfig(epochs=4, batch_size=64, lr=0.05, augment=False)
    model, records = train(
        small_net(), jax.random.key(1), digits["train_full"], config, test=digits["test"]
    )
    assert len(records) == 4
    assert records[-1]["train_loss"] < records[0]["train_loss"]
    assert records[-1]["test_acc"] >= 0.90, records[-1]
    assert evaluate(model, digits["test"])["acc"] == pytest.approx(records[-1]["test_acc"])


def test_resumed_training_ends_like_an_uninterrupted_one(digits, tmp_path):
    subset = data.Split(digits["train_full"].x[:256], digits["train_full"].y[:256])
    config = TrainConfig(epochs=3, batch_size=64, lr=0.05)
    run = functools.partial(train, key=jax.random.key(2), data=subset)
    full_model, full = run(small_net(channels=4), config=config, out=tmp_path / "full")
    # a run killed during its third epoch: its checkpoints hold epochs 0 and 1
    with pytest.raises(KeyboardInterrupt):
        run(small_net(channels=4), config=config, out=tmp_path / "cut", on_epoch=_interrupt_at(2))
    model, records = run(
        small_net(seed=5, channels=4), config=config, out=tmp_path / "cut", resume=True
    )
    assert records == full
    for a, b in zip(
        jax.tree.leaves(nnx.state(model)), jax.tree.leaves(nnx.state(full_model)), strict=True
    ):
        np.testing.assert_array_equal(a, b)


def test_each_epoch_trains_on_its_own_shuffle_as_a_loop_by_hand(digits):
    """`train` against SGD written out: epoch e shuffles with the first half of
    `fold_in(key, e)` (`jnas.data.batch_indices`), one optimiser step per batch. The resume
    test compares two runs of `train`, which would share a slip in the epochs' keys."""
    from jnas.data import batch_indices

    x, y = digits["train_full"].x[:96], digits["train_full"].y[:96]
    config = TrainConfig(epochs=3, batch_size=32, lr=0.05, augment=False)

    def linear():
        return nnx.Sequential(
            lambda h: h.reshape(h.shape[0], -1), nnx.Linear(768, 10, rngs=nnx.Rngs(3))
        )

    model, _ = train(linear(), jax.random.key(4), data.Split(x, y), config)
    reference = linear()
    graphdef, params = nnx.split(reference, nnx.Param)
    optimizer = config.optimizer(3)
    opt_state = optimizer.init(params)

    def loss(p, xb, yb):
        logits = nnx.merge(graphdef, p)(xb)
        return optax.softmax_cross_entropy_with_integer_labels(logits, yb).mean()

    for e in range(3):
        k_perm, _ = jax.random.split(jax.random.fold_in(jax.random.key(4), e))
        for idx in np.asarray(batch_indices(k_perm, 96, 32)):
            grads = jax.grad(loss)(params, x[idx], y[idx])
            updates, opt_state = optimizer.update(grads, opt_state, params)
            params = optax.apply_updates(params, updates)
    for a, b in zip(
        jax.tree.leaves(nnx.state(model, nnx.Param)), jax.tree.leaves(params), strict=True
    ):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def _interrupt_at(epoch):
    def hook(record):
        if record["epoch"] == epoch:
            raise KeyboardInterrupt

    return hook


def test_nan_loss_stops_with_the_step_named(digits):
    config = TrainConfig(epochs=2, batch_size=64, lr=1e12, augment=False)
    with pytest.raises(FloatingPointError, match=r"epoch 0, step \d+"):
        train(small_net(channels=4), jax.random.key(0), digits["train"], config)


def test_bad_config_is_rejected_early(digits):
    with pytest.raises(ValueError, match="epochs"):
        TrainConfig(epochs=0)
    with pytest.raises(ValueError, match="batch_size"):
        train(
            small_net(channels=4),
            jax.random.key(0),
            data.Split(digits["test"].x[:10], digits["test"].y[:10]),
            TrainConfig(batch_size=64),
        )


@pytest.mark.parametrize("mode", ["loop", "scan"])
def test_streaming_from_a_memory_map_trains_like_device_resident_data(digits, tmp_path, mode):
    """The host-streaming path (a `.npy` memory map, batches prefetched by a thread) sees
    the same batches as the device-resident epoch and ends with the same weights."""
    subset = data.Split(digits["train_full"].x[:200], digits["train_full"].y[:200])
    np.save(tmp_path / "x.npy", np.asarray(subset.x))
    np.save(tmp_path / "y.npy", np.asarray(subset.y))
    source = data.ArraySource.load(tmp_path / "x.npy", tmp_path / "y.npy")
    assert isinstance(source.x, np.memmap)
    config = TrainConfig(epochs=2, batch_size=48, lr=0.05)  # augmented; 8 examples dropped
    test = data.Split(digits["test"].x[:100], digits["test"].y[:100])
    kwargs = {"key": jax.random.key(3), "config": config, "steps_mode": mode}
    device_model, device = train(small_net(channels=4), data=subset, test=test, **kwargs)
    host_model, host = train(small_net(channels=4), data=source, test=test, **kwargs)
    assert len(host) == 2
    # The host path runs one jitted step per batch. The device path's loop runs a step that
    # gathers its batch inside: another program, rounded its own way (weights a few ulp
    # apart, 3e-9 here); its scan compiles the step into one epoch program: 2e-4 apart
    # after 8 steps at the tests' LLVM -O0. A run that sees other batches (key 4 instead
    # of 3) ends 0.59 away, on weights up to 2.9.
    rel, atol = (1e-5, 1e-6) if mode == "loop" else (1e-4, 2e-3)
    for a, b in zip(host, device, strict=True):
        assert a == pytest.approx(b, rel=rel, abs=atol)
    for a, b in zip(
        jax.tree.leaves(nnx.state(host_model)),
        jax.tree.leaves(nnx.state(device_model)),
        strict=True,
    ):
        np.testing.assert_allclose(a, b, rtol=0.0, atol=atol)
    # evaluation reads a host source chunk by chunk, the short last chunk included
    assert evaluate(
        host_model, data.ArraySource(np.asarray(test.x), np.asarray(test.y)), batch_size=32
    ) == pytest.approx(evaluate(host_model, test), rel=1e-6)
