"""Two-tower light net (PFD+MD): schema split, tower, export signatures, item vectors."""

from __future__ import annotations

import dataclasses
from importlib import resources

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import tensorflow as tf
import yaml

from rocketctr import serving
from rocketctr.config.core import Config, ConfigError
from rocketctr.data import make_dataset
from rocketctr.data.synthetic import generate_pfd, pfd_item_catalogue
from rocketctr.features.processor import FeatureProcessor
from rocketctr.features.schema import SchemaError, load_schema, parse_schema
from rocketctr.model.cotrain import build_model, variable_role
from rocketctr.model.precision import float32_compute
from rocketctr.serving import catalogue
from tests.helpers import SHARED_DATA, random_features, random_labels, tiny_config

SCHEMA = load_schema("synthetic_pfd")
TAOBAO_TRAIN = SHARED_DATA / "taobao_ad_tiny" / "fuxictr_tiny_train.csv"


def _config(schema: str = "synthetic_pfd", **light) -> Config:
    return tiny_config(
        {
            "booster": {"name": "mlp", "hidden_units": [8]},
            "light": {"name": "two_tower", "hidden_units": [8], "output_dim": 3, **light},
        },
        schema=schema,
        distill={"methods": {"kd": {"weight": 0.5}}, "hint_form": "convex"},
    )


def _pfd_rows(num_rows: int, seed: int) -> dict[str, tf.Tensor]:
    """Real generated rows, as the CSV reader delivers them (strings and floats)."""
    frame = generate_pfd(num_rows, seed=seed)
    return {
        c: tf.constant(frame[c].to_numpy(np.float32))
        if not SCHEMA.is_string_column(c)
        else tf.constant(frame[c].astype(str).to_numpy())
        for c in SCHEMA.input_columns
    }


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    model = build_model(_config(), SCHEMA)
    for step in range(2):
        model.train_step((_pfd_rows(64, seed=step), random_labels(64, seed=step)))
    path = serving.export_light(
        model, tmp_path_factory.mktemp("export"), example_features=_pfd_rows(200, seed=9)
    )
    return model, path


# ------------------------------------------------------------------------------ schema
def _schema_dict(**overrides):
    text = (resources.files("rocketctr.data_schemas") / "synthetic_pfd.yaml").read_text()
    return {**yaml.safe_load(text), **overrides}


def test_schema_declares_the_user_item_split():
    assert SCHEMA.privileged == ("dwell_time",)
    assert SCHEMA.item_features == ("item_id", "item_category", "item_brand", "item_price")
    assert SCHEMA.user_side_features() == ["user_id", "user_age", "user_gender", "hour", "device"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"item_features": ["item_id", "user_id"]}, "disjoint from user_features"),
        ({"item_features": ["item_id", "dwell_time"]}, "names a privileged feature"),
        ({"user_features": ["user_id", "nope"]}, "does not define. Received: 'nope'"),
        ({"item_features": []}, "must be non-empty when user_features"),
        ({"item_features": ["item_price"]}, "needs a categorical feature"),
    ],
)
def test_bad_splits_are_refused(overrides, message):
    with pytest.raises(SchemaError, match=message):
        parse_schema(_schema_dict(**overrides), source="x.yaml")


def test_two_tower_needs_item_features_and_other_towers_refuse_output_dim():
    criteo = Config.from_dict(
        {"model": {"light": {"name": "two_tower", "hidden_units": [4]}}}
    )  # criteo declares no split
    with pytest.raises(ConfigError, match="needs the schema to declare item_features"):
        build_model(criteo, load_schema("criteo"))
    with pytest.raises(ConfigError, match=r"does not use \['output_dim'\]"):
        build_model(_config(name="mlp"), SCHEMA)


# ------------------------------------------------------------------------------ tower
def test_logits_are_the_dot_product_of_the_two_towers_plus_bias():
    model = build_model(_config(), SCHEMA)
    model.light.bias.assign(0.3)
    features = _pfd_rows(16, seed=1)
    table, tower = model.embedding, model.light
    user = FeatureProcessor(SCHEMA, SCHEMA.user_side_features())
    item = FeatureProcessor(SCHEMA, SCHEMA.item_features)
    changed = dict(features, user_id=tf.constant(["someone else"] * 16))
    with float32_compute(tower):  # as its scores are computed when it does not train
        u = tower.user_vector(table(user(features)[0]), user(features)[1])
        v = tower.item_vector(table(item(features)[0]), item(features)[1])
        v2 = tower.item_vector(table(item(changed)[0]), item(changed)[1])
    assert u.shape == v.shape == (16, 3)
    expected = np.sum(u.numpy() * v.numpy(), axis=1) + 0.3
    np.testing.assert_allclose(model.light_logits(features).numpy(), expected, atol=1e-5)
    # The item tower never reads a user field: changing the user moves only u.
    np.testing.assert_array_equal(v.numpy(), v2.numpy())


def test_two_tower_trains_and_only_light_variables_are_light():
    model = build_model(_config(), SCHEMA)
    light = [v for v in model.trainable_variables if variable_role(v.name) == "light"]
    assert len(light) == 9  # user MLP + out, item MLP + out (kernel, bias each), bias
    before = [v.numpy().copy() for v in light]
    logs = model.train_step((_pfd_rows(32, seed=2), random_labels(32)))
    assert np.isfinite(float(logs["loss"]))
    assert all(not np.array_equal(b, v.numpy()) for b, v in zip(before, light, strict=True))


# ------------------------------------------------------------------------------ export
def test_export_has_score_user_and_item_signatures_without_privileged_inputs(exported):
    _, path = exported
    signatures = tf.saved_model.load(str(path)).signatures
    assert set(signatures) == {
        "serving_default",
        "score",
        "predict_examples",
        "user_embedding",
        "item_embedding",
    }
    inputs = {n: set(s.structured_input_signature[1]) for n, s in signatures.items()}
    for name, columns in inputs.items():
        assert "dwell_time" not in columns, name
    assert inputs["user_embedding"] == {"user_id", "user_age", "user_gender", "hour", "device"}
    assert inputs["item_embedding"] == {"item_id", "item_category", "item_brand", "item_price"}
    assert inputs["score"] == inputs["serving_default"] == set(SCHEMA.serving_columns())
    assert "dwell_time" not in serving.parsed_example_keys(path)
    info = serving.read_export_info(path)
    assert info["two_tower"]["output_dim"] == 3
    assert set(info["signatures"]) == set(signatures)


def test_score_equals_dot_product_of_user_and_item_signatures(exported):
    model, path = exported
    signatures = tf.saved_model.load(str(path)).signatures
    rows = _pfd_rows(50, seed=21)
    side = {n: signatures[n].structured_input_signature[1] for n in signatures}
    u = signatures["user_embedding"](**{c: rows[c] for c in side["user_embedding"]})["embedding"]
    v = signatures["item_embedding"](**{c: rows[c] for c in side["item_embedding"]})["embedding"]
    score = signatures["score"](**{c: rows[c] for c in side["score"]})
    bias = serving.read_export_info(path)["two_tower"]["bias"]
    assert bias == pytest.approx(float(model.light.bias.numpy()))
    logits = np.sum(u.numpy() * v.numpy(), axis=1) + bias
    np.testing.assert_allclose(score["logits"].numpy(), logits, rtol=0, atol=1e-5)
    np.testing.assert_allclose(score["probabilities"].numpy(), 1 / (1 + np.exp(-logits)), atol=1e-6)
    default = signatures["serving_default"](**{c: rows[c] for c in side["score"]})
    np.testing.assert_array_equal(default["logits"].numpy(), score["logits"].numpy())


def test_a_light_net_reading_a_privileged_feature_is_refused(tmp_path, monkeypatch):
    # A light net built as if dwell_time were servable, exported under the real schema.
    unprivileged = dataclasses.replace(SCHEMA, privileged=())
    mlp = _config().replace({"model.light.name": "mlp", "model.light.output_dim": 16})
    model = build_model(mlp, unprivileged)
    assert "dwell_time" in model.light_processor.input_columns
    monkeypatch.setattr(model, "schema", SCHEMA)
    with pytest.raises(serving.ExportError, match=r"privileged inputs \['dwell_time'\]"):
        serving.export_light(model, tmp_path, example_features=random_features(SCHEMA, 20))
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------ catalogue
@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_item_vectors_match_the_item_embedding_signature(exported, tmp_path, fmt):
    _, path = exported
    items = pfd_item_catalogue().iloc[:300]
    items = pd.concat([items, items.iloc[:5]])  # repeated ids: first row wins
    source = tmp_path / f"items.{fmt}"
    items.to_csv(source, index=False) if fmt == "csv" else items.to_parquet(source)
    out = tmp_path / "vectors.parquet"
    # The export base and the schema recorded in the export are enough.
    counts = catalogue.write_item_vectors(path.parent, str(source), None, out, batch_rows=128)
    assert counts == {
        "rows_read": 305,
        "items_written": 300,
        "duplicate_ids_skipped": 5,
        "dimension": 3,
    }
    table = pq.read_table(out)
    assert table.column_names == ["item_id", "vector"]
    ids = table.column("item_id").to_pylist()
    assert ids == items["item_id"].iloc[:300].tolist()
    vectors = np.array(table.column("vector").to_pylist(), np.float32)
    signature = tf.saved_model.load(str(path)).signatures["item_embedding"]
    expected = signature(
        item_id=tf.constant(items["item_id"].iloc[:300].to_numpy().astype(str)),
        item_category=tf.constant(items["item_category"].iloc[:300].to_numpy().astype(str)),
        item_brand=tf.constant(items["item_brand"].iloc[:300].to_numpy().astype(str)),
        item_price=tf.constant(items["item_price"].iloc[:300].to_numpy(np.float32)),
    )["embedding"].numpy()
    np.testing.assert_allclose(vectors, expected, rtol=0, atol=1e-6)


def test_item_vectors_refuse_a_non_two_tower_export_and_missing_columns(tmp_path):
    model = build_model(
        _config().replace({"model.light.name": "mlp", "model.light.output_dim": 16}), SCHEMA
    )
    path = serving.export_light(model, tmp_path / "export")
    items = tmp_path / "items.csv"
    pfd_item_catalogue().iloc[:10].to_csv(items, index=False)
    with pytest.raises(catalogue.CatalogueError, match="no 'item_embedding' signature"):
        catalogue.write_item_vectors(path, str(items), SCHEMA, tmp_path / "v.parquet")
    assert not (tmp_path / "v.parquet").exists()


# ------------------------------------------------------------------------------ taobao
@pytest.mark.skipif(not TAOBAO_TRAIN.exists(), reason=f"shared data absent: {TAOBAO_TRAIN}")
def test_taobao_schema_reads_the_sample_and_a_two_tower_model_trains_a_step():
    schema = load_schema("taobao")
    dataset = make_dataset(schema, str(TAOBAO_TRAIN), 64)
    rows = sum(int(tf.size(labels)) for _, labels in dataset)
    assert rows == 100
    features, labels = next(iter(dataset))
    assert features["adgroup_id"].dtype == tf.string and features["price"].dtype == tf.float32
    assert set(features) >= set(schema.serving_columns())
    model = build_model(_config("taobao"), schema)
    before = model.light.variables[0].numpy().copy()
    logs = model.train_step((features, labels))
    assert np.isfinite(float(logs["loss"]))
    assert not np.array_equal(before, model.light.variables[0].numpy())
    assert set(model.light_processor.input_columns) == set(schema.serving_columns())
