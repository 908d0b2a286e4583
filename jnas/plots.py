"""Pictures of a search: α heatmaps over time, drawings of a cell, a search's fitness
over evaluations (matplotlib, PNG/SVG)."""

from __future__ import annotations

import pathlib
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_alpha(records: Sequence[dict], space: Any, path: str | pathlib.Path) -> None:
    """One heatmap per edge (NB201) or supernet slot (other spaces): softmax(α) of each
    candidate (rows: op names where the space has one per candidate) after each epoch."""
    plt = _pyplot()
    alpha = np.asarray([r["alpha"] for r in records], np.float64)  # [epochs, E, K]
    probs = np.exp(alpha - alpha.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    slots, k = alpha.shape[1:]
    edges: list[tuple[int, int]] = list(getattr(space, "edges", ()))
    titles = (
        [f"edge {i}->{j}" for i, j in edges]
        if len(edges) == slots
        else [f"slot {e}" for e in range(slots)]
    )
    names: list[str] = list(getattr(space, "ops", ()))
    names = names if len(names) == k else [str(c) for c in range(k)]
    cols = min(3, len(titles))
    rows = -(-len(titles) // cols)
    fig, axes = plt.subplots(
        rows, cols, figsize=(4.4 * cols, 2.4 * rows), squeeze=False, layout="constrained"
    )
    low, high = probs.min(), probs.max()  # α moves little early on: use the full colour range
    for e, ax in enumerate(axes.ravel()):
        if e >= len(titles):
            ax.axis("off")
            continue
        im = ax.imshow(
            probs[:, e].T,
            aspect="auto",
            vmin=low,
            vmax=high,
            cmap="viridis",
            interpolation="nearest",
        )
        ax.set_title(titles[e], fontsize=9)
        ax.set_yticks(range(k), names, fontsize=7)
        ax.set_xlabel("epoch", fontsize=8)
    fig.colorbar(im, ax=axes.ravel().tolist(), shrink=0.8, label="softmax(α)")
    fig.suptitle("architecture weights per edge over the search", fontsize=10)
    fig.savefig(path)
    plt.close(fig)


def plot_fitness(
    history: Sequence[Sequence[float]],
    path: str | pathlib.Path,
    *,
    target: float | None = None,
    title: str = "",
) -> None:
    """The best program's fitness on the search tasks and on unseen tasks against the
    programs evaluated (AutoML-Zero's `history` rows: [evaluations, held-out, search]),
    with the target as a dashed line."""
    plt = _pyplot()
    rows = np.asarray(history, np.float64).reshape(-1, 3)
    fig, ax = plt.subplots(figsize=(6.0, 3.6), layout="constrained")
    ax.plot(rows[:, 0], rows[:, 2], label="search tasks", drawstyle="steps-post")
    ax.plot(rows[:, 0], rows[:, 1], label="unseen tasks", drawstyle="steps-post")
    if target is not None:
        ax.axhline(target, color="grey", linestyle="--", linewidth=1, label="target")
    ax.set_xlabel("programs evaluated")
    ax.set_ylabel("fitness of the best so far")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    fig.savefig(path)
    plt.close(fig)


class Graph(NamedTuple):
    """A drawable DAG: node labels in topological order and labelled edges (i < j)."""

    title: str
    nodes: list[str]
    edges: list[tuple[int, int, str]]


def _chain(title: str, labels: list[str], first: str = "input", last: str = "output") -> Graph:
    nodes = [first, *labels, last]
    return Graph(title, nodes, [(i, i + 1, "") for i in range(len(nodes) - 1)])


def arch_graphs(space: Any, arch: Any) -> list[Graph]:
    """The graphs that picture `arch` of any jnas space, one per cell or motif.

    NB201: nodes and edge ops (`none` left out); NB101: the pruned cell, ops on nodes;
    DARTS: the normal and the reduction cell (two inputs per node, each with its op, and
    the concatenated output); Chain / Sequential / NATSSize: the chain of blocks, layers or
    widths; MemoryBank: each stage's blocks in order; Hierarchical: every motif of every level, edges
    naming the motif or primitive of the level below; NBNLP: the recurrent cell's nodes;
    DARTS recurrent: node 0 (from x and h), each node's input and activation, the mean.
    """
    from jnas import spaces

    if isinstance(space, spaces.NB201):
        ops = [space.ops[int(o)] for o in np.asarray(space.to_decisions(arch))]
        n = space.num_nodes
        nodes = ["in", *(str(k) for k in range(1, n - 1)), "out"]
        edges = [(i, j, op) for (i, j), op in zip(space.edges, ops, strict=True) if op != "none"]
        return [Graph(space.to_string(arch), nodes, edges)]
    if isinstance(space, spaces.NB101):
        matrix, names = space.spec(arch)
        edges = [(int(i), int(j), "") for i, j in zip(*np.nonzero(matrix), strict=True)]
        return [Graph("NAS-Bench-101 cell (pruned)", names, edges)]
    if isinstance(space, spaces.DARTS):
        graphs = []
        for c, kind in enumerate(("normal", "reduce")):
            nodes = ["c_{k-2}", "c_{k-1}", *(str(k) for k in range(space.num_nodes)), "c_{k}"]
            ops = np.asarray(arch.ops)[c].tolist()
            inputs = np.asarray(arch.inputs)[c].tolist()
            edges = [
                (src, 2 + e // 2, space.ops[op])
                for e, (op, src) in enumerate(zip(ops, inputs, strict=True))
            ]
            edges += [(2 + k, len(nodes) - 1, "") for k in range(space.num_nodes)]
            graphs.append(Graph(f"{kind} cell", nodes, edges))
        return graphs
    if isinstance(space, spaces.Chain):
        blocks = [f"k{b[0]}e{b[1]}" for b in space.blocks(arch) if b is not None]
        return [_chain(f"{len(blocks)} blocks (skipped ones left out)", blocks, "stem", "head")]
    if isinstance(space, spaces.Sequential):
        layers = space.to_string(arch).split("-")
        return [_chain(f"{len(layers)} layers", layers, "input", "softmax")]
    if isinstance(space, spaces.NATSSize):
        return [_chain("channels per layer", [f"C={w}" for w in space.widths(arch)])]
    if isinstance(space, spaces.MemoryBank):
        return [
            _chain(f"stage {s}: blocks (banks read, banks written, op)", blocks.split("-"))
            for s, blocks in enumerate(space.to_string(arch).split("/"))
        ]
    if isinstance(space, spaces.Hierarchical):
        graphs = []
        for level, motifs in enumerate(np.asarray(v) for v in arch.levels):
            below = (
                list(space.primitives)
                if level == 0
                else [f"m{level + 1}.{k}" for k in range(space.num_motifs[level - 1])]
            )
            for m, choices in enumerate(motifs.tolist()):
                edges = [
                    (i, j, below[c - 1])
                    for (i, j), c in zip(space.edges(level), choices, strict=True)
                    if c
                ]
                graphs.append(
                    Graph(
                        f"motif m{level + 2}.{m}",
                        [str(k) for k in range(space.num_nodes[level])],
                        edges,
                    )
                )
        return graphs
    if isinstance(space, spaces.NBNLP):
        return [_recipe_graph(space.recipe(arch))]
    if isinstance(space, spaces.DARTSRecurrent):
        pairs = space.genotype(arch)
        nodes = ["0 (x, h)", *(str(i + 1) for i in range(len(pairs))), "h (mean)"]
        edges = [(p, i + 1, op) for i, (op, p) in enumerate(pairs)]
        edges += [(i + 1, len(nodes) - 1, "") for i in range(len(pairs))]
        return [Graph("recurrent cell", nodes, edges)]
    raise TypeError(f"arch_graphs: no drawing for space {type(space).__name__}")


def _recipe_graph(recipe: dict[str, dict[str, Any]]) -> Graph:
    """A NAS-Bench-NLP recipe as a graph: the inputs (`x`, `h_prev_i`), then the nodes in
    topological order, each input edge labelled with the node's op."""
    sources = sorted({i for n in recipe.values() for i in n["input"] if i not in recipe})
    order: list[str] = []
    while len(order) < len(recipe):
        ready = [
            k
            for k in sorted(recipe)
            if k not in order and all(i in order or i in sources for i in recipe[k]["input"])
        ]
        if not ready:
            raise ValueError(f"arch_graphs: the recipe has a cycle: {recipe}")
        order.extend(ready)
    nodes = [*sources, *order]
    at = {name: i for i, name in enumerate(nodes)}
    edges = [
        (at[i], at[k], recipe[k]["op"].replace("activation_", ""))
        for k in order
        for i in recipe[k]["input"]
    ]
    return Graph("NAS-Bench-NLP cell", nodes, edges)


def _draw_graph(ax: Any, graph: Graph) -> None:
    xs = np.arange(len(graph.nodes)) * 2.0
    top = 0.4
    for i, j, label in graph.edges:
        rad = 0.0 if j == i + 1 else 0.12 + 0.06 * min(j - i, 6)
        ax.annotate(
            "",
            xy=(xs[j], 0),
            xytext=(xs[i], 0),
            arrowprops={
                "arrowstyle": "-|>",
                "connectionstyle": f"arc3,rad={-rad}",
                "color": "0.35",
                "shrinkA": 15,
                "shrinkB": 15,
            },
        )
        height = rad * (xs[j] - xs[i]) / 2
        top = max(top, height + 0.3)
        if label:
            ax.text(
                (xs[i] + xs[j]) / 2, height + 0.08, label, ha="center", fontsize=7, color="tab:blue"
            )
    for k, (x, label) in enumerate(zip(xs, graph.nodes, strict=True)):
        end = k in (0, len(xs) - 1)
        ax.text(
            x,
            0,
            label,
            ha="center",
            va="center",
            fontsize=7,
            zorder=4,
            bbox={"boxstyle": "round,pad=0.35", "fc": "tab:orange" if end else "0.88", "ec": "0.4"},
        )
    ax.set_xlim(-1.0, xs[-1] + 1.0)
    ax.set_ylim(-0.6, top)
    ax.axis("off")
    ax.set_title(graph.title, fontsize=8)


def title_lines(text: str, width_inches: float, fontsize: float = 8.0) -> list[str]:
    """`text` broken into lines that fit a figure `width_inches` wide at `fontsize`
    points (an architecture string can be longer than any figure: nothing is cut)."""
    per_line = max(20, int(width_inches * 72 / (0.62 * fontsize)))
    return [text[i : i + per_line] for i in range(0, len(text), per_line)] or [""]


def draw_cell(space: Any, arch: Any, path: str | pathlib.Path, *, title: str = "") -> None:
    """A drawing (PNG, SVG, PDF: by the suffix of `path`) of an architecture of any jnas
    space: one panel per graph of `arch_graphs` (NB201/NB101/DARTS cells, chains, motifs).
    """
    plt = _pyplot()
    graphs = arch_graphs(space, arch)
    width = min(30.0, 1.3 * max(len(g.nodes) for g in graphs) + 1.5)
    lines = title_lines(title or f"{type(space).__name__}: {space.to_string(arch)}", width)
    head = 0.16 * len(lines) + 0.15  # inches above the panels for the whole title
    height = 1.9 * len(graphs) + 0.4 + head
    fig, axes = plt.subplots(len(graphs), 1, figsize=(width, height), squeeze=False)
    for ax, graph in zip(axes[:, 0], graphs, strict=True):
        _draw_graph(ax, graph)
    fig.suptitle("\n".join(lines), fontsize=8)
    fig.tight_layout(rect=(0.0, 0.0, 1.0, 1.0 - head / height))
    fig.savefig(path)
    plt.close(fig)
