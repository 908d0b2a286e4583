"""Every one-shot method by the name the NB201 paper and `jnas oneshot` use, with what a
caller needs to know before running it: the one list the CLI, the experiments, the
benchmarks and the contract tests share."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

from jnas import _trace_store
from jnas.oneshot._darts import darts
from jnas.oneshot._drnas import drnas
from jnas.oneshot._enas import enas
from jnas.oneshot._gdas import gdas
from jnas.oneshot._proxyless import proxyless
from jnas.oneshot._rsws_spos_dropout import oneshot_dropout, rsws, spos
from jnas.oneshot._setn import setn
from jnas.oneshot._smash import smash
from jnas.oneshot._snas import snas
from jnas.spaces import Decisions, HasSupernet


class Entry(NamedTuple):
    """A registered one-shot method.

    label: its row name in result tables; paper: where it comes from; make:
    `make(space, **config) -> OneShot`; uses_alpha: its state holds architecture
    parameters `alpha` float32[E, K] (recorded and plotted per epoch);
    derive_needs_data: `derive(state, key, batch)` ranks cells with the supernet on a
    validation batch (else it reads α alone); needs: the `jnas.spaces` protocols a space
    must offer (`supports(entry, space)`).
    """

    label: str
    paper: str
    make: Callable[..., Any]
    uses_alpha: bool
    derive_needs_data: bool
    needs: tuple[type, ...] = (HasSupernet,)


REGISTRY: dict[str, Entry] = {
    "darts-v1": Entry(
        "DARTS-V1",
        "Liu et al., ICLR 2019 (first order)",
        functools.partial(darts, order=1),
        True,
        False,
    ),
    "darts-v2": Entry(
        "DARTS-V2",
        "Liu et al., ICLR 2019 (second order, exact)",
        functools.partial(darts, order=2),
        True,
        False,
    ),
    "gdas": Entry("GDAS", "Dong & Yang, CVPR 2019", gdas, True, False),
    "snas": Entry("SNAS", "Xie et al., ICLR 2019", snas, True, False),
    "proxyless": Entry("ProxylessNAS", "Cai et al., ICLR 2019", proxyless, True, False),
    "drnas": Entry("DrNAS", "Chen et al., ICLR 2021", drnas, True, False),
    "setn": Entry("SETN", "Dong & Yang, ICCV 2019", setn, True, True),
    "enas": Entry("ENAS", "Pham et al., ICML 2018", enas, False, True, (HasSupernet, Decisions)),
    "rsws": Entry("RSPS", "Li & Talwalkar, UAI 2019", rsws, False, True),
    "spos": Entry("SPOS", "Guo et al., ECCV 2020", spos, False, True),
    "oneshot-dropout": Entry(
        "One-Shot (path dropout)", "Bender et al., ICML 2018", oneshot_dropout, False, True
    ),
    "smash": Entry("SMASH", "Brock et al., ICLR 2018", smash, False, True),
}


def _named(name: str, make: Callable[..., Any]) -> Callable[..., Any]:
    """`make`, registering the step it makes under the method's name and arguments, so
    that a run's step program can be stored (`jnas._trace_store`); arguments it cannot
    name (a user's optimiser or space) register nothing."""

    @functools.wraps(make)
    def named(*args: Any, **config: Any) -> Any:
        method = make(*args, **config)
        try:
            identity = f"{name}:{_trace_store.name_of((args, config))}"
        except TypeError:
            return method
        _trace_store.register(method.step, identity)
        return method

    return named


for _name, _entry in REGISTRY.items():
    REGISTRY[_name] = _entry._replace(make=_named(_name, _entry.make))


def supports(entry: Entry, space: Any) -> bool:
    """Whether `space` offers every capability the method of `entry` needs."""
    return all(isinstance(space, p) for p in entry.needs)
