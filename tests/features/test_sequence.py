"""Behaviour sequences (they read their item feature's rows) and the DIN booster."""

from __future__ import annotations

import rocketctr  # noqa: F401  (selects Keras 2 before TensorFlow loads)

# isort: split
import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from rocketctr import serving
from rocketctr.config.core import Config, ConfigError
from rocketctr.data import make_dataset
from rocketctr.features.processor import FeatureProcessor
from rocketctr.features.schema import SchemaError, load_schema, parse_schema
from rocketctr.model.cotrain import build_model
from rocketctr.serving.verification import loaded_variables
from rocketctr.towers.din import TargetAttention
from tests.helpers import SHARED_DATA, tiny_config

TAOBAO_TRAIN = SHARED_DATA / "taobao_ad_tiny" / "fuxictr_tiny_train.csv"


def _spec(**extra):
    return {
        "name": "clicks",
        "format": "csv",
        "columns": ["y", "user", "item", "clicks"],
        "label": "y",
        "categorical": [
            {"name": "user", "hash_buckets": 11},
            {
                "name": "clicks",
                "sequence": {"separator": "^", "max_length": 4, "item_feature": "item"},
            },
            {"name": "item", "hash_buckets": 13},
        ],
        **extra,
    }


SCHEMA = parse_schema(_spec())
FEATURES = {
    "user": tf.constant(["a", "b", "c", "d"]),
    "item": tf.constant(["i1", "i2", "i3", "i9"]),
    "clicks": tf.constant(["i2^i1", "", "^i3^i4^i5^i6^i7", "i9"]),
}


DIN = {"name": "din", "hidden_units": [8], "attention_units": [6]}


def _config(booster=DIN, **model) -> Config:
    return tiny_config({"booster": booster, **model})


def test_a_sequence_reads_its_item_features_rows_and_owns_none():
    clicks = next(f for f in SCHEMA.categorical if f.name == "clicks")
    assert clicks.sequence_of == "item" and clicks.num_rows == 0 and clicks.hash_buckets == 13
    processor = FeatureProcessor(SCHEMA)
    assert processor.num_table_rows == 11 + 13
    ids, _ = processor(FEATURES)
    items = {
        v.decode(): int(i) for v, i in zip(FEATURES["item"].numpy(), ids[:, 1].numpy(), strict=True)
    }
    slots = ids[:, 2:].numpy()
    assert slots[0].tolist() == [items["i2"], items["i1"], -1, -1]
    assert slots[1].tolist() == [-1] * 4
    assert slots[2, 0] == items["i3"] and -1 not in slots[2]  # the first four values
    assert slots[3].tolist() == [items["i9"], -1, -1, -1]
    assert parse_schema(SCHEMA.to_dict(), source=SCHEMA.source) == SCHEMA  # round trip


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"item_feature": "nope"}, "item_feature.*must name a categorical feature"),
        ({"item_feature": "clicks"}, "item_feature.*must name a categorical feature"),
        ({"max_length": 0}, "max_length.*positive"),
        ({"length": 3}, "sequence.length.*unknown key"),
    ],
)
def test_bad_sequence_entries_are_refused(change, match):
    spec = _spec()
    spec["categorical"][1]["sequence"] = {**spec["categorical"][1]["sequence"], **change}
    with pytest.raises(SchemaError, match=match):
        parse_schema(spec)


def test_a_sequence_cannot_own_rows_or_be_served_without_its_item():
    spec = _spec()
    spec["categorical"][1]["hash_buckets"] = 5
    with pytest.raises(SchemaError, match="hash_buckets.*taken from the sequence's item_feature"):
        parse_schema(spec)
    with pytest.raises(SchemaError, match="lists 'item' but not the sequence 'clicks'"):
        parse_schema(_spec(privileged=["item"]))
    assert parse_schema(_spec(privileged=["clicks", "item"])).privileged == ("clicks", "item")


def test_target_attention_by_hand():
    layer = TargetAttention([3], length=3)
    query = tf.constant([[1.0, 0.0], [0.5, -1.0]])
    keys = tf.constant([[[1.0, 2.0], [0.0, 1.0], [3.0, 3.0]], [[2.0, 0.0], [1.0, 1.0], [0.0, 0.0]]])
    present = tf.constant([[1.0, 1.0, 0.0], [0.0, 0.0, 0.0]])  # row 2: an empty sequence
    out = layer(query, keys, present).numpy()
    (w1, b1), (w2, b2) = (layer.mlp.blocks[0][0].weights, layer.score.weights)
    for row in range(2):
        q, total = query.numpy()[row], np.zeros(2)
        for t in range(3):
            k = keys.numpy()[row, t]
            hidden = np.maximum(np.concatenate([q, k, q - k, q * k]) @ w1.numpy() + b1.numpy(), 0)
            score = (hidden @ w2.numpy() + b2.numpy()).item()  # no softmax, as in DIN
            total += present.numpy()[row, t] * score * k
        np.testing.assert_allclose(out[row], total, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(out[1], [0.0, 0.0])


def test_din_needs_a_sequence():
    schema = parse_schema({**_spec(), "categorical": _spec()["categorical"][::2]})
    with pytest.raises(ValueError, match="din tower needs a behaviour sequence"):
        build_model(_config(), schema)
    with pytest.raises(ConfigError, match="does not use \\['attention_units'\\]"):
        build_model(_config(booster={"name": "dcn", "attention_units": [4]}), SCHEMA)


def test_a_din_booster_trains_the_item_rows_through_the_sequence_and_the_light_net_exports(
    tmp_path,
):
    model = build_model(_config(), SCHEMA)
    labels = tf.constant([1.0, 0.0, 1.0, 0.0])
    with tf.GradientTape() as tape:
        outputs = model.tower_outputs(FEATURES, training=True)
        loss = tf.reduce_sum(outputs["booster"].logits)
    assert outputs["booster"].hidden["interest"].shape == (4, 4)
    grad = tape.gradient(loss, model.embedding.table)
    ids = model.processor(FEATURES)[0].numpy()
    assert set(grad.indices.numpy()) == set(ids.ravel()) - {-1}  # i4..i7: rows of item
    logs = model.train_step((FEATURES, labels))
    assert np.isfinite(float(logs["loss"]))
    path = serving.export_light(model, tmp_path, example_features=FEATURES)  # verified
    names = {v.name for v in loaded_variables(tf.saved_model.load(str(path)))}
    assert not any("booster" in n or "attention" in n for n in names)
    view = model.tower_view("booster")
    assert sorted(view.output) == ["interest", "logits", "mlp"]


def test_a_privileged_sequence_reaches_the_booster_only(tmp_path):
    # Seeded: the export gate refuses a light net that, unseeded, may score 4 rows alike.
    tf_keras.utils.set_random_seed(0)
    schema = parse_schema(_spec(privileged=["clicks"]))
    model = build_model(_config(), schema)
    assert [f.name for f in model.light_processor.categorical] == ["user", "item"]
    model.train_step((FEATURES, tf.constant([1.0, 0.0, 1.0, 0.0])))
    path = serving.export_light(model, tmp_path, example_features=FEATURES)
    inputs = tf.saved_model.load(str(path)).signatures["serving_default"].structured_input_signature
    assert set(inputs[1]) == {"user", "item"}


def test_fm_first_order_weights_of_a_sequence_are_its_items():
    model = build_model(_config(light={"name": "fm"}), SCHEMA)
    table = model.light.first_order.table
    assert tuple(table.shape) == (11 + 13, 1)  # the sequence owns no row
    table.assign(np.arange(24, dtype=np.float32)[:, None])
    ids = model.light_processor(FEATURES)[0]
    weights = model.light.first_order(ids, model.light_processor.slot_fields).numpy()
    np.testing.assert_array_equal(weights[0, 2:4], [weights[1, 1], weights[0, 1]])  # i2, i1
    assert weights[1, 2:].tolist() == [0.0] * 4  # empty slots read nothing


@pytest.mark.skipif(not TAOBAO_TRAIN.exists(), reason=f"shared data absent: {TAOBAO_TRAIN}")
def test_the_tiny_taobao_files_train_a_din_booster_through_the_click_sequence():
    schema = load_schema("taobao")
    clicks = next(f for f in schema.categorical if f.name == "click_sequence")
    assert clicks.sequence_of == "adgroup_id"
    features, labels = next(iter(make_dataset(schema, str(TAOBAO_TRAIN), 100)))
    raw = features["click_sequence"].numpy()
    assert b"170301^573514" in raw.tolist()
    model = build_model(_config(), schema)
    ids = model.processor(features)[0].numpy()
    lengths = [len(v.decode().split("^")) if v else 0 for v in raw]
    slots = ids[:, -clicks.multi_valued.max_length :]
    assert [int((row >= 0).sum()) for row in slots] == [
        min(n, clicks.multi_valued.max_length) for n in lengths
    ]
    logs = model.train_step((features, labels))
    assert np.isfinite(float(logs["loss"]))
