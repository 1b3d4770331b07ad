"""assets.extra of an export: TF Serving's warmup requests, and rocketctr.json (config,
metrics, parameter counts, FLOPs)."""

from __future__ import annotations

import rocketctr  # noqa: F401  (selects Keras 2 before TensorFlow loads)

# isort: split
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import prediction_log_pb2

from rocketctr import serving
from rocketctr.features.schema import load_schema
from rocketctr.model.cotrain import build_model
from tests.helpers import tiny_config

SCHEMA = load_schema("criteo")


def test_warmup_requests_match_the_signature(exported):
    _, path, rows = exported
    records = list(
        tf.data.TFRecordDataset(str(path / "assets.extra" / "tf_serving_warmup_requests"))
    )
    assert 2 <= len(records) <= 5
    sizes = []
    for i, record in enumerate(records):
        log = prediction_log_pb2.PredictionLog.FromString(record.numpy())
        request = log.predict_log.request
        assert request.model_spec.name == "rocketctr"
        assert request.model_spec.signature_name == "serving_default"
        assert set(request.inputs) == set(SCHEMA.input_columns)
        batch = {k: tf.make_ndarray(v) for k, v in request.inputs.items()}
        for column, value in batch.items():
            want = tf.string if SCHEMA.is_string_column(column) else tf.float32
            assert request.inputs[column].dtype == want.as_datatype_enum
            assert value.ndim == 1
        start = sum(sizes)
        sizes.append(len(batch["C1"]))
        np.testing.assert_array_equal(batch["I3"], rows["I3"].numpy()[start : start + sizes[-1]])
        np.testing.assert_array_equal(batch["C2"], rows["C2"].numpy()[start : start + sizes[-1]])
        if i == 0:
            assert sizes[0] == 1  # the single-row online shape is warmed up too
    assert sum(sizes) == 100


def test_no_warmup_without_example_rows(tmp_path):
    path = serving.export_light(build_model(tiny_config(), SCHEMA), tmp_path)
    assert not (path / "assets.extra" / "tf_serving_warmup_requests").exists()
    assert serving.read_export_info(path)["verification"]["parity_rows"] == 256  # synthetic


def test_export_info_records_config_metrics_parameters_and_flops(exported):
    model, path, _ = exported
    info = serving.read_export_info(path)
    assert info["config"] == model.rocket_config.to_dict()
    assert info["metadata"] == {"auc": 0.75}
    assert info["schema"]["name"] == "criteo"
    assert {"name": "C1", "dtype": "string"} in info["schema"]["serving_columns"]
    assert {"name": "I1", "dtype": "float32"} in info["schema"]["serving_columns"]
    light = info["parameters"]["light"]
    assert light == {"embedding": 672_675 * 4, "tower": 477, "total": 672_675 * 4 + 477}
    # booster: 2 full-rank crosses (117x117 + 117 each) + MLP 117x8 + 8 + out (117+8) + 1
    assert info["parameters"]["booster"]["tower"] == 2 * (117 * 117 + 117) + 117 * 8 + 8 + 125 + 1
    assert info["flops_per_example"]["light"] == 2 * 117 * 4 + 2 * 4 * 1
    assert (
        info["flops_per_example"]["booster"]
        == 2 * (2 * 117 * 117 + 2 * 117) + 2 * 117 * 8 + 2 * 125
    )
    assert info["verification"]["parameters"] == light["total"]
