"""Multi-valued columns read from every format arrive as one text per row, joined by the
column's separator: the same strings, so the same rows of the table."""

import rocketctr  # noqa: F401

# isort: split
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import tensorflow as tf

from rocketctr.data import BadRowError, make_dataset
from rocketctr.features.schema import SchemaError

# Four rows: three genres, none, one, and six (more than max_length). C2 is the user id.
GENRES = [["drama", "crime", "war"], [], ["comedy"], ["a", "b", "c", "d", "e", "f"]]
JOINED = ["drama|crime|war", "", "comedy", "a|b|c|d|e|f"]
LABELS = [1, 0, 0, 1]


def _schema(tiny_schema, fmt, separator="|"):
    multi = {"separator": separator, "max_length": 4}
    return tiny_schema(
        fmt,
        categorical=[
            {"name": "C1", "hash_buckets": 10, "multi_valued": multi},
            {"name": "C2", "hash_buckets": 10},
        ],
    )


def test_delimited_text_keeps_the_field_as_it_is(tiny_schema, write, collect):
    lines = [f"{y}\t1\t2\t{g}\tu{i}\n" for i, (y, g) in enumerate(zip(LABELS, JOINED, strict=True))]
    path = write("rows.tsv", "".join(lines))
    features, labels, _ = collect(make_dataset(_schema(tiny_schema, "tsv"), path, 8))
    assert features["C1"].tolist() == JOINED
    assert labels.tolist() == LABELS


def test_csv_with_a_separator_other_than_the_delimiter(tiny_schema, write, collect):
    path = write("rows.csv", "1,1,2,drama;war,u\n0,1,2,,v\n")
    features, _, _ = collect(make_dataset(_schema(tiny_schema, "csv", ";"), path, 8))
    assert features["C1"].tolist() == ["drama;war", ""]


def test_a_separator_equal_to_the_delimiter_is_refused(tiny_schema):
    with pytest.raises(SchemaError, match=r"multi_valued.separator.*differ from the file's"):
        _schema(tiny_schema, "csv", ",")


@pytest.mark.parametrize(
    "column",
    [
        pa.array(GENRES, pa.list_(pa.string())),
        pa.array(GENRES, pa.large_list(pa.large_string())),
        pa.array(JOINED),  # already joined text
    ],
    ids=["list", "large_list", "text"],
)
def test_parquet_list_columns_are_joined(tiny_schema, tmp_path, collect, column):
    path = tmp_path / "rows.parquet"
    table = {"label": LABELS, "I1": [1.0] * 4, "I2": [2.0] * 4, "C1": column, "C2": list("uvwx")}
    pq.write_table(pa.table(table), path, row_group_size=3)
    features, labels, _ = collect(make_dataset(_schema(tiny_schema, "parquet"), str(path), 8))
    assert features["C1"].tolist() == JOINED
    assert labels.tolist() == LABELS


def test_parquet_nulls_a_null_list_and_a_null_value_are_empty(tiny_schema, tmp_path, collect):
    path = tmp_path / "rows.parquet"
    genres = pa.array([["drama", None, "war"], None, ["1"], []], pa.list_(pa.string()))
    ints = pa.array([[3, 4], None, [], [7]], pa.list_(pa.int64()))
    for name, column, expected in (
        ("strings", genres, ["drama||war", "", "1", ""]),  # the empty value is dropped later
        ("ints", ints, ["3|4", "", "", "7"]),
    ):
        table = {
            "label": LABELS,
            "I1": [1.0] * 4,
            "I2": [2.0] * 4,
            "C1": column,
            "C2": list("uvwx"),
        }
        pq.write_table(pa.table(table), path)
        features, _, _ = collect(make_dataset(_schema(tiny_schema, "parquet"), str(path), 8))
        assert features["C1"].tolist() == expected, name


def test_parquet_a_list_of_floats_is_refused(tiny_schema, tmp_path, collect):
    path = tmp_path / "rows.parquet"
    column = pa.array([[1.5]] * 4, pa.list_(pa.float64()))
    table = {"label": LABELS, "I1": [1.0] * 4, "I2": [2.0] * 4, "C1": column, "C2": list("uvwx")}
    pq.write_table(pa.table(table), path)
    with pytest.raises(BadRowError, match="multi-valued column 'C1' must be a list of strings"):
        collect(make_dataset(_schema(tiny_schema, "parquet"), str(path), 8))


def _example(genres, kind: str) -> bytes:
    feature = {"label": tf.train.Feature(int64_list=tf.train.Int64List(value=[1]))}
    if kind == "bytes":
        values = tf.train.BytesList(value=[g.encode() for g in genres])
        feature["C1"] = tf.train.Feature(bytes_list=values)
    elif kind == "joined":
        feature["C1"] = tf.train.Feature(
            bytes_list=tf.train.BytesList(value=["|".join(genres).encode()])
        )
    else:
        feature["C1"] = tf.train.Feature(int64_list=tf.train.Int64List(value=genres))
    feature["C2"] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"u"]))
    for dense in ("I1", "I2"):  # present, with no value: missing (an absent key is refused)
        feature[dense] = tf.train.Feature(float_list=tf.train.FloatList(value=[]))
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


@pytest.mark.parametrize("kind", ["bytes", "joined", "int64"])
def test_tfrecord_repeated_values_are_joined(tiny_schema, tmp_path, collect, kind):
    genres = GENRES if kind != "int64" else [[3, 1, 2], [], [7], [1, 2, 3, 4, 5, 6]]
    path = tmp_path / "rows.tfrecord"
    with tf.io.TFRecordWriter(str(path)) as writer:
        for g in genres:
            writer.write(_example(g, kind))
    features, _, _ = collect(make_dataset(_schema(tiny_schema, "tfrecord"), str(path), 8))
    expected = JOINED if kind != "int64" else ["3|1|2", "", "7", "1|2|3|4|5|6"]
    assert features["C1"].tolist() == expected
