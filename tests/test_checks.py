"""`jnas._checks`: one message shape for a bad count, wherever it is checked."""

import pytest

from jnas._checks import check_positive
from jnas.spaces import NB201
from jnas.train import TrainConfig


@pytest.mark.parametrize("bad", [0, -3, 2.0, True, "4", None])
def test_a_bad_count_names_where_which_and_what_came(bad):
    with pytest.raises(ValueError, match="`count`") as err:
        check_positive("here", ok=1, count=bad)
    assert str(err.value) == f"here: `count` must be an integer >= 1; got {bad!r}"
    check_positive("here", a=1, b=10**9)


def test_the_library_uses_it():  # two packages, two layers apart
    with pytest.raises(ValueError, match=r"TrainConfig: `epochs` must be an integer >= 1; got 0"):
        TrainConfig(epochs=0)
    with pytest.raises(ValueError, match=r"`channels` must be an integer >= 1; got 0"):
        NB201().build(NB201().from_index(0), channels=0)
