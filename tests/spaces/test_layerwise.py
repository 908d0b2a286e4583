"""Chain (ProxylessNAS), Sequential (MetaQNN) and Hierarchical (HNAS) spaces."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jnas.spaces import (
    Chain,
    Hierarchical,
    HierarchicalArch,
    Sequential,
    SequentialArch,
)


def test_chain_skip_only_where_residual():
    space = Chain()
    assert space.num_blocks == 21
    skippable = space.skippable
    assert not skippable[0]
    assert not skippable[4]
    assert skippable[1]
    archs = jax.vmap(space.sample)(jax.random.split(jax.random.key(0), 500))
    skipped = np.asarray(archs.ops) == space.skip
    assert skipped.any()
    assert not skipped[:, ~skippable].any()
    text = "-".join(["skip"] + ["k3e3"] * 20)
    with pytest.raises(ValueError, match="skip"):
        space.from_string(text)


@pytest.mark.parametrize(
    ("kwargs", "arg"),
    [
        ({"stages": ()}, "stages"),  # empty
        ({"stages": [(24, 4, 2)]}, "stages"),  # a list, not a tuple
        ({"stages": ((24, 4),)}, "stages"),  # no stride
        ({"stages": ((0, 4, 2),)}, "stages"),  # no channels
        ({"stages": ((24, 4.0, 2),)}, "stages"),  # a float depth
        ({"stages": ((24, 4, 3),)}, "stages"),  # stride 3
        ({"kernels": ()}, "kernels"),
        ({"kernels": (3, 3)}, "kernels"),  # repeated
        ({"kernels": (-1, 3)}, "kernels"),  # odd but not positive
        ({"kernels": (3, 4)}, "kernels"),  # even
        ({"expansions": [3, 6]}, "expansions"),
        ({"expansions": (0, 6)}, "expansions"),
        ({"stem_channels": 0}, "stem_channels"),
        ({"head_channels": 0}, "head_channels"),
    ],
)
def test_chain_rejects_each_bad_setting_alone(kwargs, arg):
    """Each check on its own (one bad value, the rest ProxylessNAS' defaults), named."""
    with pytest.raises(ValueError, match=f"Chain: `{arg}` must be"):
        Chain(**kwargs)
    ok = {"stages": ((1, 1, 1),), "kernels": (1,), "expansions": (1,), "stem_channels": 1}
    assert Chain(**ok).size == 1  # the smallest allowed values are allowed


def test_chain_validity_and_neighbours_by_hand():
    """On a two-stage chain (blocks 0 and 2 open a stage): a block is valid with any
    kernel x expansion choice, `skip` only where it may be skipped, nothing else (-1,
    past skip); the neighbours are every other allowed choice of one block (the `skip`
    moves included), and the one-hot has kernels x expansions + 1 columns."""
    space = Chain(stages=((8, 2, 2), (16, 2, 1)), kernels=(3, 5), expansions=(1, 2, 3))
    assert space.skip == 6
    arch = space.from_string("k3e1-k5e3-k5e2-skip")
    ops = np.asarray(arch.ops)
    for block in range(4):
        for value in range(-1, 9):
            changed = ops.copy()
            changed[block] = value
            want = 0 <= value < 6 or (value == 6 and block in (1, 3))
            got = bool(space.is_valid(type(arch)(jnp.asarray(changed, jnp.int8))))
            assert got == want, (block, value)
    batch, mask = space.neighbors(arch)
    got = {tuple(row) for row in np.asarray(batch.ops)[np.asarray(mask)]}
    want = set()
    for block, allowed in enumerate((6, 7, 6, 7)):
        for value in range(allowed):
            if value != ops[block]:
                changed = ops.copy()
                changed[block] = value
                want.add(tuple(changed))
    assert got == want
    assert int(np.asarray(mask).sum()) == len(want) == 5 + 6 + 5 + 6
    assert space.one_hot(arch).shape == (4, 7)


def test_chain_size_counts_choices():
    space = Chain(stages=((16, 2, 1),), kernels=(3,), expansions=(1, 2))
    assert space.size == 2 * 3  # first block: 2 choices; second: 2 + skip


def _seq(space, text):
    return space.from_string(text)


def test_sequential_rules():
    space = Sequential()
    ok = "C(3,64,1)-P(5,3)-C(1,128,1)-P(2,2)-FC(512)-FC(128)"  # 32 -> 10 -> 5: fc allowed
    assert space.to_string(_seq(space, ok)) == ok
    for bad, _why in [
        ("P(2,2)", "first layer conv"),  # must start with conv
        ("C(3,64,1)-P(2,2)-P(2,2)", "pool after pool"),  # no consecutive pooling
        ("C(3,64,1)-FC(512)", "fc at size 32"),  # fc only on small maps
        ("C(3,64,1)-P(5,3)-P(2,2)", "pool after pool"),
        ("C(3,64,1)-P(5,3)-FC(512)-C(3,64,1)", "conv after fc"),
        ("C(3,64,1)-P(5,3)-FC(512)-FC(512)-FC(512)", "three fc"),
    ]:
        with pytest.raises(ValueError, match="MetaQNN"):
            _seq(space, bad)
    # padding must be terminal once the network ended
    tokens = np.zeros(space.max_layers, np.int8)
    tokens[0] = 1
    tokens[2] = 1
    assert not bool(space.is_valid(SequentialArch(jnp.asarray(tokens))))


def test_sequential_size_by_brute_force_on_a_tiny_space():
    space = Sequential(
        max_layers=3,
        conv_kernels=(1, 3),
        conv_filters=(8,),
        pools=((2, 2),),
        fc_units=(4,),
        max_fc=1,
        fc_max_size=2,
        input_size=4,
    )
    import itertools

    count = sum(
        bool(space.is_valid(SequentialArch(jnp.asarray(t, jnp.int8))))
        for t in itertools.product(range(space.num_tokens), repeat=3)
    )
    assert space.size == count


def _metaqnn_valid(space, tokens):
    """MetaQNN's rules in plain Python (the module docstring's list): the first layer a
    conv ('SAME': ceil(size / stride)); pooling ('VALID': (size - k) // s + 1) not first,
    not after pooling or fc, only while the map is at least the kernel; fc not first, only
    at size <= fc_max_size, at most max_fc in a row; nothing but fc after fc; terminal
    padding to the end."""
    size, prev, fc_run, ended = space.input_size, None, 0, False
    for i, t in enumerate(tokens):
        layer = space.tokens[t]
        if layer[0] == "terminal":
            if i == 0:
                return False
            ended = True
            continue
        if ended:
            return False
        if layer[0] == "conv":
            if prev == "fc":
                return False
            size = math.ceil(size / layer[3])
        elif layer[0] == "pool":
            if i == 0 or prev in ("pool", "fc") or size < layer[1]:
                return False
            size = (size - layer[1]) // layer[2] + 1
        else:
            if i == 0 or size > space.fc_max_size or fc_run >= space.max_fc:
                return False
        fc_run = fc_run + 1 if layer[0] == "fc" else 0
        prev = layer[0]
    return True


@pytest.mark.parametrize(
    ("input_size", "fc_max_size", "max_fc"), [(5, 2, 2), (7, 3, 2), (5, 2, 1), (3, 3, 2)]
)
def test_sequential_rules_and_size_against_python_on_a_strided_space(
    input_size, fc_max_size, max_fc
):
    """Every sequence of a small space with strided convolutions, two pools and an odd
    input (so ceil and floor differ): `is_valid` and the counted `size` against the rules
    written out in Python."""
    space = Sequential(
        max_layers=4,
        conv_kernels=(1, 3),
        conv_filters=(8,),
        conv_strides=(1, 2),
        pools=((2, 2), (3, 1)),
        fc_units=(4,),
        max_fc=max_fc,
        fc_max_size=fc_max_size,
        input_size=input_size,
    )
    import itertools

    seqs = np.asarray(list(itertools.product(range(space.num_tokens), repeat=4)), np.int8)
    got = np.asarray(jax.jit(jax.vmap(space.is_valid))(SequentialArch(jnp.asarray(seqs))))
    want = np.asarray([_metaqnn_valid(space, t.tolist()) for t in seqs])
    np.testing.assert_array_equal(got, want)
    assert space.size == want.sum()
    assert 50 < want.sum() < len(seqs)
    # a token outside the vocabulary, anywhere, is invalid
    good = seqs[np.flatnonzero(want)[-1]]
    for i, bad in itertools.product(range(4), (-1, space.num_tokens)):
        tokens = good.copy()
        tokens[i] = bad
        assert not bool(space.is_valid(SequentialArch(jnp.asarray(tokens))))


def test_hierarchical_size_by_brute_force_on_a_tiny_space():
    space = Hierarchical(primitives=("identity", "max_pool_3x3"), num_nodes=(3,), num_motifs=(1,))
    import itertools

    count = sum(
        bool(space.is_valid(HierarchicalArch((jnp.asarray([v], jnp.int8),))))
        for v in itertools.product(range(3), repeat=3)
    )
    assert space.size == count == 2 * 9 + 2 * 2  # edge 0->2, or 0->1->2 without it


def test_hierarchical_rejects_disconnected_motif():
    space = Hierarchical()
    arch = space.sample(jax.random.key(0))
    levels = list(arch.levels)
    levels[1] = jnp.zeros_like(levels[1])  # the top motif has no edges
    with pytest.raises(ValueError, match="path from input"):
        space.validate(HierarchicalArch(tuple(levels)))


def test_sequential_sample_is_uniform_over_the_allowed_tokens():
    """MetaQNN's random exploration: the first layer uniform over the 12 convolutions (no
    terminal, pool or fc first); after a stride-1 conv on 32x32 the second uniform over
    terminal, the 12 convolutions and the 3 pools (fc only at size <= 8): chi-square tests
    over 4,000 samples."""
    from scipy import stats

    space = Sequential()
    tokens = np.asarray(
        jax.jit(jax.vmap(space.sample))(jax.random.split(jax.random.key(0), 4000)).tokens
    )
    convs = [i for i, t in enumerate(space.tokens) if t[0] == "conv"]
    pools = [i for i, t in enumerate(space.tokens) if t[0] == "pool"]
    assert (len(convs), len(pools)) == (12, 3)
    first = np.bincount(tokens[:, 0], minlength=space.num_tokens)
    assert first[convs].sum() == len(tokens)
    assert stats.chisquare(first[convs]).pvalue > 1e-3
    second = np.bincount(tokens[:, 1], minlength=space.num_tokens)
    allowed = [0, *convs, *pools]
    assert second[allowed].sum() == len(tokens)
    assert stats.chisquare(second[allowed]).pvalue > 1e-3


def test_chain_sample_is_uniform_over_each_blocks_choices():
    """Six kernel x expansion choices where a block opens a stage, seven (skip too)
    elsewhere, each equally likely: chi-square tests over 3,000 samples per block."""
    from scipy import stats

    space = Chain()
    ops = np.asarray(jax.vmap(space.sample)(jax.random.split(jax.random.key(1), 3000)).ops)
    for block, skippable in enumerate(space.skippable):
        counts = np.bincount(ops[:, block], minlength=7)
        choices = 7 if skippable else 6
        assert counts[choices:].sum() == 0
        assert stats.chisquare(counts[:choices]).pvalue > 1e-4, (block, counts)


def test_sequential_layer_rules_walk_by_hand():
    """The state machine MetaQNN's agent walks (`start_state`, `next_state`,
    `allowed_next`, `state_size`), along C(3,64,1)-P(5,3)-C(1,128,1)-P(2,2)-FC(512)-FC(128)
    on 32x32: the map sizes 32, 10, 10, 5, 5, 5 and the layers allowed after each, derived
    from MetaQNN's rules by hand."""
    space = Sequential()
    kinds = np.asarray([t[0] for t in space.tokens])
    conv, pool, fc = (np.flatnonzero(kinds == k).tolist() for k in ("conv", "pool", "fc"))
    text = "C(3,64,1)-P(5,3)-C(1,128,1)-P(2,2)-FC(512)-FC(128)"
    tokens = np.asarray(space.from_string(text).tokens)[:6]
    allowed_after = [
        [0, *conv, *pool],  # conv at 32: no fc above 8x8
        [0, *conv],  # pool: no pool after pool, 10 > 8 still
        [0, *conv, *pool],  # conv at 10: the 5x5 pool fits
        [0, *conv, *fc],  # pool at 5: fc allowed, no pool
        [0, *fc],  # one fc: only fc or the end
        [0],  # two fc: the end
    ]
    state = space.start_state()
    np.testing.assert_array_equal(np.flatnonzero(space.allowed_next(state)), conv)
    assert int(space.state_size(state)) == 32
    for token, size, allowed in zip(tokens, (32, 10, 10, 5, 5, 5), allowed_after, strict=True):
        state = space.next_state(state, token)
        assert int(space.state_size(state)) == size
        np.testing.assert_array_equal(np.flatnonzero(space.allowed_next(state)), sorted(allowed))
    state = space.next_state(state, 0)  # after the end, only padding
    np.testing.assert_array_equal(np.flatnonzero(space.allowed_next(state)), [0])


def test_hierarchical_two_levels_by_hand():
    """Two levels (2 primitives; two 3-node motifs, then one 3-node cell over them): each
    edge is `none` or one of the level below, 3 choices at both levels. A 3-node motif
    with k non-`none` choices is connected in k + 3k^2 + k^3 ways (0->2 alone, 0->2 with
    one other edge, 0->1->2 alone, all three), so the size is 22^2 * 22 — and `is_valid`
    on all 3^9 arrays agrees."""
    import itertools

    space = Hierarchical(
        primitives=("identity", "max_pool_3x3"), num_nodes=(3, 3), num_motifs=(2, 1)
    )
    assert (space.num_choices(0), space.num_choices(1)) == (3, 3)
    assert space.decision_sizes == (3,) * 9
    k = 2
    assert space.size == (k + 3 * k**2 + k**3) ** 2 * (k + 3 * k**2 + k**3) == 10648
    every = np.asarray(list(itertools.product(range(3), repeat=9)), np.int8)
    arch = HierarchicalArch(
        (jnp.asarray(every[:, :6].reshape(-1, 2, 3)), jnp.asarray(every[:, 6:].reshape(-1, 1, 3)))
    )
    assert int(jax.jit(jax.vmap(space.is_valid))(arch).sum()) == space.size
    # a value outside [0, 3) on any edge of either level is refused
    ok = HierarchicalArch((jnp.full((2, 3), 1, jnp.int8), jnp.full((1, 3), 1, jnp.int8)))
    assert bool(space.is_valid(ok))
    for level, bad in itertools.product(range(2), (-1, 3)):
        levels = list(ok.levels)
        levels[level] = levels[level].at[0, 1].set(bad)
        assert not bool(space.is_valid(HierarchicalArch(tuple(levels))))
    # HNAS' defaults: 6 primitives and 6 motifs, so 7 choices per edge at both levels
    default = Hierarchical()
    assert (default.num_choices(0), default.num_choices(1)) == (7, 7)
    assert len(default.decision_sizes) == 6 * 6 + 10
