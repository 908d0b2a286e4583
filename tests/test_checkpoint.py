"""`jnas.checkpoint.RunDir`: resume cuts only what jnas wrote, and never touches a run folder
it did not write; a restored state runs the program a fresh run compiled."""

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jnas.checkpoint import MARKER, RunDir, RunLockedError, claim, write_atomic


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
    with RunDir(tmp_path, fresh=True) as run:
        run.save(0, {"w": jnp.ones(3)}, {"epoch": 0})
    before = _snapshot(tmp_path)
    with pytest.raises(FileExistsError, match=r"already holds a run .*resume it"):
        RunDir(tmp_path, fresh=True)
    assert _snapshot(tmp_path) == before


def test_resume_cuts_the_records_to_the_latest_checkpoint(tmp_path):
    target = jax.eval_shape(lambda: {"w": jnp.zeros(3)})
    with RunDir(tmp_path, fresh=True) as run:
        with open(run.records_path, "a") as f:  # killed after the record, before the checkpoint
            f.write('{"epoch": 0}\n')
    with RunDir(tmp_path) as run:
        assert run.restore(target) == (0, None, [])
    assert run.records_path.read_text() == ""
    with RunDir(tmp_path) as run:
        run.save(0, {"w": jnp.arange(3.0)}, {"epoch": 0})
        with open(run.records_path, "a") as f:
            f.write('{"epoch": 1}\n{"epo')  # a record of a unit never checkpointed, a torn line
    with RunDir(tmp_path) as run:
        done, state, records = run.restore(target)
    assert (done, records) == (1, [{"epoch": 0}])
    np.testing.assert_array_equal(state["w"], [0.0, 1.0, 2.0])
    with open(run.records_path, "a") as f:
        f.write('{"epoch": 1, "lo')  # only a torn line after the checkpointed records
    with RunDir(tmp_path) as run:
        assert run.restore(target)[0] == 1
    assert run.records_path.read_text() == '{"epoch": 0}\n'  # the next record starts clean


def test_a_restored_state_reuses_the_fresh_runs_compiled_step(tmp_path):
    """orbax restores arrays committed to a device; a jitted step called with them is a
    second program (a resumed DARTS search compiled its step again: 61 s, 16 s without)."""
    step = jax.jit(lambda s: jax.tree.map(lambda x: x * 2, s))
    state = jax.jit(lambda: {"w": jnp.ones((2, 3)), "n": jnp.int32(0)})()
    state = step(state)
    with RunDir(tmp_path, fresh=True) as run:
        run.save(0, state, {"epoch": 0})
    with RunDir(tmp_path) as run:
        _, restored, _ = run.restore(jax.eval_shape(lambda: state))
    np.testing.assert_array_equal(step(restored)["w"], 4 * np.ones((2, 3)))
    assert step._cache_size() == 1


def test_resuming_a_mistyped_path_is_an_error_that_writes_nothing(tmp_path):
    """The data loss the issue met: restoring a folder without checkpoints emptied it."""
    missing = tmp_path / "rnu"
    with pytest.raises(FileNotFoundError, match=r"nothing to resume at .*rnu.*does not exist"):
        RunDir(missing)
    assert not missing.exists()
    (tmp_path / "notes.txt").write_text("mine")
    before = _snapshot(tmp_path)
    with pytest.raises(FileNotFoundError, match="holds no jnas run"):
        RunDir(tmp_path)
    assert _snapshot(tmp_path) == before
    assert not (tmp_path / MARKER).exists()


def test_restoring_a_run_without_a_checkpoint_modifies_nothing(tmp_path):
    target = jax.eval_shape(lambda: {"w": jnp.zeros(3)})
    with RunDir(tmp_path, fresh=True):  # killed while computing its first unit
        pass
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file()}
    with RunDir(tmp_path) as run:
        assert run.restore(target) == (0, None, [])
    after = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file()}
    assert {p: t for p, t in after.items() if p in before} == before


def test_a_second_process_on_a_run_folder_is_refused(tmp_path):
    with RunDir(tmp_path, fresh=True):
        with pytest.raises(RunLockedError, match="another process is running in"):
            RunDir(tmp_path)
        code = (
            "import sys; from jnas.checkpoint import RunDir\n"
            "try:\n    RunDir(sys.argv[1])\nexcept OSError as e:\n    print(e); sys.exit(7)"
        )
        other = subprocess.run(
            [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True
        )
        assert other.returncode == 7, other.stderr
        assert "another process is running" in other.stdout
    RunDir(tmp_path).close()  # released when the first closes


def test_resuming_with_other_settings_is_refused_naming_the_setting(tmp_path):
    settings = {"searcher": "rea", "objective": "train", "epochs": 3}
    claim(tmp_path, resume=False, settings=settings)
    assert json.loads((tmp_path / MARKER).read_text())["settings"] == settings
    RunDir(tmp_path, fresh=True).close()  # the run the claim was for
    with pytest.raises(
        ValueError, match=r"started with objective='train'; resuming it with objective='table'"
    ):
        RunDir(tmp_path, settings={**settings, "objective": "table"})
    with pytest.raises(ValueError, match="searcher='rea'"):
        claim(tmp_path, resume=True, settings={**settings, "searcher": "bo"})
    RunDir(tmp_path, settings=settings).close()


def test_an_interrupted_rewrite_leaves_the_previous_records(tmp_path, monkeypatch):
    path = tmp_path / "records.jsonl"
    path.write_text('{"epoch": 0}\n')

    def fail(self, target):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(type(path), "replace", fail)
    with pytest.raises(OSError, match=r"No space left on device \(writing .*records.jsonl\)"):
        write_atomic(path, "")
    assert path.read_text() == '{"epoch": 0}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["records.jsonl"]


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_full_disk_names_the_file(tmp_path):
    with RunDir(tmp_path, fresh=True) as run:
        run.records_path.unlink()
        run.records_path.symlink_to("/dev/full")  # every write: ENOSPC
        with pytest.raises(OSError, match=r"No space left on device \(writing .*records.jsonl\)"):
            run.save(0, {"w": jnp.ones(2)}, {"epoch": 0})


def test_ctrl_c_during_a_save_lands_after_the_unit_is_written(tmp_path, python_sigint):
    import signal

    with RunDir(tmp_path, fresh=True) as run:
        save = run._manager.save

        def interrupted_save(*args, **kwargs):
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C between the record and checkpoint
            return save(*args, **kwargs)

        run._manager.save = interrupted_save
        with pytest.raises(KeyboardInterrupt):
            run.save(0, {"w": jnp.ones(2)}, {"epoch": 0})
    with RunDir(tmp_path) as run:
        done, _state, records = run.restore(jax.eval_shape(lambda: {"w": jnp.ones(2)}))
    assert (done, records) == (1, [{"epoch": 0}])
