"""Argument checks shared by every package: bad input fails early, outside `jit`, with one
line naming where, which argument, what was expected and what came."""

from __future__ import annotations


def check_positive(where: str, **values: object) -> None:
    """Raise `ValueError` for the first of `values` that is not an int >= 1 (a bool is not a
    count, though Python calls it an int)."""
    for name, v in values.items():
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ValueError(f"{where}: `{name}` must be an integer >= 1; got {v!r}")
