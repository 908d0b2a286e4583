"""`jnas.checkpoint.RunDir`: resume cuts only what jnas wrote, and never touches a run folder
it did not write; a restored state runs the program a fresh run compiled."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jnas.checkpoint import MARKER, RunDir


def _snapshot(folder):
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _foreign(folder):
    (folder / "checkpoints" / "3").mkdir(parents=True)
    (folder / "checkpoints" / "3" / "weights.bin").write_bytes(b"\x00" * 64)
    (folder / "records.jsonl").write_text('{"epoch": 0}\n{"epoch": 1}\n')
    return _snapshot(folder)


@pytest.mark.parametrize("fresh", [True, False])
def test_a_folder_jnas_did_not_write_is_refused_untouched(tmp_path, fresh):
    before = _foreign(tmp_path)
    with pytest.raises(FileExistsError, match="did not write" if not fresh else "already holds"):
        RunDir(tmp_path, fresh=fresh)
    assert _snapshot(tmp_path) == before
    assert not (tmp_path / MARKER).exists()


def test_a_fresh_run_never_overwrites_an_earlier_jnas_run(tmp_path):
    run = RunDir(tmp_path, fresh=True)
    run.save(0, {"w": jnp.ones(3)}, {"epoch": 0})
    run._manager.close()
    before = _snapshot(tmp_path)
    with pytest.raises(FileExistsError, match=r"already holds a run .*resume it"):
        RunDir(tmp_path, fresh=True)
    assert _snapshot(tmp_path) == before


def test_resume_cuts_the_records_to_the_latest_checkpoint(tmp_path):
    target = jax.eval_shape(lambda: {"w": jnp.zeros(3)})
    run = RunDir(tmp_path, fresh=True)
    with open(run.records_path, "a") as f:  # killed after the record, before the checkpoint
        f.write('{"epoch": 0}\n')
    assert RunDir(tmp_path).restore(target) == (0, None, [])
    assert run.records_path.read_text() == ""
    run = RunDir(tmp_path)
    run.save(0, {"w": jnp.arange(3.0)}, {"epoch": 0})
    with open(run.records_path, "a") as f:
        f.write('{"epoch": 1}\n{"epo')  # a record of a unit never checkpointed, a torn line
    done, state, records = RunDir(tmp_path).restore(target)
    assert (done, records) == (1, [{"epoch": 0}])
    np.testing.assert_array_equal(state["w"], [0.0, 1.0, 2.0])


def test_a_restored_state_reuses_the_fresh_runs_compiled_step(tmp_path):
    """orbax restores arrays committed to a device; a jitted step called with them is a
    second program (a resumed DARTS search compiled its step again: 61 s, 16 s without)."""
    step = jax.jit(lambda s: jax.tree.map(lambda x: x * 2, s))
    state = jax.jit(lambda: {"w": jnp.ones((2, 3)), "n": jnp.int32(0)})()
    state = step(state)
    run = RunDir(tmp_path, fresh=True)
    run.save(0, state, {"epoch": 0})
    _, restored, _ = RunDir(tmp_path).restore(jax.eval_shape(lambda: state))
    np.testing.assert_array_equal(step(restored)["w"], 4 * np.ones((2, 3)))
    assert step._cache_size() == 1
