"""Drawings of architectures of every space, and the α heatmap."""

import jax
import numpy as np
import pytest

from jnas import plots, spaces
from jnas.commands._common import SPACE_NAMES, make_space
from jnas.spaces._darts import DARTS_V2


def test_nb201_graph_has_one_labelled_edge_per_op_other_than_none():
    space = spaces.NB201()
    arch = space.from_string(
        "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|avg_pool_3x3~0|none~1|nor_conv_1x1~2|"
    )
    (graph,) = plots.arch_graphs(space, arch)
    assert graph.nodes == ["in", "1", "2", "out"]
    assert graph.edges == [
        (0, 1, "nor_conv_3x3"),
        (1, 2, "skip_connect"),
        (0, 3, "avg_pool_3x3"),
        (2, 3, "nor_conv_1x1"),
    ]


def test_darts_graphs_are_the_genotypes_cells():
    space = spaces.DARTS()
    normal, reduce = plots.arch_graphs(space, space.from_string(DARTS_V2))
    assert normal.nodes == ["c_{k-2}", "c_{k-1}", "0", "1", "2", "3", "c_{k}"]
    # DARTS-V2's normal cell: node 0 <- sep_conv_3x3(c_{k-2}), sep_conv_3x3(c_{k-1}); ...
    assert normal.edges[:2] == [(0, 2, "sep_conv_3x3"), (1, 2, "sep_conv_3x3")]
    assert normal.edges[7] == (2, 5, "dil_conv_3x3")
    assert normal.edges[8:] == [(k, 6, "") for k in range(2, 6)]  # concatenated output
    assert reduce.edges[0] == (0, 2, "max_pool_3x3")
    assert len(reduce.edges) == 12


def test_darts_recurrent_graph_is_the_genotype():
    space = spaces.DARTSRecurrent()
    # DARTS-V2's recurrent genotype (rnn/genotypes.py), written out by hand
    arch = space.from_string(
        "Genotype(recurrent=[('sigmoid', 0), ('relu', 1), ('relu', 1), ('identity', 1), "
        "('tanh', 2), ('sigmoid', 5), ('tanh', 3), ('relu', 5)], concat=range(1, 9))"
    )
    (graph,) = plots.arch_graphs(space, arch)
    assert graph.nodes == ["0 (x, h)", *"12345678", "h (mean)"]
    assert graph.edges[:3] == [(0, 1, "sigmoid"), (1, 2, "relu"), (1, 3, "relu")]
    assert graph.edges[7] == (5, 8, "relu")
    assert graph.edges[8:] == [(k, 9, "") for k in range(1, 9)]  # the mean of nodes 1..8


def test_nb101_graph_is_the_pruned_spec():
    space = spaces.NB101()
    arch = space.sample(jax.random.key(4))
    matrix, names = space.spec(arch)
    (graph,) = plots.arch_graphs(space, arch)
    assert graph.nodes == names
    assert len(graph.edges) == int(matrix.sum())
    assert all(matrix[i, j] for i, j, _ in graph.edges)


def test_chains_and_motifs():
    chain = spaces.Chain()
    arch = chain.sample(jax.random.key(1))
    (graph,) = plots.arch_graphs(chain, arch)
    kept = [b for b in chain.blocks(arch) if b is not None]
    assert len(graph.nodes) == len(kept) + 2
    assert graph.edges == [(i, i + 1, "") for i in range(len(kept) + 1)]
    nats = spaces.NATSSize()
    (graph,) = plots.arch_graphs(nats, nats.from_string("8:16:24:32:64"))
    assert graph.nodes[1:-1] == ["C=8", "C=16", "C=24", "C=32", "C=64"]
    hier = spaces.Hierarchical()
    harch = hier.sample(jax.random.key(2))
    graphs = plots.arch_graphs(hier, harch)
    assert len(graphs) == sum(hier.num_motifs)  # 6 level-2 motifs and the level-3 one
    level2 = np.asarray(harch.levels[0])
    for m, graph in enumerate(graphs[:6]):
        assert len(graph.edges) == int((level2[m] > 0).sum())
        assert all(label in hier.primitives for *_, label in graph.edges)
    assert all(label.startswith("m2.") for *_, label in graphs[-1].edges)


@pytest.mark.parametrize("name", SPACE_NAMES)
@pytest.mark.parametrize("suffix", [".png", ".svg"])
def test_draw_cell_writes_a_picture_for_every_space(tmp_path, name, suffix):
    space = make_space(name)
    path = tmp_path / f"{name}{suffix}"
    plots.draw_cell(space, space.sample(jax.random.key(0)), path)
    head = path.read_bytes()[:64]
    assert head.startswith(b"\x89PNG") if suffix == ".png" else b"<svg" in path.read_bytes()
    assert path.stat().st_size > 5_000, "an empty figure"


def test_arch_graphs_rejects_an_unknown_space():
    with pytest.raises(TypeError, match="no drawing for space"):
        plots.arch_graphs(object(), None)


def test_a_long_architecture_title_is_wrapped_not_cut():
    from jnas.plots import title_lines
    from jnas.spaces import DARTS

    text = "DARTS: " + DARTS().to_string(DARTS().sample(jax.random.key(0)))
    assert len(text) > 160  # the length the drawings cut titles at before
    lines = title_lines(text, 8.0)
    assert "".join(lines) == text
    assert len(lines) > 1
    assert max(len(line) for line in lines) <= int(8.0 * 72 / (0.62 * 8.0))


@pytest.mark.parametrize("name", ["nb201", "memory_bank"])
def test_alpha_heatmaps_for_edges_and_for_supernet_slots(tmp_path, name):
    space = make_space(name)
    e, k = space.supernet_shape
    rng = np.random.default_rng(0)
    records = [{"alpha": rng.normal(size=(e, k)).tolist()} for _ in range(3)]
    plots.plot_alpha(records, space, tmp_path / "alpha.png")
    assert (tmp_path / "alpha.png").read_bytes()[:4] == b"\x89PNG"
