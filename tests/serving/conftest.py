"""Fixtures of the serving tests: trained models and their exports, made once."""

from __future__ import annotations

import rocketctr  # noqa: F401  (selects Keras 2 before TensorFlow loads)

# isort: split
import pytest

from rocketctr import serving
from rocketctr.data import make_dataset
from rocketctr.features.schema import load_schema
from rocketctr.model.cotrain import build_model
from tests.helpers import random_features, tiny_config, trained_model

SCHEMA = load_schema("criteo")
# Two cross layers: the booster's parameter counts and FLOPs the tests work out by hand.
CONFIG = tiny_config().replace({"model.booster.num_cross_layers": 2})


@pytest.fixture(scope="package")
def exported(tmp_path_factory):
    """(model, export path, rows): a co-train model after 2 steps on Criteo-shaped random
    rows, exported with 300 warmup/parity rows and metadata {"auc": 0.75}."""
    model = trained_model(CONFIG, SCHEMA)
    base = tmp_path_factory.mktemp("export")
    rows = random_features(SCHEMA, 300, seed=7)
    path = serving.export_light(model, base, example_features=rows, metadata={"auc": 0.75})
    return model, path, rows


@pytest.fixture(scope="module")
def quantized(tmp_path_factory, data):
    """(model, {dtype: export path}, features, labels): a model trained 10 steps on
    synthetic Criteo rows, exported in every dtype on the first 500 eval rows (labelled)."""
    train_file, eval_file = data
    model = build_model(CONFIG, SCHEMA)
    for features, labels in make_dataset(SCHEMA, [str(train_file)], 256).take(10):
        model.train_step((features, labels))
    features, labels = serving.eval_rows(SCHEMA, [str(eval_file)], "error", 500)
    base = tmp_path_factory.mktemp("quantized")
    paths = {}
    for dtype in ("float32", "bfloat16", "int8"):
        model.rocket_config = CONFIG.replace({"export.embedding_dtype": dtype})
        # After 10 steps the net may still rank at chance, which the gate refuses; the
        # quantization checks are what is tested here (the gate: tests/serving/test_gate.py).
        paths[dtype] = serving.export_light(
            model, base / dtype, example_features=features, example_labels=labels, force=True
        )
    model.rocket_config = CONFIG
    return model, paths, features, labels.numpy()
