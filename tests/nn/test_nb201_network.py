"""The NB201 / NATS networks reproduce the benchmarks' parameter and FLOP counts."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from jnas.nn import NATSSizeNetwork, count_flops, count_params
from jnas.spaces import NB201, NATSSize

DATASETS = {"cifar10": (10, 32), "cifar100": (100, 32), "imagenet16": (120, 16)}


def _abstract(build):
    return nnx.eval_shape(build)  # shapes only: no weights are drawn


def _check_cells(nb201_npz, dataset, count, part=0, parts=1):
    """Params and FLOPs of `count` random exactly-costed cells (plus the all-skip and the
    best cell) equal the table's."""
    num_classes, res = DATASETS[dataset]
    space = NB201()
    exact = np.flatnonzero(nb201_npz["cost_from_isomorph"] == 0)
    rows = np.random.default_rng(201).choice(exact, count, replace=False)
    rows = np.concatenate([[1835, 6111], rows])  # all-skip and the best cell too
    for row in rows[part::parts]:
        arch = space.from_index(int(row))
        model = _abstract(lambda arch=arch: space.build(arch, num_classes=num_classes))
        assert count_params(model) / 1e6 == pytest.approx(
            nb201_npz[f"{dataset}_params_M"][row], abs=1e-6
        ), (row, dataset)
        assert count_flops(model, (1, res, res, 3)) / 1e6 == pytest.approx(
            nb201_npz[f"{dataset}_flops_M"][row], abs=1e-5
        ), (row, dataset)


@pytest.mark.parametrize("dataset", list(DATASETS))
def test_params_and_flops_equal_the_table_on_8_cells(nb201_npz, dataset):
    _check_cells(nb201_npz, dataset, 6)  # 200 a dataset in the slow suite


@pytest.mark.slow  # ~10 CPU minutes: each cell is built and traced in Python
@pytest.mark.parametrize("part", [0, 1])  # halves, so test workers share the work
@pytest.mark.parametrize("dataset", list(DATASETS))
def test_params_and_flops_equal_the_table_on_200_cells(nb201_npz, dataset, part):
    _check_cells(nb201_npz, dataset, 200, part, 2)


def test_isomorph_cost_cells_have_exact_flops(nb201_npz):
    """For the 150 flagged cells the table's FLOPs describe the cell as written (its
    params are those of an isomorphic cell), so FLOPs must still match exactly."""
    space = NB201()
    flagged = np.flatnonzero(nb201_npz["cost_from_isomorph"] == 1)
    assert len(flagged) == 150
    for row in flagged[:10]:
        arch = space.from_index(int(row))
        model = _abstract(lambda arch=arch: space.build(arch))
        assert count_flops(model, (1, 32, 32, 3)) / 1e6 == pytest.approx(
            nb201_npz["cifar10_flops_M"][row], abs=1e-5
        )


def test_official_records_params_and_flops(nats_samples):
    """Cells 0, 11, 284 of both NATS spaces, every dataset in the official records."""
    res = {"cifar10-valid": 32, "cifar10": 32, "cifar100": 32, "ImageNet16-120": 16}
    classes = {"cifar10-valid": 10, "cifar10": 10, "cifar100": 100, "ImageNet16-120": 120}
    checked = 0
    for space_name, space in (("tss", NB201()), ("sss", NATSSize())):
        for cell, by_hp in nats_samples[space_name].items():
            record = next(iter(by_hp.values()))
            arch = space.from_string(record["arch_str"])
            assert int(space.index(arch)) == int(cell)
            for run in record["runs"]:
                ds = run["dataset"]
                model = _abstract(
                    lambda arch=arch, ds=ds, space=space: space.build(arch, num_classes=classes[ds])
                )
                assert count_params(model) / 1e6 == pytest.approx(run["params_M"], abs=1e-6)
                assert count_flops(model, (1, res[ds], res[ds], 3)) / 1e6 == pytest.approx(
                    run["flops_M"], abs=1e-5
                )
                checked += 1
    assert checked >= 12


def _init(arch_index=6111, **kw):
    space = NB201()
    return space.build(space.from_index(arch_index), rngs=nnx.Rngs(0), **kw)


def test_forward_shapes_and_jit_equals_eager():
    model = _init(cells_per_stage=1)
    model.eval()
    x = jax.random.normal(jax.random.key(1), (4, 32, 32, 3))
    eager = model(x)
    assert eager.shape == (4, 10)
    graphdef, state = nnx.split(model)
    jitted = jax.jit(lambda s, x: nnx.merge(graphdef, s)(x))(state, x)
    np.testing.assert_allclose(jitted, eager, rtol=1e-5, atol=1e-5)


def test_batch_norm_train_and_eval_modes():
    model = _init(cells_per_stage=1)
    x = jax.random.normal(jax.random.key(2), (8, 32, 32, 3)) * 3 + 1
    before = np.asarray(model.stem_bn.mean[...])
    model.train()
    train_out = model(x)
    after = np.asarray(model.stem_bn.mean[...])
    assert not np.allclose(before, after)  # running statistics moved
    model.eval()
    eval_out = model(x)
    np.testing.assert_array_equal(model.stem_bn.mean[...], after)  # and stay put in eval
    assert not np.allclose(train_out, eval_out)


@pytest.mark.multidevice
def test_sharded_forward_equals_single_device():
    assert jax.device_count() == 8
    model = _init(cells_per_stage=1)
    model.eval()
    graphdef, state = nnx.split(model)
    forward = jax.jit(lambda s, x: nnx.merge(graphdef, s)(x))
    x = jax.random.normal(jax.random.key(3), (16, 32, 32, 3))
    single = forward(state, x)
    mesh = Mesh(np.array(jax.devices()), ("batch",))
    xs = jax.device_put(x, NamedSharding(mesh, P("batch")))
    rep = jax.device_put(state, NamedSharding(mesh, P()))
    sharded = forward(rep, xs)
    assert len(sharded.sharding.device_set) == 8
    np.testing.assert_allclose(np.asarray(sharded), np.asarray(single), rtol=1e-5, atol=1e-5)


def test_network_rejects_bad_configuration():
    space = NB201()
    with pytest.raises(ValueError, match="`channels` must be an integer >= 1"):
        space.build(space.from_index(0), channels=0)
    with pytest.raises(ValueError, match="`widths` must have 3N\\+2"):
        NATSSizeNetwork((8, 16, 32))
    with pytest.raises(ValueError, match="arch"):
        space.build(jnp.zeros(6))
