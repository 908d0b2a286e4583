"""SMAC: its forest and expected improvement, not chance, make it beat random search on
the NB201 protocol (with the model off it is random search)."""

import numpy as np
import pytest

from jnas import bench, search
from jnas.spaces import NB201


def test_smac_beats_random_search_and_without_its_model_is_random_search(
    nb201_table, key, run_bound
):
    obj = bench.objective(nb201_table, dataset="cifar10-valid", metric="valid_acc", epochs=12)
    final = {}
    for name, searcher in (
        ("rs", search.random_search(NB201())),
        (
            "smac",
            search.smac(NB201(), trees=5, depth=5, num_random=32, local_starts=4, local_steps=3),
        ),
        ("no model", search.smac(NB201(), trees=2, depth=2, random_fraction=1.0)),
    ):
        sim = bench.simulate(
            searcher,
            obj,
            key=key,
            num_seeds=48,
            budget_s=12000,
            chunk=48,
            compiler_options=run_bound,
        )
        final[name] = sim.report(
            nb201_table, dataset="cifar10-valid", metric="valid_acc", epochs=12
        )[:, -1]
    t, _ = bench.welch_test(final["smac"], final["rs"])
    assert t > 3, (t, final["smac"].mean(), final["rs"].mean())
    t_off, _ = bench.welch_test(final["no model"], final["rs"])
    assert abs(t_off) < 3, t_off
    assert np.isfinite(final["smac"]).all()
    with pytest.raises(ValueError, match="random_fraction"):
        search.smac(NB201(), random_fraction=2.0)
