"""An export holds the light path only: no booster or optimizer variable, no privileged
input. A light path that reads a booster weight, or a model without a light net, is refused."""

from __future__ import annotations

import dataclasses

import rocketctr  # noqa: F401  (selects Keras 2 before TensorFlow loads)

# isort: split
import numpy as np
import pytest
import tensorflow as tf

from rocketctr import serving
from rocketctr.features.schema import load_schema
from rocketctr.model.cotrain import build_model, variable_role
from tests.helpers import export_variables, random_features, tiny_config, trained_model

SCHEMA = load_schema("criteo")


def _light_path_size(model) -> int:
    table = model.light_embedding or model.embedding
    return sum(int(np.prod(v.shape)) for v in table.variables + model.light.variables)


def test_export_holds_exactly_the_light_path(exported):
    model, path, _ = exported
    variables = export_variables(path)
    names = {v.name for v in variables}
    assert not [n for n in names if variable_role(n) == "booster"]
    assert {variable_role(n) for n in names} == {"shared_embedding", "light"}
    booster_names = {v.name for v in model.booster.variables}
    assert len(booster_names) >= 6 and not names & booster_names
    optimizer_names = {v.name for v in model.dense_optimizer.variables()}
    assert len(optimizer_names) > 1 and not names & optimizer_names
    keys = [k for k, _ in tf.train.list_variables(str(path / "variables" / "variables"))]
    assert not [k for k in keys if "OPTIMIZER_SLOT" in k]
    # 672,675 table rows x 4 + light MLP (117*4 + 4) + output (4 + 1)
    expected = 672_675 * 4 + 117 * 4 + 4 + 4 + 1
    assert _light_path_size(model) == expected
    assert sum(int(np.prod(v.shape)) for v in variables) == expected
    # The exported weights are the trained ones, not a fresh init.
    light_kernel = next(v for v in variables if v.name == model.light.variables[0].name)
    np.testing.assert_array_equal(light_kernel.numpy(), model.light.variables[0].numpy())


def test_separate_light_embeddings_export_only_the_light_table(tmp_path):
    model = trained_model(tiny_config({"separate_light_embeddings": True}), SCHEMA, steps=1)
    path = serving.export_light(model, tmp_path)
    roles = {variable_role(v.name) for v in export_variables(path)}
    assert roles == {"light_embedding", "light"}


def test_privileged_features_are_not_serving_inputs(tmp_path):
    schema = dataclasses.replace(SCHEMA, privileged=("I1", "C1"))
    model = trained_model(tiny_config(), schema, steps=1)
    path = serving.export_light(model, tmp_path, example_features=random_features(schema, 50))
    loaded = tf.saved_model.load(str(path))
    inputs = set(loaded.signatures["serving_default"].structured_input_signature[1])
    assert "I1" not in inputs and "C1" not in inputs
    assert inputs == set(SCHEMA.input_columns) - {"I1", "C1"}
    assert len(inputs) == 37
    assert serving.parsed_example_keys(path) == inputs
    info = serving.read_export_info(path)
    assert info["schema"]["privileged_not_served"] == ["I1", "C1"]
    assert [c["name"] for c in info["schema"]["serving_columns"]] == schema.serving_columns()


def test_a_light_path_that_reads_a_booster_weight_is_refused(tmp_path, monkeypatch):
    model = build_model(tiny_config(), SCHEMA)
    light_logits = model.light_logits
    booster_kernel = model.booster.variables[0]
    monkeypatch.setattr(
        model, "light_logits", lambda f, **kw: light_logits(f, **kw) + booster_kernel[0, 0]
    )
    with pytest.raises(serving.ExportError, match="not part of the light path"):
        serving.export_light(model, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_booster_only_model_is_refused(tmp_path):
    model = build_model(tiny_config().replace({"distill.mode": "booster_only"}), SCHEMA)
    with pytest.raises(serving.ExportError, match="no light net"):
        serving.export_light(model, tmp_path)
    assert list(tmp_path.iterdir()) == []
