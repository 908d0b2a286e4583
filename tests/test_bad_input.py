"""Careless input everywhere a user can type (#22 §3): architecture strings of every space,
table files (truncated, wrong dtype, wrong shape, missing arrays), the CLI's arguments.
Each gives one clear error (ValueError naming what is wrong; exit 2 and one line from the
CLI), never a traceback from deep inside, and writes nothing."""

import pathlib
import string

import jax
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jnas import bench, cli, spaces
from jnas.commands._common import SPACE_NAMES, make_space

SPACES = {name: make_space(name) for name in SPACE_NAMES}
SPACES["nbnlp"] = spaces.NBNLP()
SPACES["darts_recurrent"] = spaces.DARTSRecurrent()
VALID = {
    name: space.to_string(jax.tree.map(lambda a: a[0], jax.vmap(space.sample)(jax.random.split(jax.random.key(1), 1))))
    for name, space in SPACES.items()
}  # fmt: skip


@st.composite
def edits(draw, text):
    """`text` with up to 4 characters replaced, deleted or inserted (near-misses)."""
    chars = list(text)
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, max(len(chars) - 1, 0)))
        op = draw(st.sampled_from(["replace", "delete", "insert"]))
        c = draw(st.sampled_from(string.printable))
        if op == "insert" or not chars:
            chars.insert(i, c)
        elif op == "replace":
            chars[i] = c
        else:
            del chars[i]
    return "".join(chars)


@pytest.mark.parametrize("name", list(SPACES))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_an_architecture_string_parses_or_raises_a_value_error(name, data):
    space, valid = SPACES[name], VALID[name]
    text = data.draw(st.one_of(edits(valid), st.text(max_size=40)))
    try:
        arch = space.from_string(text)
    except ValueError as e:
        message = str(e)
    else:
        message = None
    if message is not None:
        assert type(space).__name__ in message or "string" in message  # says what it parsed
        return
    # accepted: then it is an architecture of the space, printed back canonically
    again = space.from_string(space.to_string(arch))
    assert jax.tree.all(jax.tree.map(lambda a, b: bool(np.all(a == b)), arch, again))


TABLES = {
    "nb201_tss.npz": bench.load_nb201,
    "nats_sss.npz": bench.load_nats_sss,
    "nbnlp_wt2.npz": bench.load_nbnlp,
}


def _damaged(kind, name, source, folder):
    raw = (source / name).read_bytes()
    arrays = dict(np.load(source / name))
    column = next(k for k, v in arrays.items() if v.dtype.kind == "f")
    path = folder / name
    if kind == "truncated":
        path.write_bytes(raw[: len(raw) // 2])
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "not a table":
        path.write_bytes(b"rows,of,text\n" * 20)
    elif kind == "wrong dtype":
        np.savez(path, **{**arrays, column: arrays[column].astype("U6")})
    elif kind == "wrong shape":
        np.savez(path, **{**arrays, column: arrays[column][:10]})
    elif kind == "missing array":
        np.savez(path, **{k: v for k, v in arrays.items() if k != column})
    return column


KINDS = ["truncated", "empty", "not a table", "wrong dtype", "wrong shape", "missing array"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", list(TABLES))
def test_a_damaged_table_file_is_one_clear_error(name, kind, nasbench_dir, tmp_path):
    column = _damaged(kind, name, nasbench_dir, tmp_path)
    with pytest.raises(ValueError, match=r".") as info:
        TABLES[name](tmp_path)
    message = str(info.value)
    named = name in message or column in message or "column" in message
    assert named, message  # names the file or the array at fault


def _cli(argv, capsys):
    try:
        code = cli.main(argv)
    except SystemExit as e:  # argparse's own errors
        code = e.code
    err = capsys.readouterr().err
    return code, err


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(space=st.sampled_from(sorted(SPACE_NAMES)), data=st.data())
def test_the_cli_rejects_bad_architectures_in_one_line(space, data, capsys):  # fmt: skip
    text = data.draw(st.one_of(edits(VALID[space]), st.text(min_size=1, max_size=30)))
    try:
        SPACES[space].from_string(text)
        return  # a near-miss that is a valid architecture
    except ValueError:
        pass
    code, err = _cli(["spaces", space, f"--arch={text}"], capsys)  # a text may start with -
    assert code == 2
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("jnas spaces: error:")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "|nor_conv_3x3~0|+|skip|"], "NB201.from_string"),
        (["train", VALID["nb201"], "--epochs", "two"], "must be an integer >= 1; got 'two'"),
        (["search", "rea", "--evaluations", "-3"], "must be an integer >= 1"),
        (["oneshot", "nope"], "invalid choice: 'nope'"),
        (["meta", "maml", "--inner-lr", "fast"], "invalid float value: 'fast'"),
    ],
)
def test_bad_cli_arguments_exit_2_in_one_line_and_write_nothing(
    argv, message, capsys, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)  # a run without --out would make out/<command>/<time> here
    monkeypatch.setenv("JNAS_XLA_CACHE", "")
    code, err = _cli(argv, capsys)
    assert code == 2
    assert message in err
    assert "Traceback" not in err
    assert not list(pathlib.Path(tmp_path).iterdir())  # nothing written
