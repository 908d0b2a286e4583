"""NASH hill climbing: children inherit their parent's function (with a zero learning rate
they score exactly the parent); compute is counted; morphisms drawn stay in the space."""

import jax
import pytest

from jnas.data import digits
from jnas.spaces import Sequential
from jnas.train import TrainConfig, nash, random_morphism

SPACE = Sequential(input_size=16, conv_filters=(8, 16), fc_units=(16, 32), conv_kernels=(1, 3))
START = "C(3,8,1)-P(2,2)-C(3,16,1)-P(2,2)-FC(16)"


@pytest.fixture(scope="module")
def data():
    return digits(jax.random.key(0), size=16, channels=3)


def run(data, inherit, lr):
    return nash(
        jax.random.key(1),
        SPACE,
        SPACE.from_string(START),
        data,
        steps=1,
        children=2,
        max_morphisms=2,
        parent_config=TrainConfig(epochs=2, batch_size=64, lr=0.5, augment=False),
        child_config=TrainConfig(epochs=1, batch_size=64, lr=lr, augment=False),
        inherit=inherit,
        batch_norm=False,
    )


def test_children_inherit_the_parents_function(data):
    frozen = run(data, inherit=True, lr=0.0)
    assert [h["epochs"] for h in frozen] == [2, 4]
    # morphisms preserve the function and a zero learning rate keeps it: a tie, kept
    assert frozen[1]["valid_acc"] == frozen[0]["valid_acc"]
    assert frozen[1]["arch"] != START


def test_random_morphism_stays_in_the_space():
    from flax import nnx

    arch = SPACE.from_string(START)
    model = SPACE.build(arch, batch_norm=False, rngs=nnx.Rngs(0))
    for i in range(6):
        arch, model, what = random_morphism(jax.random.key(i), SPACE, arch, model, batch_norm=False)
        SPACE.validate(arch)
        assert what.split()[0] in ("widen", "deepen", "grow_kernel")
