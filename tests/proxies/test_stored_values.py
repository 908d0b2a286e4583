"""Data-free proxies on NAS-Bench-Suite-Zero's NB101 cells against the values it stores
(NASLib's PyTorch networks): parameter counts equal, SynFlow and the l2 norm rank the same.
The whole subsets: `benchmarks/zero_cost_stored.py` (Spearman 0.985 / 0.947 on 100 cells)."""

import csv
import gzip

import jax
import numpy as np
from flax import nnx
from scipy import stats

from jnas import proxies
from jnas.nn import count_params, without_batch_norm
from jnas.spaces import NB101


def test_nb101_cells_match_the_stored_counts_and_synflow_ranks(nb101_csv_path):
    with gzip.open(nb101_csv_path, "rt") as f:
        rows = list(csv.DictReader(f))[:6]
    space = NB101()
    ours, stored = [], []
    for r in rows:
        names = r["ops"].split("|")
        m = np.frombuffer(r["adjacency_7x7_rowmajor"].encode(), np.uint8).reshape(7, 7) - 48
        model = space.build(space.from_spec(m, names), rngs=nnx.Rngs(0))
        assert count_params(model) == round(float(r["params_M_naslib"]) * 1e6)
        model.eval()
        graph, state = nnx.split(model)
        with jax.enable_x64(True), without_batch_norm():
            params = jax.tree.map(lambda a: np.asarray(a, np.float64), state)
            score = proxies.synflow(
                lambda p, x, graph=graph: nnx.merge(graph, p)(x), params, (1, 32, 32, 3)
            )
        ours.append(float(score))
        stored.append(float(r["zc_synflow"]))
    assert stats.spearmanr(ours, stored)[0] > 0.8
