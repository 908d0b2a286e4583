"""Pictures of a search: α heatmaps over time and drawings of a cell (matplotlib, PNG/SVG)."""

from __future__ import annotations

import pathlib
from collections.abc import Sequence
from typing import Any

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_alpha(records: Sequence[dict], space: Any, path: str | pathlib.Path) -> None:
    """One heatmap per edge: softmax(α) of each op (rows) after each epoch (columns)."""
    plt = _pyplot()
    alpha = np.asarray([r["alpha"] for r in records], np.float64)  # [epochs, E, K]
    probs = np.exp(alpha - alpha.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    edges = getattr(space, "edges", [(0, e + 1) for e in range(alpha.shape[1])])
    cols = min(3, len(edges))
    rows = -(-len(edges) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.4 * cols, 2.4 * rows), squeeze=False,
                             layout="constrained")
    low, high = probs.min(), probs.max()  # α moves little early on: use the full colour range
    for e, ax in enumerate(axes.ravel()):
        if e >= len(edges):
            ax.axis("off")
            continue
        im = ax.imshow(probs[:, e].T, aspect="auto", vmin=low, vmax=high,
                       cmap="viridis", interpolation="nearest")
        ax.set_title(f"edge {edges[e][0]}->{edges[e][1]}", fontsize=9)
        ax.set_yticks(range(len(space.ops)), space.ops, fontsize=7)
        ax.set_xlabel("epoch", fontsize=8)
    fig.colorbar(im, ax=axes.ravel().tolist(), shrink=0.8, label="softmax(α)")
    fig.suptitle("architecture weights per edge over the search", fontsize=10)
    fig.savefig(path)
    plt.close(fig)


def draw_cell(space: Any, arch: Any, path: str | pathlib.Path, *, title: str = "") -> None:
    """A drawing of an NB201-style cell: nodes in a row, each edge labelled with its op
    (`none` edges left out)."""
    plt = _pyplot()
    ops = [space.ops[int(o)] for o in np.asarray(space.to_decisions(arch))]
    n = space.num_nodes
    fig, ax = plt.subplots(figsize=(1.9 * n + 1, 2.8))
    xs = np.arange(n) * 2.0
    for (i, j), op in zip(space.edges, ops, strict=True):
        if op == "none":
            continue
        rad = 0.25 * (j - i - 1) + 0.05 * (j - i)
        ax.annotate("", xy=(xs[j], 0), xytext=(xs[i], 0),
                    arrowprops={"arrowstyle": "-|>", "connectionstyle": f"arc3,rad={-rad}",
                                "color": "0.3", "shrinkA": 14, "shrinkB": 14})
        ax.text((xs[i] + xs[j]) / 2, rad * (xs[j] - xs[i]) / 2 + 0.08, op, ha="center",
                fontsize=7, color="tab:blue")
    for k, x in enumerate(xs):
        ax.add_patch(plt.Circle((x, 0), 0.3, color="tab:orange" if k in (0, n - 1) else
                                "0.85", zorder=3))
        ax.text(x, 0, "in" if k == 0 else ("out" if k == n - 1 else str(k)), ha="center",
                va="center", zorder=4, fontsize=8)
    ax.set_xlim(-0.6, xs[-1] + 0.6)
    ax.set_ylim(-0.5, 0.35 * n)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(title or space.to_string(arch), fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
