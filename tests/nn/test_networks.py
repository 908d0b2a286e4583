"""NB101, DARTS, Chain, Sequential and Hierarchical networks against published figures."""

import csv
import gzip

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jnas.nn import DARTSNetwork, count_flops, count_params, vertex_channels
from jnas.spaces import (
    DARTS,
    DARTS_V1,
    DARTS_V2,
    MOBILENET_V2_STAGES,
    NB101,
    Chain,
    Hierarchical,
    Sequential,
)


def _nb101_rows(path, n):
    with gzip.open(path, "rt") as f:
        return list(csv.DictReader(f))[:n]


def _check_nb101_params(rows):
    space = NB101()
    for r in rows:
        arch = space.from_string(r["adjacency_7x7_rowmajor"] + ":" + r["ops"])
        model = nnx.eval_shape(lambda arch=arch: space.build(arch))
        assert count_params(model) / 1e6 == pytest.approx(float(r["params_M_naslib"]), abs=1e-6), r


def test_nb101_params_equal_reference_counts(nb101_csv_path):
    """NASLib's PyTorch port of the NB101 network gives these counts for the subset."""
    _check_nb101_params(_nb101_rows(nb101_csv_path, 40))


@pytest.mark.slow
def test_nb101_params_equal_reference_counts_all_rows(nb101_csv_path):
    _check_nb101_params(_nb101_rows(nb101_csv_path, 500))


def test_nb101_vertex_channels_split_the_output():
    # three vertices feed the output: 128 = 43 + 43 + 42; vertex 1 feeds vertex 2 only
    m = np.array(
        [[0, 1, 0, 1, 0], [0, 0, 1, 0, 0], [0, 0, 0, 0, 1], [0, 0, 0, 0, 1], [0, 0, 0, 0, 0]]
    )
    assert vertex_channels(64, 128, m) == [64, 64, 64, 64, 128]
    m = np.array(
        [[0, 1, 1, 1, 0], [0, 0, 0, 0, 1], [0, 0, 0, 0, 1], [0, 0, 0, 0, 1], [0, 0, 0, 0, 0]]
    )
    assert vertex_channels(64, 128, m) == [64, 43, 43, 42, 128]


def test_nb101_forward_and_input_output_only_cell():
    space = NB101()
    arch = space.from_spec([[0, 1], [0, 0]], ["input", "output"])
    model = space.build(arch, stem_channels=8, cells_per_stack=1)
    assert model(jnp.ones((2, 32, 32, 3))).shape == (2, 10)


def test_darts_v2_has_the_published_3_3m_parameters():
    space = DARTS()
    v2 = space.from_string(DARTS_V2)  # concrete: parse outside the traced builder
    model = nnx.eval_shape(lambda: space.build(v2, auxiliary=True))
    params = count_params(model, exclude=("aux",)) / 1e6
    assert params == pytest.approx(3.3, abs=0.05)
    assert params == pytest.approx(3.349342, abs=1e-6)  # the DARTS code's own count
    assert count_params(model) > count_params(model, exclude=("aux",))
    arch_v1 = space.from_string(DARTS_V1)  # the repository's first-order genotype
    v1 = nnx.eval_shape(lambda: space.build(arch_v1))
    assert count_params(v1) < count_params(model, exclude=("aux",))  # fewer sep convs


def test_darts_search_depth_network_builds_from_any_genotype(key):
    space = DARTS()
    for k in jax.random.split(key, 3):
        arch = space.sample(k)
        model = space.build(arch, channels=4, num_cells=5)
        assert model(jnp.ones((2, 16, 16, 3))).shape == (2, 10)
    v2 = space.from_string(DARTS_V2)
    model = nnx.eval_shape(lambda: space.build(v2, channels=16, num_cells=8))
    assert count_params(model) < count_params(nnx.eval_shape(lambda: space.build(v2)))


def test_darts_auxiliary_head_and_drop_path_follow_the_mode():
    space = DARTS()
    model = space.build(
        space.from_string(DARTS_V2),
        channels=4,
        num_cells=5,
        auxiliary=True,
        drop_path=0.5,
        rngs=nnx.Rngs(0, dropout=1),
    )
    x = jax.random.normal(jax.random.key(0), (2, 32, 32, 3))
    logits, aux = model(x)
    assert logits.shape == aux.shape == (2, 10)
    model.eval()
    out1, out2 = model(x), model(x)
    assert out1.shape == (2, 10)
    np.testing.assert_array_equal(out1, out2)  # no drop path at evaluation


def test_darts_network_rejects_bad_configuration():
    genotype = ((("skip_connect", 0), ("skip_connect", 1)),) * 2
    with pytest.raises(ValueError, match="`drop_path`"):
        DARTSNetwork(genotype, drop_path=1.5)
    with pytest.raises(ValueError, match="`num_cells`"):
        DARTSNetwork(genotype, num_cells=2)


def test_chain_with_mobilenet_v2_blocks_is_mobilenet_v2():
    """All blocks k3 e6 at MobileNetV2's depths: torchvision's 3,504,872 parameters and
    300.8 M multiply-accumulates at 224x224."""
    space = Chain(stages=MOBILENET_V2_STAGES)
    arch = space.from_string("-".join(["k3e6"] * space.num_blocks))
    model = nnx.eval_shape(lambda: space.build(arch))
    assert count_params(model) == 3_504_872
    assert count_flops(model, (1, 224, 224, 3)) / 1e6 == pytest.approx(300.775, abs=0.01)


# The three networks ProxylessNAS found (Cai et al., ICLR 2019, Figure 4), block by block
# after the fixed expansion-1 block: (stem, first block, stages, head, blocks). The PyTorch
# port in osmr/imgclsmob (pytorchcv/models/proxylessnas.py) asserts these parameter counts
# (the paper rounds them: 4.1 M, 7.1 M, 4.4 M).
PROXYLESS_FOUND = {
    "mobile": (
        32, 16, ((32, 4, 2), (40, 4, 2), (80, 4, 2), (96, 4, 1), (192, 4, 2), (320, 1, 1)), 1280,
        "k5e3-k3e3-skip-skip-k7e3-k3e3-k5e3-k5e3-k7e6-k5e3-k5e3-k5e3-"
        "k5e6-k5e3-k5e3-k5e3-k7e6-k7e6-k7e3-k7e3-k7e6",
        4_080_512,
    ),
    "gpu": (
        40, 24, ((32, 4, 2), (56, 4, 2), (112, 4, 2), (128, 4, 1), (256, 4, 2), (432, 1, 1)), 1728,
        "k5e3-skip-skip-skip-k7e3-skip-skip-k3e3-k7e6-skip-skip-k5e3-"
        "k5e6-skip-k3e3-k5e3-k7e6-k7e6-k7e6-k5e6-k7e6",
        7_119_848,
    ),
    "cpu": (
        40, 24, ((32, 4, 2), (48, 4, 2), (88, 4, 2), (104, 4, 1), (216, 4, 2), (360, 1, 1)), 1432,
        "k3e6-k3e3-k3e3-k3e3-k3e6-k3e3-k3e3-k5e3-k3e6-skip-skip-k3e3-"
        "k5e6-k3e3-k3e3-k3e3-k5e6-k5e3-k5e3-k3e3-k5e6",
        4_361_648,
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(PROXYLESS_FOUND))
def test_chain_builds_the_networks_proxylessnas_found(name):
    """Kernel, expansion and skip per block, with the found networks' own widths: their
    published parameter counts exactly (MobileNetV2 above has only k3e6 and no skip)."""
    stem, first, stages, head, blocks, params = PROXYLESS_FOUND[name]
    space = Chain(stages=stages, stem_channels=stem, first_block_channels=first, head_channels=head)
    arch = space.from_string(blocks)
    assert count_params(nnx.eval_shape(lambda: space.build(arch))) == params


def test_chain_defaults_are_proxylessnas_search_space():
    """ProxylessNAS' ImageNet search (imagenet_arch_search.py): width_stages
    24,40,80,96,192,320, n_cell_stages 4,4,4,4,4,1, stride_stages 2,2,2,1,2,1, MBConv
    kernels 3/5/7 with expansions 3/6, a 32-channel stem, a 16-channel first block and a
    1280-channel feature mix; 21 searchable blocks, 15 of them skippable."""
    space = Chain()
    widths, depths, strides = zip(*space.stages, strict=True)
    assert widths == (24, 40, 80, 96, 192, 320)
    assert depths == (4, 4, 4, 4, 4, 1)
    assert strides == (2, 2, 2, 1, 2, 1)
    assert (space.kernels, space.expansions) == ((3, 5, 7), (3, 6))
    assert (space.stem_channels, space.first_block_channels, space.head_channels) == (
        32,
        16,
        1280,
    )
    assert space.num_blocks == 21
    assert int(space.skippable.sum()) == 15


def test_chain_skip_removes_blocks(key):
    space = Chain()
    keep = space.from_string("-".join(["k3e3"] * 21))
    skipped = space.from_string("-".join("skip" if s else "k3e3" for s in space.skippable))
    full = count_params(nnx.eval_shape(lambda: space.build(keep, num_classes=10)))
    short = count_params(nnx.eval_shape(lambda: space.build(skipped, num_classes=10)))
    assert short < full
    model = space.build(space.sample(key), num_classes=10, stem_stride=1)
    assert model(jnp.ones((2, 32, 32, 3))).shape == (2, 10)


def test_sequential_network_params_by_hand():
    space = Sequential()
    arch = space.from_string("C(3,64,1)-P(5,3)-C(1,128,1)-P(2,2)-FC(512)")
    model = space.build(arch, num_classes=10)
    expected = (
        (3 * 3 * 3 * 64 + 2 * 64) + (64 * 128 + 2 * 128) + (128 * 512 + 512) + (512 * 10 + 10)
    )
    assert count_params(model) == expected
    assert model(jnp.ones((2, 32, 32, 3))).shape == (2, 10)


def test_hierarchical_network_forward(key):
    space = Hierarchical()
    model = space.build(space.sample(key), channels=8)
    assert model(jnp.ones((2, 32, 32, 3))).shape == (2, 10)
    # a top motif that is a single identity-of-identity edge adds no parameters
    levels = (np.zeros((6, 6), np.int8), np.zeros((1, 10), np.int8))
    levels[0][:, 3] = 1  # every motif: edge 0 -> 3 is `identity`
    levels[1][0, 6] = 1  # cell: edge 0 -> 4 is motif 1
    from jnas.spaces import HierarchicalArch

    arch = HierarchicalArch(tuple(jnp.asarray(v) for v in levels))
    model = space.build(arch, channels=8)
    stem_and_reductions = (27 * 8 + 16) + (8 * 9 + 8 * 16 + 32) + (16 * 9 + 16 * 32 + 64)
    assert count_params(model) == stem_and_reductions + 32 * 10 + 10


def test_batch_stats_norm_normalises_like_numpy_and_rejects_a_scale_without_bias():
    """Batch statistics over N, H, W (NumPy's mean and biased variance), the affine
    pair applied per channel; a scale without its bias is a clear error, not a crash on
    None."""
    from jnas.nn._ops import batch_stats_norm

    x = np.random.default_rng(0).standard_normal((4, 3, 3, 2)).astype(np.float32)
    scale, bias = np.array([2.0, 0.5], np.float32), np.array([1.0, -1.0], np.float32)
    mean, var = x.mean((0, 1, 2)), x.var((0, 1, 2))
    expected = (x - mean) / np.sqrt(var + 1e-5) * scale + bias
    got = batch_stats_norm(jnp.asarray(x), 1e-5, jnp.asarray(scale), jnp.asarray(bias))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="`scale` and `bias`"):
        batch_stats_norm(jnp.asarray(x), 1e-5, jnp.asarray(scale))
