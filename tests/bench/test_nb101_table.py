"""NB101 tables: the TFRecord reader (no TensorFlow), the subset table, jitted lookup."""

import base64
import json
import struct

import jax
import numpy as np
import pytest

from jnas import bench
from jnas.spaces import NB101

CELLS = [  # (matrix, ops) in the release's spec form
    (
        [[0, 1, 1, 0, 0], [0, 0, 0, 1, 0], [0, 0, 0, 0, 1], [0, 0, 0, 0, 1], [0, 0, 0, 0, 0]],
        ["input", "conv3x3-bn-relu", "maxpool3x3", "conv1x1-bn-relu", "output"],
    ),
    ([[0, 1, 0], [0, 0, 1], [0, 0, 0]], ["input", "conv3x3-bn-relu", "output"]),
]


def _record(matrix, ops, epochs, repeat):
    evals = [
        {
            "current_epoch": e,
            "training_time": 10.0 * e + repeat,
            "train_accuracy": 0.5,
            "validation_accuracy": 0.8 + 0.01 * repeat,
            "test_accuracy": 0.79 + 0.01 * repeat,
        }
        for e in (0.0, epochs / 2, epochs)
    ]
    metrics = bench.encode_model_metrics(
        {"evaluation_data": evals, "trainable_parameters": 1234567, "total_time": 99.0}
    )
    adjacency = "".join(str(b) for row in matrix for b in row)
    h = NB101().hash(NB101().from_spec(matrix, ops))
    return json.dumps(
        [h, epochs, adjacency, ",".join(ops), base64.b64encode(metrics).decode()]
    ).encode()


@pytest.fixture
def tfrecord(tmp_path):
    records = [_record(m, o, e, r) for m, o in CELLS for e in (12, 108) for r in range(3)]
    path = tmp_path / "nasbench_only108.tfrecord"
    bench.write_tfrecord(path, records)
    return path


def test_tfrecord_round_trip_and_values(tfrecord):
    table = bench.load_nb101(tfrecord)
    assert table.num_rows == 2
    space = NB101()
    arch = space.from_spec(*CELLS[0])
    assert float(table.query(arch, dataset="cifar10", metric="valid_acc", epochs=108)) == (
        pytest.approx(81.0, abs=1e-4)
    )  # mean of 80, 81, 82
    assert float(
        table.query(arch, dataset="cifar10", metric="test_acc", epochs=108, seed=2)
    ) == pytest.approx(81.0, abs=1e-4)
    assert float(
        table.query(arch, dataset="cifar10", metric="train_time_s", epochs=12, seed=1)
    ) == pytest.approx(121.0)
    assert float(table.query(arch, dataset="cifar10", metric="params_M", epochs=None)) == (
        pytest.approx(1.234567)
    )


def test_tfrecord_corruption_and_truncation_name_the_file(tfrecord):
    data = bytearray(tfrecord.read_bytes())
    data[40] ^= 0xFF
    bad = tfrecord.with_name("corrupt.tfrecord")
    bad.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"corrupt\.tfrecord: corrupt TFRecord data"):
        bench.load_nb101(bad)
    short = tfrecord.with_name("short.tfrecord")
    short.write_bytes(tfrecord.read_bytes()[:-7])
    with pytest.raises(ValueError, match=r"short\.tfrecord: truncated"):
        bench.load_nb101(short)


def test_isomorphic_forms_find_the_same_row(tfrecord):
    table = bench.load_nb101(tfrecord)
    space = NB101()
    # vertices 1 and 2 of the first cell swapped (and re-sorted): the same network
    m = np.array(CELLS[0][0])
    perm = [0, 2, 1, 3, 4]
    swapped = m[np.ix_(perm, perm)]
    ops = [CELLS[0][1][i] for i in perm]
    assert np.all(np.tril(swapped) == 0)  # 1 and 2 are independent: still in topological order
    a = space.from_spec(m, CELLS[0][1])
    b = space.from_spec(swapped, ops)
    assert not np.array_equal(np.asarray(a.ops), np.asarray(b.ops))
    np.testing.assert_array_equal(space.fingerprint(a), space.fingerprint(b))
    q = jax.jit(lambda t, x: t.query(x, dataset="cifar10", metric="valid_acc", epochs=108))
    assert float(q(table, a)) == float(q(table, b))
    missing = space.from_spec([[0, 1], [0, 0]], ["input", "output"])
    assert np.isnan(float(q(table, missing)))


def test_subset_table_matches_its_rows(nasbench_dir):
    table = bench.load_nb101(nasbench_dir)
    assert table.num_rows == 292  # 500 raw specs, 292 distinct cells
    values = table.query(table.row_archs, dataset="cifar10", metric="valid_acc", epochs=108)
    np.testing.assert_array_equal(values, table.column("cifar10", "valid_acc", 108))
    assert ("cifar10", "zc_synflow", None) in table.keys()


@pytest.mark.parametrize(
    ("data", "crc"),
    [  # published CRC-32C check values
        (b"123456789", 0xE3069283),  # the catalogue's check value for CRC-32/ISCSI
        (bytes(32), 0x8A9136AA),  # RFC 3720 B.4: 32 bytes of zeros
        (b"\xff" * 32, 0x62A8AB43),  # ... of ones
        (bytes(range(32)), 0x46DD794E),  # ... incrementing
        (bytes(range(31, -1, -1)), 0x113FDB5C),  # ... decrementing
    ],
)
def test_crc32c_matches_published_check_values(data, crc):
    from jnas.bench._nb101 import _crc32c, _crc32c_python

    assert _crc32c_python(data) == crc  # the fallback
    assert _crc32c(data) == crc  # google-crc32c when installed


def test_model_metrics_decodes_hand_assembled_wire_bytes():
    """Bytes assembled by hand from the protobuf wire format and the release's
    model_metrics.proto field numbers: a swapped field number in jnas' descriptor fails."""

    def double(field, x):
        return bytes([field << 3 | 1]) + struct.pack("<d", x)

    evaluation = (
        double(1, 108.0)
        + double(2, 1.5)
        + double(3, 1.0)
        + double(4, 0.9)
        + double(5, 0.91)
        + bytes([6 << 3 | 2, 2])
        + b"ck"
    )  # checkpoint_path
    wire = (
        bytes([1 << 3 | 2, len(evaluation)])
        + evaluation
        + bytes([2 << 3 | 0, 0x87, 0xAD, 0x4B])  # 1234567 as a varint
        + double(3, 99.0)
    )
    assert bench.parse_model_metrics(wire) == {
        "evaluation_data": [
            {
                "current_epoch": 108.0,
                "training_time": 1.5,
                "train_accuracy": 1.0,
                "validation_accuracy": 0.9,
                "test_accuracy": 0.91,
            }
        ],
        "trainable_parameters": 1234567,
        "total_time": 99.0,
    }
    with pytest.raises(ValueError, match="not a ModelMetrics message"):
        bench.parse_model_metrics(wire[:-3])


def test_model_metrics_codec_round_trip():
    msg = {
        "evaluation_data": [
            {
                "current_epoch": 108.0,
                "training_time": 1.5,
                "train_accuracy": 1.0,
                "validation_accuracy": 0.9,
                "test_accuracy": 0.91,
            }
        ],
        "trainable_parameters": 2**31 - 1,
        "total_time": 3.25,
    }
    assert bench.parse_model_metrics(bench.encode_model_metrics(msg)) == msg


def test_convert_tfrecord_to_compact_and_back(tfrecord, tmp_path):
    import subprocess
    import sys

    out = tmp_path / "nb101.npz"
    done = subprocess.run(
        [sys.executable, "-m", "jnas.cli", "bench", "convert", str(tfrecord), "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    back = bench.load_table(out)
    orig = bench.load_nb101(tfrecord)
    arch = NB101().from_spec(*CELLS[1])
    for t in (back, orig):
        assert float(t.query(arch, dataset="cifar10", metric="valid_acc", epochs=12)) == (
            pytest.approx(81.0, abs=1e-4)
        )
