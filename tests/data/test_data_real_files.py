"""make_dataset on the real Criteo, Avazu and Frappe samples in ../shared/data.

Expected values are computed here with plain Python over the same files, independently of
the TensorFlow parsing under test.
"""

import rocketctr  # noqa: F401

# isort: split
import csv
import math

import numpy as np

from rocketctr.data import BadRowReport, make_dataset
from rocketctr.features.schema import load_schema


def _python_number(field: str) -> float:
    return math.nan if field == "" else float(field)


def test_criteo_tsv_matches_python_parsing(shared_data, collect):
    path = shared_data / "criteo" / "criteo_kaggle_train_head9999.txt"
    rows = [line.rstrip("\n").split("\t") for line in path.read_text().splitlines()]
    schema = load_schema("criteo")
    report = BadRowReport()

    features, labels, sizes = collect(make_dataset(schema, str(path), 4096, report=report))

    assert len(rows) == 9999 and len(labels) == 9999
    assert sizes == [4096, 4096, 1807]
    positives = sum(int(row[0]) > 0 for row in rows)
    assert labels.sum() == positives
    assert round(100 * positives / len(rows), 2) == 21.81
    columns = list(schema.columns)
    for name in schema.input_columns:
        expected = [row[columns.index(name)] for row in rows]
        if schema.is_string_column(name):
            assert features[name].tolist() == expected, name
        else:
            np.testing.assert_array_equal(features[name], [_python_number(v) for v in expected])
    # Line 1: I12 is empty (missing -> NaN), I13 is 2; C22 is empty (missing -> "").
    assert rows[0][12] == "" and np.isnan(features["I12"][0]) and features["I13"][0] == 2.0
    assert rows[0][14 + 21] == "" and features["C22"][0] == ""
    # Negative counts survive as negative floats.
    negative_rows = [i for i, row in enumerate(rows) if row[2].startswith("-")]
    assert negative_rows, "the sample has negative I2 values"
    assert features["I2"][negative_rows[0]] == float(rows[negative_rows[0]][2]) < 0
    assert report.summary() == "no bad rows (9,999 rows read from 1 file)"


def test_avazu_csv_with_header(shared_data, collect):
    path = shared_data / "avazu" / "avazu_train_head8999.csv"
    with open(path, newline="") as f:
        header, *rows = list(csv.reader(f))
    schema = load_schema("avazu")
    assert header == list(schema.columns)

    features, labels, _ = collect(make_dataset(schema, str(path), 1000))

    assert len(labels) == 8999 == len(rows)
    positives = sum(int(row[1]) > 0 for row in rows)
    assert labels.sum() == positives
    assert round(100 * positives / len(rows), 2) == 17.37
    assert features["hour"].tolist() == [row[2] for row in rows]
    assert features["device_ip"].tolist() == [row[12] for row in rows]  # also the user id
    assert "click" not in features and "id" not in features


def test_frappe_libfm_maps_minus_one_to_zero(shared_data, collect):
    path = shared_data / "frappe" / "frappe.validation.libfm"
    rows = [line.split() for line in path.read_text().splitlines()]
    schema = load_schema("frappe")

    features, labels, _ = collect(make_dataset(schema, str(path), 8192))

    assert len(labels) == 57722 == len(rows)
    assert {row[0] for row in rows} == {"1", "-1"}
    np.testing.assert_array_equal(labels, [1.0 if row[0] == "1" else 0.0 for row in rows])
    assert features["user"].tolist() == [row[1].split(":")[0] for row in rows]
    assert features["city"].tolist() == [row[10].split(":")[0] for row in rows]
    assert (features["item"][0], features["city"][0]) == ("1244", "5149")
