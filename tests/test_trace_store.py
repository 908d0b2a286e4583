"""The stored step programs (`jnas._trace_store`): a stored program is found again only
under the same key, loads without tracing, gives the plain step's outputs bit for bit, and
a damaged entry is traced anew rather than run."""

from __future__ import annotations

import dataclasses
import functools
import logging
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.sharding import NamedSharding, PartitionSpec

from jnas import _trace_store, data, oneshot
from jnas.data import Split
from jnas.spaces import NB201


class Carry(NamedTuple):
    w: jax.Array
    step: jax.Array
    unused: None = None


TRACES: list[int] = []


def toy_step(carry: Carry, x: tuple) -> tuple[Carry, dict]:
    """A step with a key, a weak-typed scalar and a NamedTuple carry; counts its traces."""
    TRACES.append(1)
    key, batch, scale = x
    noise = jax.random.normal(key, carry.w.shape)
    w = carry.w - 0.1 * scale * jnp.tanh(batch @ carry.w).mean() + 1e-3 * noise
    return Carry(w, carry.step + 1), {"loss": jnp.sum(w**2), "scale": scale * 1.0}


def toy_args(rows: int = 4) -> tuple:
    carry = Carry(jnp.arange(3, dtype=jnp.float32), jnp.int32(0))
    batch = np.linspace(-1, 1, rows * 3, dtype=np.float32).reshape(rows, 3)
    return carry, (jax.random.key(7), batch, 2.0)


@pytest.fixture
def store(tmp_path):
    _trace_store.enable(tmp_path / "traces")
    yield tmp_path / "traces"
    _trace_store.disable()


def _bits(tree):
    return [
        np.asarray(
            jax.random.key_data(x) if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key) else x
        )
        for x in jax.tree.leaves(tree)
    ]


def _equal(a, b) -> bool:
    same_tree = jax.tree.structure(a) == jax.tree.structure(b)
    return same_tree and all(
        x.dtype == y.dtype and np.array_equal(x, y) for x, y in zip(_bits(a), _bits(b), strict=True)
    )


def test_a_stored_step_loads_without_tracing_and_equals_the_plain_step(store):
    args = toy_args()
    plain = jax.jit(toy_step)(*args)
    before = dict(_trace_store.counts)
    first = _trace_store.StoredStep(toy_step, "toy")(*args)
    assert sorted(p.suffix for p in store.iterdir()) == [".exported", ".json"]
    TRACES.clear()
    second = _trace_store.StoredStep(toy_step, "toy")(*args)  # a new start: no tracing
    assert TRACES == []
    assert _trace_store.counts["traced"] == before["traced"] + 1
    assert _trace_store.counts["loaded"] == before["loaded"] + 1
    assert isinstance(second[0], Carry)
    assert second[0].unused is None
    assert _equal(first, plain)
    assert _equal(second, plain)


def test_every_part_of_the_key_separates_programs(store, monkeypatch):
    args = toy_args()
    _trace_store.StoredStep(toy_step, "toy")(*args)
    _trace_store.StoredStep(toy_step, "toy-2")(*args)  # another identity
    _trace_store.StoredStep(toy_step, "toy")(*toy_args(rows=5))  # another shape
    carry, (key, batch, _) = args
    _trace_store.StoredStep(toy_step, "toy")(carry, (key, batch, np.float32(2.0)))  # not weak
    options = {"xla_backend_optimization_level": 1}
    _trace_store.StoredStep(toy_step, "toy", options)(*args)  # other XLA options
    with jax.numpy_rank_promotion("warn"):  # another JAX setting
        _trace_store.StoredStep(toy_step, "toy")(*args)
    monkeypatch.setattr(_trace_store, "source_digest", lambda: "another jnas")
    _trace_store.StoredStep(toy_step, "toy")(*args)
    assert len(list(store.glob("*.exported"))) == 7


def test_a_damaged_module_is_traced_again_not_run(store, caplog):
    args = toy_args()
    plain = jax.jit(toy_step)(*args)
    _trace_store.StoredStep(toy_step, "toy")(*args)
    (module,) = store.glob("*.exported")
    whole = module.read_bytes()
    for damaged in (whole[: len(whole) // 2], whole[:-1] + bytes([whole[-1] ^ 1])):
        module.write_bytes(damaged)
        traced = _trace_store.counts["traced"]
        with caplog.at_level(logging.WARNING, logger="jnas"):
            out = _trace_store.StoredStep(toy_step, "toy")(*args)
        assert "unreadable" in caplog.text
        assert _trace_store.counts["traced"] == traced + 1
        assert _equal(out, plain)
        loaded = _trace_store.counts["loaded"]
        _trace_store.StoredStep(toy_step, "toy")(*args)  # stored anew, whole: it loads
        assert _trace_store.counts["loaded"] == loaded + 1
    # nothing else left behind (temporary files are renamed or removed)
    assert sorted(p.name.startswith(".") for p in store.iterdir()) == [False, False]


def test_store_off_or_several_devices_trace_plainly(tmp_path):
    args = toy_args()
    traced = _trace_store.counts["traced"]
    out = _trace_store.StoredStep(toy_step, "toy")(*args)  # the store is off
    assert _trace_store.counts["traced"] == traced
    assert _equal(out, jax.jit(toy_step)(*args))
    _trace_store.enable(tmp_path)
    try:
        mesh = jax.make_mesh((2,), ("d",))
        spread = jax.device_put(args, NamedSharding(mesh, PartitionSpec()))
        _trace_store.StoredStep(toy_step, "toy")(*spread)
    finally:
        _trace_store.disable()
    assert list(tmp_path.iterdir()) == []


def test_a_step_whose_outputs_are_not_named_runs_stored_nowhere(store):
    """The record rebuilds `(carry, {name: leaf})`; outputs of another shape (a tuple) are
    exported and run, but not written."""

    def pair_step(carry, x):
        carry, out = toy_step(carry, x)
        return carry, (out["loss"], out["scale"])

    args = toy_args()
    out = _trace_store.StoredStep(pair_step, "pairs")(*args)
    assert _equal(out, jax.jit(pair_step)(*args))
    assert not store.exists() or list(store.iterdir()) == []


@dataclasses.dataclass(frozen=True)
class MySpace(NB201):  # a user's own space, though a subclass of jnas'
    pass


def test_name_of_names_plain_values_and_refuses_the_rest():
    assert _trace_store.name_of((1, 2.5, "a", None, True)) == "tuple(1,2.5,'a',None,True)"
    assert _trace_store.name_of({"b": 1, "a": [2]}) == "{'a':list(2),'b':1}"
    assert _trace_store.name_of(jnp.bfloat16) == "dtype(bfloat16)"
    assert "NB201" in _trace_store.name_of(NB201())
    assert _trace_store.name_of(NB201()) != _trace_store.name_of(NB201(num_nodes=3))
    crop = _trace_store.name_of(data.random_crop_flip)
    assert crop.startswith("fn(jnas.data.")
    assert crop.endswith(".random_crop_flip)")
    assert "partial" in _trace_store.name_of(functools.partial(data.random_crop_flip))
    for unnamed in (lambda x: x, optax.adam(1e-3), MySpace(), object(), toy_step):
        with pytest.raises(TypeError, match="cannot name"):
            _trace_store.name_of(unnamed)


def test_the_registry_names_what_it_makes_and_nothing_else():
    make = oneshot.REGISTRY["rsws"].make
    config = {"channels": 4, "cells_per_stage": 1, "epochs": 1, "steps_per_epoch": 1}
    a, b = make(NB201(), **config), make(NB201(), **{**config, "channels": 8})
    named = _trace_store.identity_of(a.step)
    assert named is not None
    assert named.startswith("rsws:")
    assert named != _trace_store.identity_of(b.step)
    assert _trace_store.identity_of(make(MySpace(), **config).step) is None
    gdas = oneshot.REGISTRY["gdas"].make
    with_adam = gdas(NB201(), **config, alpha_optimizer=optax.adam(1e-3))
    assert _trace_store.identity_of(with_adam.step) is None
    own = a._replace(step=lambda *xs: a.step(*xs))  # a user's own step
    assert _trace_store.identity_of(own.step) is None
    _trace_store.register(toy_step, "one")
    _trace_store.register(toy_step, "two")  # named twice: names nothing
    assert _trace_store.identity_of(toy_step) is None


def test_a_stored_epoch_equals_the_plain_epoch_bit_for_bit(tmp_path):
    """A one-shot epoch through the registry's method and jnas' augmentation: stored, then
    loaded in a fresh `epoch_fn`, against the store off."""
    method = oneshot.REGISTRY["rsws"].make(
        NB201(), channels=4, cells_per_stage=1, epochs=1, steps_per_epoch=2
    )
    rng = np.random.default_rng(0)
    split = Split(
        rng.standard_normal((16, 32, 32, 3), np.float32), rng.integers(0, 10, 16).astype(np.int32)
    )
    state = method.init(jax.random.key(0))

    def epoch():
        oneshot.epoch_fn.cache_clear()
        return oneshot.epoch_fn(method, 8, data.random_crop_flip)(
            state, jax.random.key(1), split, split
        )

    plain = epoch()
    _trace_store.enable(tmp_path)
    try:
        loaded = _trace_store.counts["loaded"]
        stored = epoch()
        again = epoch()
    finally:
        _trace_store.disable()
        oneshot.epoch_fn.cache_clear()
    assert len(list(tmp_path.glob("*.exported"))) == 1
    assert _trace_store.counts["loaded"] == loaded + 1
    assert _equal(stored, plain)
    assert _equal(again, plain)
