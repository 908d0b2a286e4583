"""TPE as a single-fidelity searcher: its model, not chance, makes it beat random search
on the NB201 protocol (with the model off it is random search)."""

import numpy as np
import pytest

from jnas import bench, search
from jnas.spaces import NB201


def test_tpe_beats_random_search_and_without_its_model_is_random_search(
    nb201_table, key, run_bound
):
    obj = bench.objective(nb201_table, dataset="cifar10-valid", metric="valid_acc", epochs=12)
    final = {}
    for name, searcher in (
        ("rs", search.random_search(NB201())),
        ("tpe", search.tpe(NB201())),
        ("no model", search.tpe(NB201(), random_fraction=1.0)),
    ):
        sim = bench.simulate(
            searcher, obj, key=key, num_seeds=50, budget_s=12000, compiler_options=run_bound
        )
        final[name] = sim.report(
            nb201_table, dataset="cifar10-valid", metric="valid_acc", epochs=12
        )[:, -1]
    t, _ = bench.welch_test(final["tpe"], final["rs"])
    assert t > 3, (final["tpe"].mean(), final["rs"].mean())
    t_off, _ = bench.welch_test(final["no model"], final["rs"])
    assert abs(t_off) < 3  # the same distribution as random search
    with pytest.raises(ValueError, match="top_fraction"):
        search.tpe(NB201(), top_fraction=1.5)
    with pytest.raises(ValueError, match="needs a space"):
        search.tpe(object())
    assert np.isfinite(final["tpe"]).all()
