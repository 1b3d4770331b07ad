"""The exported table's formats: the light features' rows only (slim), and bfloat16 and int8
rows, with the AUC change each records and the tolerance it must stay within."""

from __future__ import annotations

import dataclasses

import rocketctr  # noqa: F401  (selects Keras 2 before TensorFlow loads)

# isort: split
import numpy as np
import pytest
import tensorflow as tf

from rocketctr import serving
from rocketctr.config.core import ConfigError
from rocketctr.features.schema import load_schema
from rocketctr.scoring.metrics import auc
from rocketctr.serving import quality
from tests.helpers import (
    export_variables,
    light_probabilities,
    random_features,
    saved_model_cli,
    score_in_plain_tensorflow,
    tiny_config,
    trained_model,
)

SCHEMA = load_schema("criteo")


def test_slim_export_holds_exactly_the_light_features_rows(tmp_path):
    schema = dataclasses.replace(SCHEMA, privileged=("I1", "C1", "C3"))
    model = trained_model(tiny_config(), schema, steps=1)
    path = serving.export_light(model, tmp_path, example_features=random_features(schema, 40))
    variables = {v.name: v for v in export_variables(path)}
    table = variables["shared_embedding/light_rows:0"].numpy()
    # C1 (2,000 rows) and C3 (100,000 rows) are privileged: 672,675 − 102,000 rows remain.
    assert table.shape == (570_675, 4)
    # Light tower: 24 fields x 4 + 12 dense = 108 inputs -> MLP 4 (108*4 + 4) -> 1 (4 + 1).
    count = sum(int(np.prod(v.shape)) for v in variables.values())
    assert count == 570_675 * 4 + 108 * 4 + 4 + 4 + 1
    assert serving.read_export_info(path)["verification"]["parameters"] == count
    full = model.embedding.table.numpy()
    c1, c3 = full[0:2000], full[3000:103_000]  # blocks in schema order: C1, C2, C3, ...
    np.testing.assert_array_equal(table[:1000], full[2000:3000])  # C2 moved to row 0
    np.testing.assert_array_equal(table[1000:], full[103_000:])
    exported = {row.tobytes() for row in table}
    assert not any(row.tobytes() in exported for row in np.concatenate([c1, c3]))
    info = serving.read_export_info(path)["embedding_table"]
    assert (info["rows"], info["training_rows"], info["dtype"]) == (570_675, 672_675, "float32")
    assert "C1" not in info["features"] and "C2" in info["features"]


def test_quantized_tables_are_smaller_and_record_dtype_size_and_auc_change(quantized):
    _, paths, _, _ = quantized
    info = {dtype: serving.read_export_info(path) for dtype, path in paths.items()}
    variables = {dtype: {v.name: v for v in export_variables(p)} for dtype, p in paths.items()}
    rows = {d: v["shared_embedding/light_rows:0"] for d, v in variables.items()}
    assert [rows[d].dtype for d in paths] == [tf.float32, tf.bfloat16, tf.int8]
    float_rows = rows["float32"].numpy()
    scales = variables["int8"]["shared_embedding/light_row_scales:0"].numpy()
    assert scales.shape == (672_675,)
    np.testing.assert_allclose(scales, np.abs(float_rows).max(axis=1) / 127, rtol=1e-6)
    # Dequantized rows are within half a step of the trained ones; bfloat16 within 2^-9.
    dequantized = rows["int8"].numpy().astype(np.float32) * scales[:, None]
    assert np.all(np.abs(dequantized - float_rows) <= scales[:, None] / 2 + 1e-9)
    bf16 = tf.cast(rows["bfloat16"], tf.float32).numpy()
    assert np.all(np.abs(bf16 - float_rows) <= np.abs(float_rows) * 2**-8)
    # int8: 1 byte per value + a 4-byte scale per row; bfloat16: 2 bytes per value.
    table_bytes = {"float32": 672_675 * 16, "bfloat16": 672_675 * 8, "int8": 672_675 * 8}
    for dtype, meta in info.items():
        assert meta["embedding_table"]["dtype"] == dtype
        assert meta["verification"]["embedding_dtype"] == dtype
        assert table_bytes[dtype] < meta["size_bytes"] < table_bytes[dtype] + 600_000, dtype
        change = meta["verification"]["quality"]
        assert change["rows"] == 500 and 0.0 < change["auc"] < 1.0
        assert abs(change["auc_change"]) <= {"float32": 1e-6, "bfloat16": 1e-4, "int8": 1e-3}[dtype]
        assert change["auc_float32"] == info["float32"]["verification"]["quality"]["auc"]


@pytest.mark.integration
def test_quantized_exports_reload_without_rocketctr_and_score_within_tolerance(quantized, tmp_path):
    model, paths, features, labels = quantized
    out = score_in_plain_tensorflow(paths, features, tmp_path)
    np.testing.assert_allclose(
        out["float32"], light_probabilities(model, features), rtol=0, atol=1e-5
    )
    base = auc(labels, out["float32"])
    assert np.ptp(out["float32"]) > 0.05  # the rows rank apart, so a reordering would show
    for dtype, tolerance in (("bfloat16", 1e-4), ("int8", 1e-3)):
        assert quality.AUC_TOLERANCE[dtype] == tolerance
        assert abs(auc(labels, out[dtype]) - base) <= tolerance, dtype
        diff = np.abs(out[dtype] - out["float32"])
        assert 0 < diff.max() < 1e-3, dtype  # quantized, yet close


def _signature_defs(path) -> str:
    shown = saved_model_cli(path)
    # The signature defs; the op list after them differs (int8 adds Cast and Mul).
    start = shown.index("signature_def[")
    return shown[start : shown.index("The MetaGraph with tag set", start)]


@pytest.mark.integration
def test_saved_model_cli_lists_the_same_signatures_for_every_dtype(quantized):
    _, paths, _, _ = quantized
    listed = {dtype: _signature_defs(path) for dtype, path in paths.items()}
    assert listed["bfloat16"] == listed["float32"] == listed["int8"]
    assert "signature_def['serving_default']" in listed["int8"]
    assert "signature_def['predict_examples']" in listed["int8"]
    assert listed["int8"].count("inputs['") == 39 + 1


def test_a_quantized_export_beyond_its_tolerance_or_without_labels_is_refused(
    quantized, tmp_path, monkeypatch
):
    model, _, features, labels = quantized
    config = model.rocket_config
    model.rocket_config = config.replace({"export.embedding_dtype": "int8"})
    try:
        with pytest.raises(serving.ExportError, match="needs labelled eval rows"):
            serving.export_light(model, tmp_path, example_features=features)
        monkeypatch.setitem(quality.AUC_TOLERANCE, "int8", -1.0)  # no change can pass
        with pytest.raises(serving.ExportError, match=r"'int8' moves the light net's AUC by"):
            serving.export_light(model, tmp_path, example_features=features, example_labels=labels)
    finally:
        model.rocket_config = config
    assert list(tmp_path.iterdir()) == []


def test_an_unknown_embedding_dtype_is_refused_naming_the_key():
    with pytest.raises(ConfigError) as refused:
        tiny_config().replace({"export.embedding_dtype": "fp8"})
    assert str(refused.value) == (
        "Config key export.embedding_dtype must be one of ['float32', 'bfloat16', 'int8']. "
        "Received: 'fp8'"
    )
