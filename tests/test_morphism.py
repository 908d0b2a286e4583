"""Network morphisms compute the same function in evaluation mode (max |d logits| <= 1e-5,
float32), batch norm on non-trivial running statistics included."""

import jax
import numpy as np
import pytest
from flax import nnx

from jnas import morphism
from jnas.spaces import Sequential

SPACE = Sequential(input_size=16)
ARCH = "C(3,64,1)-P(3,2)-C(1,128,1)-FC(128)"  # unequal pool sides and conv widths


def trained_like(bn=True, seed=0):
    """A network whose weights and batch-norm statistics are all non-trivial."""
    arch = SPACE.from_string(ARCH)
    model = SPACE.build(arch, batch_norm=bn, rngs=nnx.Rngs(seed))
    return arch, perturbed(model, seed, 0.1)


def perturbed(model, seed, scale):
    """`model` with noise on every weight and BN variances in [0.5, 2], in eval mode."""
    rng = np.random.default_rng(seed)
    for path, var in nnx.iter_graph(model):
        if isinstance(var, nnx.Param | nnx.BatchStat):
            v = np.asarray(var[...])
            if "var" in [str(p) for p in path]:
                var[...] = rng.uniform(0.5, 2.0, v.shape).astype(v.dtype)
            elif v.dtype == np.float32:
                var[...] = (v + rng.normal(0, scale, v.shape)).astype(v.dtype)
    model.eval()
    return model


def logits(model, x):
    model.eval()
    return np.asarray(model(x))


X = np.random.default_rng(1).normal(size=(4, 16, 16, 3)).astype(np.float32)


@pytest.mark.parametrize("bn", [True, False])
@pytest.mark.parametrize(
    ("name", "call"),
    [
        ("widen conv", lambda k, a, m, b: morphism.widen(k, SPACE, a, m, 0, 128, batch_norm=b)),
        ("widen 2nd conv", lambda k, a, m, b: morphism.widen(k, SPACE, a, m, 2, 256, batch_norm=b)),
        ("widen fc", lambda k, a, m, b: morphism.widen(k, SPACE, a, m, 3, 256, batch_norm=b)),
        ("deepen conv", lambda k, a, m, b: morphism.deepen(SPACE, a, m, 0, batch_norm=b)),
        ("deepen pool", lambda k, a, m, b: morphism.deepen(SPACE, a, m, 1, kernel=5, batch_norm=b)),
        ("deepen fc", lambda k, a, m, b: morphism.deepen(SPACE, a, m, 3, batch_norm=b)),
        ("grow kernel", lambda k, a, m, b: morphism.grow_kernel(SPACE, a, m, 2, 5, batch_norm=b)),
    ],
)
def test_morphisms_preserve_the_function(name, call, bn):
    arch, model = trained_like(bn)
    before = logits(model, X)
    new_arch, new = call(jax.random.key(0), arch, model, bn)
    assert SPACE.to_string(new_arch) != SPACE.to_string(arch)
    assert np.max(np.abs(logits(new, X) - before)) <= 1e-5 * max(1.0, np.max(np.abs(before)))
    assert np.max(np.abs(before)) > 0.1  # a real function, not all zeros


def test_widening_really_splits_units():
    """Without dividing the copies' outgoing weights the function changes: the test above
    would see it."""
    arch, model = trained_like()
    _, new = morphism.widen(jax.random.key(0), SPACE, arch, model, 3, 256)
    k = np.asarray(new.classifier.kernel[...])
    assert k.shape[0] == 256
    assert not np.allclose(k[:128], np.asarray(model.classifier.kernel[...]))


def test_inserted_conv_layer_is_the_identity_to_float_precision():
    """`deepen`'s conv layer (centre-identity kernel, batch norm with variance 1 - eps for
    the networks' eps = 1e-5) gives back its non-negative input to float32 rounding; the
    function test above allows 1e-5 and would miss a wrong eps (an error of 5e-6)."""
    arch, model = trained_like()
    _, new = morphism.deepen(SPACE, arch, model, 0)
    h = np.asarray(new.layers[0](X))
    assert h.min() >= 0
    assert h.max() > 0.1
    np.testing.assert_allclose(np.asarray(new.layers[1](h)), h, rtol=1e-6, atol=1e-7)


def copied_units(old, new):
    """Which of `old`'s columns (last axis) each extra column of `new` equals exactly."""
    n = old.shape[-1]
    np.testing.assert_array_equal(new[..., :n], old)  # the old units stay in place
    old2, new2 = old.reshape(-1, n), new.reshape(-1, new.shape[-1])[:, n:]
    hits = (old2[:, :, None] == new2[:, None, :]).all(0)  # (old unit, new unit)
    assert (hits.sum(0) == 1).all()  # each new unit is a copy of exactly one old unit
    return hits.argmax(0)


def test_new_units_copy_old_units_drawn_from_all_of_them():
    """Net2WiderNet's new units copy old ones drawn uniformly from every old unit (`key`),
    in `widen` and `widen_block`: over 8 keys, the first and last units are drawn and the
    mean draw is the middle unit's (sd of the mean about 1.2 units for the FC layer)."""

    def drawn(widened, read, model):
        """The old units copied over 8 keys; each key draws its own."""
        old = read(model)
        runs = [copied_units(old, read(widened(jax.random.key(s)))) for s in range(8)]
        assert len({tuple(r) for r in runs}) == 8
        return np.concatenate(runs)

    arch, model = trained_like()
    fc = drawn(  # 128 units
        lambda k: morphism.widen(k, SPACE, arch, model, 3, 256)[1],
        lambda m: np.asarray(m.layers[3].linear.kernel[...]),
        model,
    )
    assert (fc.min(), fc.max()) == (0, 127)
    assert abs(fc.mean() - 63.5) < 5

    space, c_arch, c_model = chain_model()
    hidden = drawn(  # block k5e3: 24 hidden channels
        lambda k: morphism.widen_block(
            k, space, c_arch, c_model, 2, 6, num_classes=5, stem_stride=1
        )[1],
        lambda m: np.asarray(m.blocks[1].expand.conv.kernel[...]),
        c_model,
    )
    assert (hidden.min(), hidden.max()) == (0, 23)
    assert abs(hidden.mean() - 11.5) < 2


def test_bad_morphisms_are_named():
    arch, model = trained_like()
    with pytest.raises(ValueError, match="must exceed"):
        morphism.widen(jax.random.key(0), SPACE, arch, model, 0, 64)
    with pytest.raises(ValueError, match="not a conv or FC"):
        morphism.widen(jax.random.key(0), SPACE, arch, model, 1, 128)
    with pytest.raises(ValueError, match="odd"):
        morphism.grow_kernel(SPACE, arch, model, 0, 4)
    a2, m2 = morphism.deepen(SPACE, arch, model, 3)
    with pytest.raises(ValueError, match="MetaQNN"):  # a third FC layer breaks the space's rules
        morphism.deepen(SPACE, a2, m2, 4)


def test_out_of_range_and_no_op_morphisms_are_named():
    """A layer or block index one past the end, a pool layer given to `grow_kernel`, a size
    equal to today's or outside the space: each refused by name, not an IndexError or a
    network that did not change."""
    arch, model = trained_like()  # 4 layers: conv, pool, conv, FC
    key = jax.random.key(0)
    with pytest.raises(ValueError, match="not a conv or FC"):
        morphism.widen(key, SPACE, arch, model, 4, 256)
    with pytest.raises(ValueError, match="must index a layer"):
        morphism.deepen(SPACE, arch, model, 4)
    for layer in (1, 4):
        with pytest.raises(ValueError, match="not a conv layer"):
            morphism.grow_kernel(SPACE, arch, model, layer, 5)
    with pytest.raises(ValueError, match="odd and > 3"):
        morphism.grow_kernel(SPACE, arch, model, 0, 3)
    even = Sequential(input_size=8, conv_kernels=(2, 3, 5))  # 'SAME' pads even kernels unevenly
    arch_even = even.from_string("C(2,64,1)-FC(128)")
    model_even = even.build(arch_even, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match=r"> 2 \(odd\)"):
        morphism.grow_kernel(even, arch_even, model_even, 0, 5)

    space, arch, model = chain_model()  # k3e3-skip-k5e3-k3e3-skip over kernels 3, 5, 7
    with pytest.raises(ValueError, match=r"`block` must be in \[0, 5\)"):
        morphism.grow_block_kernel(space, arch, model, 5, 7)
    for kernel, expansion in ((4, 3), (3, 4)):
        with pytest.raises(ValueError, match=r"\(kernel, expansion\) must be in"):
            morphism.insert_block(space, arch, model, 1, kernel, expansion)
    for expansion in (3, 4):  # today's; not one of the space's
        with pytest.raises(ValueError, match="must be one of"):
            morphism.widen_block(key, space, arch, model, 2, expansion)
    with pytest.raises(ValueError, match="above 5"):
        morphism.grow_block_kernel(space, arch, model, 2, 5)


@pytest.mark.parametrize(
    ("op", "edge"), [("nor_conv_1x1", 1), ("nor_conv_3x3", 1), ("nor_conv_3x3", 0)]
)
def test_nb201_none_edge_becomes_a_zero_initialised_conv(op, edge):
    from jnas.spaces import NB201

    space = NB201()
    first = "nor_conv_3x3" if edge == 1 else "none"
    arch = space.from_string(
        f"|{first}~0|+|none~0|skip_connect~1|+|avg_pool_3x3~0|none~1|nor_conv_1x1~2|"
    )
    build = {"channels": 4, "cells_per_stage": 1, "num_classes": 3}
    model = space.build(arch, rngs=nnx.Rngs(0), **build)
    x = np.random.default_rng(0).normal(size=(2, 8, 8, 3)).astype(np.float32)
    model.train()
    model(x)  # running statistics away from their initial values
    before = logits(model, x)
    new_arch, new = morphism.replace_none(space, arch, model, edge, op, **build)
    assert space.ops[int(new_arch.ops[edge])] == op
    assert np.max(np.abs(logits(new, x) - before)) <= 1e-5 * max(1.0, np.max(np.abs(before)))
    for bad in (2, 6):  # a skip_connect edge; one past the last edge
        with pytest.raises(ValueError, match="not `none`"):
            morphism.replace_none(space, arch, model, bad, **build)


def chain_model(seed=0):
    """A small Chain network (stride-1 stem) with non-trivial weights and statistics."""
    from jnas.spaces import Chain

    space = Chain(
        stages=((8, 2, 1), (12, 3, 2)),
        kernels=(3, 5, 7),
        expansions=(1, 3, 6),
        stem_channels=8,
        first_block_channels=8,
        head_channels=16,
    )
    arch = space.from_string("k3e3-skip-k5e3-k3e3-skip")
    model = space.build(arch, num_classes=5, stem_stride=1, rngs=nnx.Rngs(seed))
    return space, arch, perturbed(model, seed, 0.2)


XC = np.random.default_rng(2).normal(size=(3, 8, 8, 3)).astype(np.float32)


@pytest.mark.parametrize(
    ("name", "call", "want"),
    [
        (
            "insert skipped block",
            lambda k, s, a, m: morphism.insert_block(
                s, a, m, 1, 5, 6, num_classes=5, stem_stride=1
            ),
            "k3e3-k5e6-k5e3-k3e3-skip",
        ),
        (
            "insert last block",
            lambda k, s, a, m: morphism.insert_block(
                s, a, m, 4, 3, 1, num_classes=5, stem_stride=1
            ),
            "k3e3-skip-k5e3-k3e3-k3e1",
        ),
        (
            "widen block",
            lambda k, s, a, m: morphism.widen_block(k, s, a, m, 2, 6, num_classes=5, stem_stride=1),
            "k3e3-skip-k5e6-k3e3-skip",
        ),
        (
            "grow block kernel",
            lambda k, s, a, m: morphism.grow_block_kernel(
                s, a, m, 3, 7, num_classes=5, stem_stride=1
            ),
            "k3e3-skip-k5e3-k7e3-skip",
        ),
    ],
)
def test_chain_morphisms_preserve_the_function(name, call, want):
    space, arch, model = chain_model()
    before = logits(model, XC)
    new_arch, new = call(jax.random.key(0), space, arch, model)
    assert space.to_string(new_arch) == want
    assert np.max(np.abs(logits(new, XC) - before)) <= 1e-5 * max(1.0, np.max(np.abs(before)))
    assert np.std(before) > 0.1
    # the changed block is really there and really new (not the parent's weights reused)
    if name.startswith("insert"):
        assert len(new.blocks) == len(model.blocks) + 1
    if name == "widen block":
        assert np.asarray(new.blocks[1].expand.conv.kernel[...]).shape[-1] == 48


def test_inserted_block_learns_from_zero_and_bad_chain_morphisms_are_named():
    """The inserted branch's projection scale starts at 0 but gets a gradient, so it
    can grow; wrong calls name what is wrong."""
    space, arch, model = chain_model()
    _, new = morphism.insert_block(space, arch, model, 1, 3, 3, num_classes=5, stem_stride=1)
    new.train()

    def loss(m):
        return (m(XC) ** 2).mean()

    grads = nnx.grad(loss)(new)
    assert float(np.abs(np.asarray(grads.blocks[1].project.bn.scale[...])).max()) > 0
    with pytest.raises(ValueError, match="not skipped"):
        morphism.insert_block(space, arch, model, 0, 3, 3)
    a2, m2 = morphism.insert_block(space, arch, model, 1, 3, 1, num_classes=5, stem_stride=1)
    with pytest.raises(ValueError, match="expansion-1"):
        morphism.widen_block(jax.random.key(0), space, a2, m2, 1, 6, num_classes=5, stem_stride=1)
    with pytest.raises(ValueError, match="above 5"):
        morphism.grow_block_kernel(space, arch, model, 2, 3)
    with pytest.raises(ValueError, match="Chain"):
        morphism.insert_block(SPACE, arch, model, 1, 3, 3)
