"""Delimited and libfm parsing on tiny files: values, missing fields, and malformed rows."""

import rocketctr  # noqa: F401

# isort: split
import numpy as np
import pytest
import tensorflow as tf

from rocketctr.data import BadRowReport, make_dataset

NAN = float("nan")


def test_tsv_values_missing_fields_and_labels(tiny_schema, write, collect):
    path = write(
        "t.tsv",
        "1\t3\t-2\tab\tu1\n"
        "0\t\t1e3\t\tu2\n"  # empty dense -> NaN, empty categorical -> ""
        "0.0\tnan\t.5\t007\t\n"  # "nan" is missing too; "007" stays a string
        "1.0\t+4\t-0.25\tx y\tu1\n",
    )
    features, labels, sizes = collect(make_dataset(tiny_schema(), path, 8))

    assert sizes == [4]
    np.testing.assert_array_equal(labels, [1.0, 0.0, 0.0, 1.0])
    np.testing.assert_array_equal(features["I1"], [3.0, NAN, NAN, 4.0])
    np.testing.assert_array_equal(features["I2"], [-2.0, 1000.0, 0.5, -0.25])
    assert features["C1"].tolist() == ["ab", "", "007", "x y"]
    assert features["C2"].tolist() == ["u1", "u2", "", "u1"]
    assert sorted(features) == ["C1", "C2", "I1", "I2"]


def test_dtypes_and_shapes(tiny_schema, write):
    path = write("t.tsv", "1\t3\t-2\tab\tu1\n")
    ds = make_dataset(tiny_schema(), path, 8)
    features, labels = ds.element_spec
    assert features["I1"] == tf.TensorSpec([None], tf.float32)
    assert features["C1"] == tf.TensorSpec([None], tf.string)
    assert labels == tf.TensorSpec([None], tf.float32)


@pytest.mark.parametrize(
    ("row", "line", "problem"),
    [
        ("1\t3\t-2\tab", 2, "expected 5 columns, received 4"),
        ("1\t3\t-2\tab\tu\textra", 2, "expected 5 columns, received 6"),
        ("", 2, "expected 5 columns, received 1"),
        ("1\tabc\t-2\tab\tu", 2, "column `I1` (index 1): expected a number, received `abc`"),
        ("1\t3\t0x10\tab\tu", 2, "column `I2` (index 2): expected a number, received `0x10`"),
        ("yes\t3\t-2\tab\tu", 2, "column `label` (index 0): expected a number, received `yes`"),
        ("\t3\t-2\tab\tu", 2, "column `label` (index 0): expected a number, received ``"),
        # The first bad row wins; within it, the first bad column in file order.
        ("1\t3\tx\tab\tu\n0\tbad\tbad\tab\tu", 2, "column `I2` (index 2)"),
    ],
)
def test_error_names_file_line_column_and_value(tiny_schema, write, row, line, problem):
    path = write("bad.tsv", "1\t3\t-2\tab\tu1\n" + row + "\n0\t1\t1\tc\tu2\n")
    ds = make_dataset(tiny_schema(), path, 8)
    with pytest.raises(tf.errors.InvalidArgumentError) as raised:
        list(ds)
    assert f"{path}:{line}: {problem}" in raised.value.message


def test_error_line_numbers_count_the_header_and_span_chunks(tiny_schema, write, rows_per_chunk):
    rows_per_chunk(3)  # lines 1-3, 4-6, 7-9 are separate chunks
    schema = tiny_schema("csv", header=True)
    good = "1,3,-2,ab,u1\n"
    path = write("bad.csv", "label,I1,I2,C1,C2\n" + good * 5 + "1,3,-2,ab\n" + good * 3)
    with pytest.raises(tf.errors.InvalidArgumentError, match=rf"{path}:7: expected 5 columns"):
        list(make_dataset(schema, path, 4))


def test_header_is_checked_and_skipped_in_every_file(tiny_schema, write, collect):
    schema = tiny_schema("csv", header=True)
    a = write("a.csv", "label,I1,I2,C1,C2\n1,1,1,a,u\n")
    b = write("b.csv", "\ufefflabel,I1,I2,C1,C2\r\n0,2,2,b,v\r\n")  # BOM and CRLF line ends
    features, labels, _ = collect(make_dataset(schema, [a, b], 8))
    assert features["C1"].tolist() == ["a", "b"] and features["C2"].tolist() == ["u", "v"]
    np.testing.assert_array_equal(labels, [1.0, 0.0])

    wrong = write("wrong.csv", "label,I1,I2,C2,C1\n1,1,1,a,u\n")
    for bad_rows in ("error", "skip"):  # a wrong header is never a row to skip
        ds = make_dataset(schema, [a, wrong], 8, bad_rows=bad_rows, report=BadRowReport())
        with pytest.raises(tf.errors.InvalidArgumentError) as raised:
            list(ds)
        message = raised.value.message
        assert f"{wrong}:1: the header does not match the schema columns (tiny.yaml)" in message
        assert "expected `label,I1,I2,C1,C2`, received `label,I1,I2,C2,C1`" in message


def test_skip_keeps_exact_rows_and_counts_per_file(tiny_schema, write, collect):
    a = write(
        "a.tsv",
        "1\t1\t1\ta1\tu\n"
        "0\tabc\t1\ta2\tu\n"  # line 2: text in a dense column
        "1\t3\t1\ta3\tu\n"
        "0\t4\t1\ta4\n"  # line 4: 4 columns
        "1\t5\t1\ta5\tu\n",
    )
    b = write("b.tsv", "1\t6\t1\tb1\tu\nx\t7\t1\tb2\tu\n")  # line 2: label "x"
    report = BadRowReport()
    ds = make_dataset(tiny_schema(), [b, a], 8, bad_rows="skip", report=report)
    features, labels, _ = collect(ds)

    assert features["C1"].tolist() == ["b1", "a1", "a3", "a5"]  # patterns in the order given
    np.testing.assert_array_equal(features["I1"], [6.0, 1.0, 3.0, 5.0])
    np.testing.assert_array_equal(labels, [1.0, 1.0, 1.0, 1.0])
    assert report.skipped() == {b: 1, a: 2}
    assert report.rows_read() == {b: 2, a: 5}
    assert report.first_skipped() == {b: 2, a: 2}
    assert report.summary() == (
        f"{b}: skipped 1 of 2 rows (malformed), first at line 2\n"
        f"{a}: skipped 2 of 5 rows (malformed), first at line 2"
    )


def test_report_counts_every_pass(tiny_schema, write, collect):
    path = write("a.tsv", "1\t1\t1\ta\tu\n0\tx\t1\tb\tu\n1\t2\t1\tc\tu\n")
    report = BadRowReport()
    ds = make_dataset(tiny_schema(), path, 8, bad_rows="skip", num_epochs=3, report=report)
    _, labels, _ = collect(ds)
    assert len(labels) == 6
    assert report.skipped() == {path: 3} and report.rows_read() == {path: 9}
    assert report.summary() == (
        f"{path}: skipped 3 of 9 rows read in 3 passes (malformed), first at line 2"
    )
    clean = BadRowReport()
    two_rows = write("b.tsv", "1\t1\t1\ta\tu\n0\t2\t1\tb\tu\n")
    collect(make_dataset(tiny_schema(), two_rows, 8, num_epochs=2, report=clean))
    collect(make_dataset(tiny_schema(), write("c.tsv", "1\t1\t1\ta\tu\n"), 8, report=clean))
    assert clean.summary() == "no bad rows (5 rows read from 2 files, up to 2 passes)"
    report.reset()
    assert report.skipped() == {path: 0}
    assert report.summary() == "no bad rows (0 rows read from 1 file)"


def test_libfm_fields_labels_and_malformed_tokens(write, collect, tiny_schema):
    schema = tiny_schema(
        "libfm",
        columns=["label", "user", "item"],
        dense=[],
        categorical=[
            {"name": "user", "num_ids": 10},
            {"name": "item", "num_ids": 10, "id_offset": 10},
        ],
        user_id="user",
    )
    path = write(
        "f.libfm",
        "1 3:1 12:1\n"
        "-1 4:1  13:1 \n"  # runs of spaces and a trailing space are fine
        "-1 5:1\n"  # line 3: a field is missing
        "1 6 14:1\n"  # line 4: a token without ":value"
        "-1 7:1 15:0.5\n",
    )
    with pytest.raises(tf.errors.InvalidArgumentError) as raised:
        list(make_dataset(schema, path, 8))
    assert f"{path}:3: expected 3 tokens (label + 2 fields), received 2" in raised.value.message

    report = BadRowReport()
    features, labels, _ = collect(make_dataset(schema, path, 8, bad_rows="skip", report=report))
    assert features["user"].tolist() == ["3", "4", "7"]
    assert features["item"].tolist() == ["12", "13", "15"]
    np.testing.assert_array_equal(labels, [1.0, 0.0, 0.0])
    assert report.skipped() == {path: 2} and report.first_skipped() == {path: 3}

    token_path = write("g.libfm", "1 3:1 12:1\n1 6 14:1\n")
    with pytest.raises(tf.errors.InvalidArgumentError) as raised:
        list(make_dataset(schema, token_path, 8))
    expected = f"{token_path}:2: column `user` (index 1): expected `index:value`, received `6`"
    assert expected in raised.value.message


def test_gzipped_text_is_read(tiny_schema, tmp_path, collect):
    import gzip

    path = tmp_path / "a.tsv.gz"
    path.write_bytes(gzip.compress(b"1\t1\t1\ta\tu\n0\t2\t2\tb\tv\n"))
    features, labels, _ = collect(make_dataset(tiny_schema(), str(path), 8))
    assert features["C1"].tolist() == ["a", "b"]
    np.testing.assert_array_equal(labels, [1.0, 0.0])
