"""Values that parse but must not reach the model: non-finite numbers, labels other than
0/1, libfm ids outside their field, and compressed files cut short. Each is a bad row under
the policy (named with `bad_rows="error"`, counted with "skip"), or refuses the file."""

import rocketctr  # noqa: F401

# isort: split
import gzip

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import tensorflow as tf

from rocketctr.data import BadRowError, BadRowReport, make_dataset
from tests.helpers import rows_of, write_tfrecord

GOOD = "1\t3\t-2\tab\tu1\n"


def _first_error(ds) -> str:
    with pytest.raises(tf.errors.InvalidArgumentError) as raised:
        list(ds)
    return raised.value.message


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("inf", "`inf`"),
        ("-Infinity", "`-Infinity`"),
        ("1e39", "`1e39`"),  # beyond float32: would parse to inf
        ("1e999", "`1e999`"),
        ("1" + "0" * 40, "`1" + "0" * 40 + "`"),
    ],
)
def test_non_finite_dense_values_are_bad_rows(tiny_schema, write, collect, value, shown):
    path = write("inf.tsv", GOOD + f"0\t{value}\t1\tcd\tu2\n" + GOOD)
    message = _first_error(make_dataset(tiny_schema(), path, 8))
    assert (
        f"{path}:2: column `I1` (index 1): expected a finite float32 number, received {shown}"
        in message
    )
    report = BadRowReport()
    features, labels, _ = collect(
        make_dataset(tiny_schema(), path, 8, bad_rows="skip", report=report)
    )
    assert len(labels) == 2 and np.isfinite(features["I1"]).all()
    assert report.skipped() == {path: 1} and report.first_skipped() == {path: 2}


def test_largest_float32_and_nan_are_still_values(tiny_schema, write, collect):
    path = write("big.tsv", "1\t3.4e38\tnan\tab\tu\n0\t-3.4e38\t\tcd\tu\n")
    features, _, _ = collect(make_dataset(tiny_schema(), path, 8))
    np.testing.assert_allclose(features["I1"], [3.4e38, -3.4e38], rtol=1e-6)
    assert np.isnan(features["I2"]).all()  # missing


@pytest.mark.parametrize("label", ["2", "-1", "0.5", "1e3"])
def test_labels_other_than_0_and_1_are_bad_rows(tiny_schema, write, collect, label):
    path = write("labels.tsv", GOOD + f"{label}\t3\t-2\tcd\tu2\n")
    message = _first_error(make_dataset(tiny_schema(), path, 8))
    shown = {"1e3": "1000"}.get(label, label)
    assert f"{path}:2: column `label` (index 0): expected a label 0 or 1, received {shown}" in (
        message
    )
    report = BadRowReport()
    _, labels, _ = collect(make_dataset(tiny_schema(), path, 8, bad_rows="skip", report=report))
    np.testing.assert_array_equal(labels, [1.0])
    assert report.skipped() == {path: 1}


def _libfm_schema(tiny_schema):
    return tiny_schema(
        "libfm",
        columns=["label", "user", "item", "I1"],
        dense=[{"name": "I1"}],
        categorical=[
            {"name": "user", "num_ids": 10},
            {"name": "item", "num_ids": 5, "id_offset": 10},
        ],
        user_id="user",
    )


def test_libfm_labels_ids_outside_their_field_and_non_finite_values(tiny_schema, write, collect):
    schema = _libfm_schema(tiny_schema)
    path = write(
        "f.libfm",
        "1 3:1 12:1 20:0.5\n"
        "-1 4:1 14:1 20:2\n"  # -1 is libfm's negative; 14 is item's last id
        "1 5:1 15:1 20:1\n"  # line 3: 15 is past item's range 10..14
        "0 9:1 3:1 20:1\n"  # line 4: 3 belongs to user, not item
        "2 6:1 11:1 20:1\n"  # line 5: label 2
        "1 7:1 11:1 20:inf\n"  # line 6: not a number token
        "1 8:1 11:1 20:1e39\n",  # line 7: beyond float32
    )
    message = _first_error(make_dataset(schema, path, 8))
    assert (
        f"{path}:3: column `item` (index 2): received index `15`, outside the field range "
        "10..14 (id_offset 10, num_ids 5)" in message
    )
    report = BadRowReport()
    features, labels, _ = collect(make_dataset(schema, path, 8, bad_rows="skip", report=report))
    assert features["user"].tolist() == ["3", "4"]
    np.testing.assert_array_equal(labels, [1.0, 0.0])
    assert report.skipped() == {path: 5} and report.first_skipped() == {path: 3}

    for line, problem in [
        ("2 6:1 11:1 20:1", "column `label` (index 0): expected a label -1 or 0 or 1, received 2"),
        ("1 8:1 11:1 20:1e39", "column `I1` (index 3): expected a finite float32 number"),
    ]:
        one = write("one.libfm", "1 3:1 12:1 20:0.5\n" + line + "\n")
        assert f"{one}:2: {problem}" in _first_error(make_dataset(schema, one, 8))


def test_parquet_and_tfrecord_refuse_stored_inf_and_labels(tiny_schema, tmp_path, collect):
    columns = {
        "label": [1, 0, 1, 3],  # row 4: label 3
        "I1": [1.0, float("inf"), 2.0, 1.0],  # row 2: inf
        "I2": [1.0, 1.0, float("-inf"), 1.0],  # row 3: -inf
        "C1": ["a", "b", "c", "d"],
        "C2": ["u", "v", "w", "x"],
    }
    parquet = str(tmp_path / "v.parquet")
    pq.write_table(pa.table(columns), parquet)
    tfrecord = write_tfrecord(tmp_path / "v.tfrecord", rows_of(columns))

    for fmt, path in [("parquet", parquet), ("tfrecord", tfrecord)]:
        schema = tiny_schema(fmt)
        message = _first_error(make_dataset(schema, path, 8))
        assert f"{path}:2: column `I1` (index 1): expected a finite number, received inf" in message
        report = BadRowReport()
        _, labels, _ = collect(make_dataset(schema, path, 8, bad_rows="skip", report=report))
        np.testing.assert_array_equal(labels, [1.0])
        assert report.skipped() == {path: 3}, fmt
        last = str(tmp_path / f"label.{fmt}")
        last_row = {k: v[3:] for k, v in columns.items()}
        if fmt == "parquet":
            pq.write_table(pa.table(last_row), last)
        else:
            write_tfrecord(last, rows_of(last_row))
        expected = "column `label` (index 0): expected a label 0 or 1, received 3"
        assert f"{last}:1: {expected}" in _first_error(make_dataset(schema, last, 8))


@pytest.mark.parametrize("bad_rows", ["error", "skip"])
def test_truncated_gzip_is_refused_naming_the_file(tiny_schema, tmp_path, bad_rows):
    whole = gzip.compress(GOOD.encode() * 2000)
    path = tmp_path / "cut.tsv.gz"
    for cut, problem in [
        (len(whole) // 2, "truncated gzip file"),
        (len(whole) - 4, "truncated gzip file"),  # only the length trailer is missing
        (0, "empty file"),
    ]:
        path.write_bytes(whole[:cut])
        with pytest.raises(BadRowError) as raised:
            make_dataset(tiny_schema(), str(path), 8, bad_rows=bad_rows, report=BadRowReport())
        assert str(raised.value).startswith(f"{path}: {problem}")
    path.write_bytes(whole[:100] + b"\x00" * 50 + whole[150:])
    with pytest.raises(BadRowError, match=rf"{path}: corrupt gzip data"):
        make_dataset(tiny_schema(), str(path), 8, bad_rows=bad_rows, report=BadRowReport())


def test_whole_gzip_files_including_concatenated_members_are_read(tiny_schema, tmp_path, collect):
    path = tmp_path / "two_members.tsv.gz"
    path.write_bytes(gzip.compress(GOOD.encode()) + gzip.compress(b"0\t1\t1\tcd\tu2\n"))
    features, labels, _ = collect(make_dataset(tiny_schema(), str(path), 8))
    assert features["C1"].tolist() == ["ab", "cd"]
    np.testing.assert_array_equal(labels, [1.0, 0.0])
    record = tmp_path / "cut.tfrecord.gz"
    with tf.io.TFRecordWriter(str(record), tf.io.TFRecordOptions(compression_type="GZIP")) as w:
        for _ in range(500):
            w.write(b"x" * 100)
    record.write_bytes(record.read_bytes()[:-30])
    with pytest.raises(BadRowError, match=rf"{record}: truncated gzip file"):
        make_dataset(tiny_schema("tfrecord"), str(record), 8)


def test_a_directory_is_refused_naming_it(tiny_schema, tmp_path):
    (tmp_path / "parts").mkdir()
    with pytest.raises(BadRowError, match=rf"^{tmp_path / 'parts'} is a directory, not a data"):
        make_dataset(tiny_schema(), str(tmp_path / "*"), 8)


def test_bytes_that_are_not_utf8_keep_the_message_readable(tiny_schema, tmp_path):
    path = tmp_path / "bytes.tsv"
    path.write_bytes(GOOD.encode() + b"0\t1\xff\t1\tc\xfed\tu\n")  # I1 bad; C1 just bytes
    message = _first_error(make_dataset(tiny_schema(), str(path), 8))  # .message decodes
    assert f"{path}:2: column `I1` (index 1): expected a number, received `1\ufffd`" in message
    path.write_bytes(GOOD.encode() + b"0\t1\t1\tc\xfed\tu\n")
    ((features, _),) = make_dataset(tiny_schema(), str(path), 8).as_numpy_iterator()
    assert features["C1"].tolist() == [b"ab", b"c\xfed"]  # bytes, hashed as they are
