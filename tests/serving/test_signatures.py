"""The export's signatures: what saved_model_cli lists, parity with the in-memory light net
(random and real Criteo rows, a fresh process without rocketctr), and `predict_examples`
scoring tf.Examples as `serving_default` scores their columns."""

from __future__ import annotations

import math
from pathlib import Path

import rocketctr  # noqa: F401  (selects Keras 2 before TensorFlow loads)

# isort: split
import numpy as np
import pytest
import tensorflow as tf

from rocketctr import serving
from rocketctr.features.schema import load_schema
from tests.helpers import (
    SHARED_DATA,
    light_probabilities,
    random_features,
    saved_model_cli,
    score_in_plain_tensorflow,
    serve,
    tiny_config,
    trained_model,
)

SCHEMA = load_schema("criteo")
CRITEO_HEAD = SHARED_DATA / "criteo" / "criteo_kaggle_train_head9999.txt"


def _read_criteo_rows(path: Path, num_rows: int) -> dict[str, np.ndarray]:
    """Raw rows as readers deliver them: '' for empty strings, NaN for empty dense fields."""
    columns = {c: [] for c in SCHEMA.columns}
    with path.open() as f:
        for _, line in zip(range(num_rows), f, strict=False):
            for column, value in zip(SCHEMA.columns, line.rstrip("\n").split("\t"), strict=True):
                columns[column].append(value)
    rows = {}
    for column in SCHEMA.input_columns:
        values = columns[column]
        if SCHEMA.is_string_column(column):
            rows[column] = np.array(values, dtype=object)
        else:
            rows[column] = np.array([float(v) if v else math.nan for v in values], np.float32)
    return rows


def _tensor_info(kind: str, name: str, dtype: str) -> str:
    """How `saved_model_cli show` prints one [None]-shaped signature tensor."""
    return f"{kind}['{name}'] tensor_info:\n        dtype: {dtype}\n        shape: (-1)"


@pytest.mark.integration
def test_saved_model_cli_lists_both_signatures(exported):
    _, path, _ = exported
    blocks = {}
    for block in saved_model_cli(path).split("signature_def[")[1:]:
        blocks[block.split("'")[1]] = block
    assert {"serving_default", "predict_examples"} <= set(blocks)
    serving = blocks["serving_default"]
    for column in SCHEMA.input_columns:
        dtype = "DT_STRING" if SCHEMA.is_string_column(column) else "DT_FLOAT"
        assert _tensor_info("inputs", column, dtype) in serving, column
    assert serving.count("inputs['") == 39
    examples = blocks["predict_examples"]
    assert _tensor_info("inputs", "examples", "DT_STRING") in examples
    assert examples.count("inputs['") == 1
    for block in (serving, examples):
        for output in ("probabilities", "logits"):
            assert _tensor_info("outputs", output, "DT_FLOAT") in block


def test_parity_on_random_rows(exported):
    model, path, _ = exported
    features = random_features(SCHEMA, 257, seed=123)  # rows not seen at export
    served = serve(path, features)
    np.testing.assert_allclose(
        served["probabilities"], light_probabilities(model, features), rtol=0, atol=1e-5
    )
    np.testing.assert_allclose(
        served["logits"], model.light_logits(features).numpy(), rtol=0, atol=1e-4
    )
    np.testing.assert_allclose(
        served["probabilities"], 1 / (1 + np.exp(-served["logits"])), rtol=0, atol=1e-6
    )
    assert served["probabilities"].shape == (257,)
    assert np.ptp(served["probabilities"]) > 0  # the rows actually score differently
    assert serving.read_export_info(path)["verification"]["parity_rows"] == 300


@pytest.mark.skipif(not CRITEO_HEAD.exists(), reason=f"{CRITEO_HEAD} is not present")
def test_parity_on_real_criteo_rows(exported):
    model, path, _ = exported
    rows = _read_criteo_rows(CRITEO_HEAD, 300)
    assert len(rows["C1"]) == 300
    assert np.isnan(rows["I1"]).any() and (rows["C22"] == "").any()  # real missing values
    features = {c: tf.constant(v) for c, v in rows.items()}
    served = serve(path, rows)
    np.testing.assert_allclose(
        served["probabilities"], light_probabilities(model, features), rtol=0, atol=1e-5
    )


@pytest.mark.integration
def test_reloads_in_a_fresh_process_without_rocketctr(exported, tmp_path):
    model, path, _ = exported
    features = random_features(SCHEMA, 64, seed=5)
    out = score_in_plain_tensorflow({"export": path}, features, tmp_path)
    np.testing.assert_allclose(
        out["export"], light_probabilities(model, features), rtol=0, atol=1e-5
    )


def _example(row: dict, kinds: dict | None = None) -> bytes:
    """One tf.Example written by hand; "" and NaN fields are left out (missing).

    `kinds` maps a column to the list type to store it as ("int64", "float", "bytes");
    by default strings go to bytes_list and floats to float_list.
    """
    feature = {}
    for column, value in row.items():
        if value == "" or (not isinstance(value, str) and math.isnan(value)):
            continue
        kind = (kinds or {}).get(column, "bytes" if isinstance(value, str) else "float")
        if kind == "int64":
            feature[column] = tf.train.Feature(int64_list=tf.train.Int64List(value=[int(value)]))
        elif kind == "float":
            feature[column] = tf.train.Feature(float_list=tf.train.FloatList(value=[float(value)]))
        else:
            text = value if isinstance(value, str) else f"{value:g}"
            feature[column] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[text.encode()]))
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def _rows_with_missing(num_rows: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    rows = {}
    for column in SCHEMA.input_columns:
        if SCHEMA.is_string_column(column):
            values = rng.integers(0, 40, num_rows).astype(str).astype(object)
            values[rng.random(num_rows) < 0.3] = ""
        else:
            values = rng.integers(-2, 500, num_rows).astype(np.float32)
            values[rng.random(num_rows) < 0.3] = np.nan
        rows[column] = values
    return rows


def test_predict_examples_equals_serving_default_with_missing_features(exported):
    model, path, _ = exported
    rows = _rows_with_missing(40, seed=3)
    examples = [_example({c: v[i] for c, v in rows.items()}) for i in range(40)]
    examples.append(tf.train.Example().SerializeToString())  # every feature missing
    rows = {c: np.append(v, "" if v.dtype == object else np.nan) for c, v in rows.items()}
    loaded = tf.saved_model.load(str(path))
    from_examples = loaded.signatures["predict_examples"](examples=tf.constant(examples))
    served = serve(path, rows)
    np.testing.assert_allclose(
        from_examples["probabilities"].numpy(), served["probabilities"], rtol=0, atol=1e-7
    )
    features = {c: tf.constant(v.astype(str) if v.dtype == object else v) for c, v in rows.items()}
    np.testing.assert_allclose(
        served["probabilities"], light_probabilities(model, features), rtol=0, atol=1e-5
    )


def test_predict_examples_reads_the_declared_feature_kinds(tmp_path):
    """TFX CsvExampleGen writes integer columns as int64_list; other writers mix kinds."""
    model = trained_model(tiny_config(), SCHEMA, steps=1)
    kinds = {"I2": "int64", "I3": "int64", "C5": "int64", "C9": "int64", "C7": "float"}
    kinds["I4"] = "bytes"  # a dense column stored as text
    dtypes = {"int64": "int64", "float": "float32", "bytes": "string"}
    path = serving.export_light(
        model,
        tmp_path,
        example_features=_rows_with_missing(60, seed=11),
        example_dtypes={"label": "int64", **{c: dtypes[k] for c, k in kinds.items()}},
    )
    rows = _rows_with_missing(30, seed=4)
    examples = [_example({c: v[i] for c, v in rows.items()}, kinds) for i in range(30)]
    loaded = tf.saved_model.load(str(path))
    from_examples = loaded.signatures["predict_examples"](examples=tf.constant(examples))
    served = serve(path, rows)["probabilities"]
    np.testing.assert_allclose(from_examples["probabilities"].numpy(), served, atol=1e-7)
    parsed_as = serving.read_export_info(path)["signatures"]["predict_examples"]
    parsed_as = parsed_as["example_feature_dtypes"]
    assert (parsed_as["C5"], parsed_as["C7"], parsed_as["I4"]) == ("int64", "float32", "string")
    assert (parsed_as["C6"], parsed_as["I1"]) == ("string", "float32")
    assert "label" not in parsed_as
    # A second value is refused, never silently dropped.
    two = tf.train.Example(
        features=tf.train.Features(
            feature={"C5": tf.train.Feature(int64_list=tf.train.Int64List(value=[1, 2]))}
        )
    ).SerializeToString()
    with pytest.raises(tf.errors.InvalidArgumentError, match="more than one value"):
        loaded.signatures["predict_examples"](examples=tf.constant([two]))
    with pytest.raises(serving.ExportError, match="not in schema"):
        serving.export_light(model, tmp_path, example_dtypes={"I99": "int64"})


def test_predict_examples_reads_present_but_empty_features_as_missing(exported):
    # CsvExampleGen writes an empty CSV field as a feature with an empty value list.
    _, path, _ = exported
    rows = _rows_with_missing(1, seed=5)
    row = {c: v[0] for c, v in rows.items()}
    row["C1"], row["I1"] = "", np.nan
    written = tf.train.Example.FromString(_example(row))
    written.features.feature["C1"].bytes_list.SetInParent()
    written.features.feature["I1"].float_list.SetInParent()
    assert len(written.features.feature["C1"].bytes_list.value) == 0
    loaded = tf.saved_model.load(str(path))
    empty = loaded.signatures["predict_examples"](
        examples=tf.constant([written.SerializeToString(), _example(row)])
    )["probabilities"].numpy()
    assert empty[0] == empty[1]  # empty list == absent feature
