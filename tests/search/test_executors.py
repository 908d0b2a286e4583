"""`search.run` on an executor: a local process pool and a real Dask `LocalCluster`
(processes on this machine). Parallel records equal a serial run's, failures are retried or
recorded, a killed worker or driver loses nothing and repeats nothing."""

import concurrent.futures as cf
import json
import math
import os
import pathlib
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from jnas import search
from jnas.spaces import NB201

SPACE = NB201()
WEIGHTS = np.asarray([[0, 1, 2, 4, 1]] * 6, np.float32)


class Scored:
    """fitness = a fixed score of the cell's ops. Runs in worker processes: each finished
    call appends the cell to `calls.txt` in `folder`; `fail` makes cells whose first op is
    `fail` raise (`"once"`: only their first attempt); `kill` SIGKILLs the worker on the
    first call for such a cell; `sleep` seconds per call; the cell named `slow` hangs."""

    def __init__(self, folder, fail=None, mode="always", kill=False, sleep=0.0, slow=None):
        self.folder, self.fail, self.mode, self.kill = str(folder), fail, mode, kill
        self.sleep, self.slow = sleep, slow

    def __call__(self, arch):
        ops = np.asarray(arch.ops)
        name = "".join(map(str, ops))
        folder = pathlib.Path(self.folder)
        if self.fail is not None and ops[0] == self.fail:
            marker = folder / f"tried-{name}"
            first = not marker.exists()
            marker.touch()
            if self.kill and first:
                os.kill(os.getpid(), signal.SIGKILL)  # the worker dies mid-evaluation
            if not self.kill and (self.mode == "always" or first):
                raise ValueError(f"cell {name} diverged")
        if name == self.slow:
            time.sleep(1000)
        time.sleep(self.sleep)
        with open(folder / "calls.txt", "a") as f:
            f.write(name + "\n")
        return float(WEIGHTS[np.arange(6), ops].sum())


def _calls(folder):
    path = pathlib.Path(folder) / "calls.txt"
    return path.read_text().split() if path.exists() else []


def _serial(tmp_path, n=12, batch=4, key=0):
    tmp_path.mkdir(exist_ok=True)
    return search.run(
        search.random_search(SPACE, batch_size=batch),
        Scored(tmp_path),
        jax.random.key(key),
        num_evaluations=n,
        space=SPACE,
    )[1]


def test_a_parallel_run_on_a_process_pool_equals_the_serial_run(tmp_path):
    serial = _serial(tmp_path)
    with search.process_executor(2) as pool:
        _, records = search.run(
            search.random_search(SPACE, batch_size=4),
            Scored(tmp_path),
            jax.random.key(0),
            num_evaluations=12,
            space=SPACE,
            executor=pool,
        )
    assert records == serial
    assert len(_calls(tmp_path)) == 24  # 12 serial + 12 on the workers


def test_failures_are_retried_then_recorded_with_their_reason(tmp_path):
    serial = _serial(tmp_path / "s")
    failing = {e["arch"] for r in serial for e in r["evaluations"] if e["arch"][1:4] == "ski"}
    assert failing  # NB201 op 1 is skip_connect: some first edges hold it
    for mode, retries in (("once", 1), ("always", 2)):
        folder = tmp_path / mode
        folder.mkdir()
        with cf.ThreadPoolExecutor(2) as pool:
            _, records = search.run(
                search.random_search(SPACE, batch_size=4),
                Scored(folder, fail=1, mode=mode),
                jax.random.key(0),
                num_evaluations=12,
                space=SPACE,
                executor=pool,
                retries=retries,
            )
        for got, want in zip(records, serial, strict=True):
            for e, w in zip(got["evaluations"], want["evaluations"], strict=True):
                assert e["arch"] == w["arch"]
                if mode == "once" or e["arch"] not in failing:
                    assert e["fitness"] == w["fitness"]
                    assert "error" not in e
                else:  # recorded as failed, reason kept, told as the worst
                    assert math.isnan(e["fitness"])
                    assert e["error"].startswith("ValueError: cell 1")
        assert len(_calls(folder)) == 12 - (0 if mode == "once" else len(failing))


@pytest.fixture(scope="module")
def dask_client():
    distributed = pytest.importorskip("distributed")
    import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers lack tests/
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client


def test_a_dask_cluster_equals_the_serial_run_and_survives_a_killed_worker(tmp_path, dask_client):
    serial = _serial(tmp_path / "s")
    (tmp_path / "d").mkdir()
    executor = search.dask_executor(dask_client)
    assert search.executor_width(executor) == 2
    # the first evaluation of every cell starting with skip_connect kills its worker
    _, records = search.run(
        search.random_search(SPACE, batch_size=4),
        Scored(tmp_path / "d", fail=1, kill=True),
        jax.random.key(0),
        num_evaluations=12,
        space=SPACE,
        executor=executor,
    )
    assert list((tmp_path / "d").glob("tried-1*"))  # workers did die
    assert records == serial  # the scheduler reran their evaluations: nothing lost
    # none counted twice; a result held by a worker that died before the driver fetched
    # it is computed again by Dask (its results live on workers), so executions may exceed
    # evaluations, but every evaluation is recorded once
    assert len(_calls(tmp_path / "d")) >= 12
    assert sum(len(r["evaluations"]) for r in records) == 12


DRIVER = """
import sys, jax
sys.path.insert(0, sys.argv[2])
from test_executors import Scored, SPACE
from jnas import search
if __name__ == "__main__":
    with search.process_executor(2) as pool:
        search.run(search.random_search(SPACE, batch_size=4),
                   Scored(sys.argv[1], slow=sys.argv[4]), jax.random.key(0),
                   num_evaluations=12, space=SPACE, executor=pool,
                   out=sys.argv[3], resume=sys.argv[5] == "1")
"""


def test_a_killed_driver_resubmits_only_the_unfinished_evaluations(tmp_path):
    """The driver dies while one evaluation of a round hangs and the others have ended:
    the resumed run evaluates only the hung one again."""
    serial = _serial(tmp_path / "s")
    third = SPACE.from_string(serial[1]["evaluations"][2]["arch"])
    hang = "".join(map(str, np.asarray(third.ops)))  # round 1's third cell hangs
    (tmp_path / "d").mkdir()
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    here = str(pathlib.Path(__file__).parent)
    out = tmp_path / "run"
    args = [sys.executable, str(script), str(tmp_path / "d"), here, str(out)]
    proc = subprocess.Popen([*args, hang, "0"], start_new_session=True)
    log = out / "evaluations.jsonl"
    for _ in range(1200):  # until round 0 and the other cells of round 1 are logged
        if proc.poll() is not None or (log.exists() and len(log.read_text().splitlines()) >= 7):
            break
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and its workers
    proc.wait()
    ended = [json.loads(x) for x in log.read_text().splitlines()]
    assert len(ended) == 7
    by_key = {(e["round"], e["i"]): e["arch"] for r in serial for e in r["evaluations"]}
    assert all(e["arch"] == by_key[(e["round"], e["i"])] for e in ended)  # the log names them
    assert len(_calls(tmp_path / "d")) == 7
    done = subprocess.run([*args, "-1", "1"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    records = [json.loads(x) for x in (out / "records.jsonl").read_text().splitlines()]
    assert records == [json.loads(json.dumps(r)) for r in serial]
    calls = _calls(tmp_path / "d")
    assert len(calls) == 12  # every evaluation exactly once: the ended ones were not redone


def test_asynchronous_search_tells_every_ask_once_and_resumes(tmp_path):
    searcher = search.regularized_evolution(SPACE, population_size=4, sample_size=2)
    stop_at = 5

    def interrupt(e):
        if e["round"] == stop_at:
            raise KeyboardInterrupt

    folder = tmp_path / "calls"
    folder.mkdir()
    run = dict(num_evaluations=12, space=SPACE, out=tmp_path / "run", asynchronous=True, retries=0)
    with search.process_executor(3) as pool:
        with pytest.raises(KeyboardInterrupt):
            search.run(
                searcher,
                Scored(folder, sleep=0.05),
                jax.random.key(0),
                executor=pool,
                on_evaluation=interrupt,
                **run,
            )
        logged = [
            json.loads(x) for x in (tmp_path / "run/evaluations.jsonl").read_text().splitlines()
        ]
        _state, records = search.run(
            searcher,
            Scored(folder, sleep=0.05),
            jax.random.key(0),
            executor=pool,
            resume=True,
            **run,
        )
    asks = [r["evaluations"][0]["ask"] for r in records]
    assert sorted(asks) == list(range(12))  # each ask told exactly once
    assert [r["round"] for r in records] == list(range(12))
    for r in records:
        e = r["evaluations"][0]
        ops = np.asarray(SPACE.from_string(e["arch"]).ops)
        assert e["fitness"] == float(WEIGHTS[np.arange(6), ops].sum())
    calls = _calls(folder)
    # asks logged before the interrupt were not evaluated again; at most the ones in
    # flight then (3 workers) ran twice
    assert len(calls) <= 12 + 3
    assert {e["ask"] for e in logged} <= set(asks)
    best = max(e["fitness"] for r in records for e in r["evaluations"])
    assert records[-1]["best_fitness"] == best
    with pytest.raises(ValueError, match="batch_size 1"):
        search.run(
            search.random_search(SPACE, batch_size=4),
            Scored(folder),
            jax.random.key(0),
            executor=cf.ThreadPoolExecutor(1),
            **{**run, "out": None},
        )


def test_asynchronous_ask_j_is_drawn_from_its_own_key(tmp_path):
    """Ask j comes from `fold_in(k_asks, j)` (k_asks: the second half of `split(key)`),
    whichever evaluation ended before it. Random search ignores its state, so each record's
    cell is the ask of its number, made on a fresh state."""
    searcher = search.random_search(SPACE, batch_size=1)
    with cf.ThreadPoolExecutor(2) as pool:
        _, records = search.run(
            searcher, Scored(tmp_path), jax.random.key(7), num_evaluations=8, space=SPACE,
            executor=pool, asynchronous=True, workers=2,
        )  # fmt: skip
    _, k_asks = jax.random.split(jax.random.key(7))
    state = searcher.init(jax.random.key(0))
    for r in records:
        e = r["evaluations"][0]
        arch, _ = searcher.ask(jax.random.fold_in(k_asks, e["ask"]), state)
        assert e["arch"] == SPACE.to_string(jax.tree.map(lambda a: a[0], arch))
    assert sorted(r["evaluations"][0]["ask"] for r in records) == list(range(8))
