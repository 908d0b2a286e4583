"""Evaluating architectures in parallel through the standard `concurrent.futures.Executor`
interface: a local process pool, or a Dask cluster (`distributed`), the engine DEHB and
NNI's remote modes use. An evaluation is a picklable call `objective(*args)`; a failure
(the objective raises, or its worker dies and the engine cannot rerun it) is retried, then
recorded as NaN with the reason kept, never lost and never counted twice.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
from collections.abc import Callable
from typing import Any


def process_executor(workers: int) -> cf.ProcessPoolExecutor:
    """A pool of `workers` fresh Python processes (spawned, not forked: a forked child of a
    process that started JAX's thread pools can deadlock)."""
    return cf.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))


def dask_executor(client_or_address: Any = None, **client_kwargs: Any) -> cf.Executor:
    """A `concurrent.futures.Executor` on a Dask cluster: a `distributed.Client`, a
    scheduler address (`"tcp://host:8786"`), or None for a new `LocalCluster` with
    `client_kwargs` (e.g. `n_workers=4`). Tasks are impure (`pure=False`): the same
    architecture asked twice is evaluated twice, as in a serial run. A worker killed
    mid-evaluation has its task rerun elsewhere by the scheduler (up to
    `distributed.scheduler.allowed-failures` times)."""
    try:
        from distributed import Client
    except ImportError:
        raise ImportError(
            "dask_executor needs Dask's distributed: pip install 'jnas[dask]'"
        ) from None
    if isinstance(client_or_address, Client):
        client = client_or_address
    else:
        client = Client(client_or_address, **client_kwargs)
    return client.get_executor(pure=False)


def executor_width(executor: cf.Executor) -> int:
    """How many evaluations `executor` runs at once (a process or thread pool's workers, a
    Dask cluster's threads)."""
    width = getattr(executor, "_max_workers", None)
    if width:
        return int(width)
    client = getattr(executor, "_client", None)
    if client is not None:
        return sum(w["nthreads"] for w in client.scheduler_info()["workers"].values())
    raise ValueError(
        f"run: cannot tell how many workers {type(executor).__name__} has; pass `workers`"
    )


class Pool:
    """Jobs in flight on an executor, each retried up to `retries` times on failure."""

    def __init__(self, executor: cf.Executor, retries: int) -> None:
        self.executor = executor
        self.retries = retries
        self.running: dict[cf.Future, tuple[Any, Callable, tuple, int]] = {}

    def submit(self, job: Any, fn: Callable, args: tuple, attempt: int = 0) -> None:
        self.running[self.executor.submit(fn, *args)] = (job, fn, args, attempt)

    def busy(self, job: Any) -> bool:
        return any(entry[0] == job for entry in self.running.values())

    def wait(self) -> list[tuple[Any, Any, str | None]]:
        """Block until at least one job ends for good; its (job, output, error or None),
        failed jobs resubmitted while they have retries left."""
        ended: list[tuple[Any, Any, str | None]] = []
        while not ended:
            finished, _ = cf.wait(self.running, return_when=cf.FIRST_COMPLETED)
            for future in finished:
                job, fn, args, attempt = self.running.pop(future)
                try:
                    ended.append((job, future.result(), None))
                except Exception as e:  # the objective raised or its worker died
                    if isinstance(e, cf.process.BrokenProcessPool):
                        raise RuntimeError(
                            "run: a worker of the process pool died and took the pool with "
                            "it; resume the run (`resume=True`) with a new pool, or use "
                            "dask_executor, which reruns a dead worker's task"
                        ) from e
                    if attempt < self.retries:
                        self.submit(job, fn, args, attempt + 1)
                    else:
                        ended.append((job, None, f"{type(e).__name__}: {e}"))
        return ended

    def cancel(self) -> None:
        for future in self.running:
            future.cancel()
        self.running.clear()
