"""Multi-valued categorical features: parsing to slot ids, pooling, training, export."""

from __future__ import annotations

import rocketctr  # noqa: F401  (selects Keras 2 before TensorFlow loads)

# isort: split
import numpy as np
import pytest
import tensorflow as tf

from rocketctr import serving
from rocketctr.config.core import Config
from rocketctr.data import make_dataset
from rocketctr.features.processor import HASH_SPACE, FeatureProcessor
from rocketctr.features.schema import SchemaError, load_schema, parse_schema
from rocketctr.model.cotrain import build_model


def _schema(pooling: str = "mean", **extra):
    return parse_schema(
        {
            "name": "movies",
            "format": "tsv",
            "columns": ["y", "user", "genres", "tags", "x"],
            "label": "y",
            "dense": [{"name": "x"}],
            "categorical": [
                {"name": "user", "hash_buckets": 7},
                {
                    "name": "genres",
                    "hash_buckets": 10,
                    "multi_valued": {"separator": "|", "max_length": 3, "pooling": pooling},
                },
                {
                    "name": "tags",
                    "num_ids": 5,
                    "id_offset": 1,
                    "multi_valued": {"separator": ",", "max_length": 2, "pooling": "sum"},
                },
            ],
            **extra,
        }
    )


# Over-long, empty, separators at the ends and doubled, one value.
FEATURES = {
    "user": tf.constant(["u1", "u2", "u3", "u1"]),
    "genres": tf.constant(["a|b|c|d", "", "|a||b|", "b"]),
    "tags": tf.constant(["3,x", "", "99,4,2", ",5"]),
    "x": tf.constant([1.0, 2.0, 3.0, 4.0]),
}


def _hashed(value: str, buckets: int) -> int:
    return int(tf.strings.to_hash_bucket_fast(value, HASH_SPACE).numpy()) % buckets


def test_values_become_slots_of_row_ids_with_minus_one_for_none():
    schema = _schema()
    processor = FeatureProcessor(schema)
    ids, _ = processor(FEATURES)
    assert processor.slot_names == ("user",) + ("genres",) * 3 + ("tags",) * 2
    a, b, c = (7 + _hashed(v, 10) for v in "abc")  # genres' rows start after user's 7
    # tags: ids 1..5 are rows 0..4, anything else the OOV row 5; its block starts at 17.
    expected = [
        [a, b, c, 17 + 2, 17 + 5],  # a|b|c|d: the first 3; tags 3 -> 2, "x" -> OOV
        [-1, -1, -1, -1, -1],  # nothing
        [a, b, -1, 17 + 5, 17 + 3],  # empty values dropped; 99 -> OOV, 4 -> 3; 2 cut off
        [b, -1, -1, 17 + 4, -1],  # ",5": one value
    ]
    np.testing.assert_array_equal(ids.numpy()[:, 1:], expected)
    assert [f.name for f in processor.categorical] == ["user", "genres", "tags"]


@pytest.mark.parametrize("pooling", ["mean", "sum"])
def test_pooling_by_hand(pooling):
    processor = FeatureProcessor(_schema(pooling))
    ids, _ = processor(FEATURES)
    values = tf.reshape(tf.range(4 * 6 * 2, dtype=tf.float32), [4, 6, 2])  # [B, S, d]
    pooled = processor.pool(values, ids).numpy()
    v = values.numpy()
    assert pooled.shape == (4, 3, 2)
    np.testing.assert_array_equal(pooled[:, 0], v[:, 0])  # single-valued: as it is
    genres = {"mean": [v[0, 1:4].mean(0), 0 * v[0, 1], v[2, 1:3].mean(0), v[3, 1]],
              "sum": [v[0, 1:4].sum(0), 0 * v[0, 1], v[2, 1:3].sum(0), v[3, 1]]}  # fmt: skip
    np.testing.assert_allclose(pooled[:, 1], genres[pooling])
    tags = [v[0, 4:6].sum(0), 0 * v[0, 4], v[2, 4:6].sum(0), v[3, 4]]  # always "sum"
    np.testing.assert_allclose(pooled[:, 2], tags)


def test_a_training_step_reads_and_updates_only_the_rows_of_present_values():
    schema = _schema()
    config = Config.from_dict(
        {
            "model": {
                "embedding_dim": 4,
                "booster": {"name": "dcn", "hidden_units": [8], "num_cross_layers": 1},
                "light": {"name": "mlp", "hidden_units": [4]},
            },
            "train": {"embedding_optimizer": {"name": "lazy_adam", "learning_rate": 0.01}},
        }
    )
    model = build_model(config, schema)
    ids, _ = model.processor(FEATURES)
    with tf.GradientTape() as tape:
        loss = model.compute_losses(FEATURES, tf.constant([1.0, 0, 1, 0]), training=True)["loss"]
    grad = tape.gradient(loss, model.embedding.table)
    assert isinstance(grad, tf.IndexedSlices)
    read = set(ids.numpy().ravel()) - {-1}
    assert set(grad.indices.numpy()) == read
    before = model.embedding.table.numpy()
    model.train_step((FEATURES, tf.constant([1.0, 0, 1, 0])))
    moved = set(np.flatnonzero(np.any(model.embedding.table.numpy() != before, axis=1)))
    assert moved == read  # lazy Adam: no row that no value read


def test_lr_first_order_weights_are_pooled_like_the_embeddings():
    schema = _schema()
    config = Config.from_dict(
        {"model": {"light": {"name": "lr"}}, "distill": {"mode": "light_only"}}
    )
    model = build_model(config, schema)
    w = np.arange(23, dtype=np.float32)[:, None] / 100  # 7 + 10 + 6 rows, its own layout
    model.light.first_order.table.assign(w)
    model.light.linear.dense_weights.kernel.assign([[0.0]])
    logits = model.light_logits(FEATURES).numpy()
    ids = model.processor(FEATURES)[0].numpy()
    for row in range(4):
        genres = [w[i, 0] for i in ids[row, 1:4] if i >= 0]
        tags = [w[i, 0] for i in ids[row, 4:6] if i >= 0]
        expected = w[ids[row, 0], 0] + (np.mean(genres) if genres else 0) + sum(tags)
        np.testing.assert_allclose(logits[row], expected, rtol=1e-5)


def test_export_scores_delimited_strings_and_repeated_example_values_alike(tmp_path):
    schema = _schema(privileged=["tags"])
    config = Config.from_dict(
        {"model": {"embedding_dim": 4, "light": {"name": "mlp", "hidden_units": [4]}}}
    )
    model = build_model(config, schema)
    model.train_step((FEATURES, tf.constant([1.0, 0, 1, 0])))
    path = serving.export_light(model, tmp_path, example_features=FEATURES)  # verified
    loaded = tf.saved_model.load(str(path))
    served = loaded.signatures["serving_default"]
    assert set(served.structured_input_signature[1]) == {"user", "genres", "x"}
    expected = model.light_logits({c: FEATURES[c] for c in ("user", "genres", "x")}).numpy()
    by_string = served(**{c: FEATURES[c] for c in ("user", "genres", "x")})["logits"]
    np.testing.assert_allclose(by_string.numpy(), expected, atol=1e-6)
    examples = []
    for row in range(4):
        genres = [g.encode() for g in FEATURES["genres"].numpy()[row].decode().split("|")]
        feature = {
            "user": tf.train.Feature(
                bytes_list=tf.train.BytesList(value=[FEATURES["user"].numpy()[row]])
            ),
            "genres": tf.train.Feature(bytes_list=tf.train.BytesList(value=genres)),
            "x": tf.train.Feature(
                float_list=tf.train.FloatList(value=[FEATURES["x"].numpy()[row]])
            ),
        }
        examples.append(
            tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()
        )
    by_example = loaded.signatures["predict_examples"](examples=tf.constant(examples))["logits"]
    np.testing.assert_allclose(by_example.numpy(), expected, atol=1e-6)


@pytest.mark.parametrize(
    ("multi", "match"),
    [
        ({"separator": ""}, "separator.*non-empty"),
        ({"max_length": 0}, "max_length.*positive"),
        ({"pooling": "max"}, r"pooling.*\['mean', 'sum'\]"),
        ({"sep": "|"}, "multi_valued.sep.*unknown key"),
    ],
)
def test_bad_multi_valued_specs_are_refused_naming_the_key(multi, match):
    spec = _schema().to_dict()
    spec["categorical"][1]["multi_valued"] = multi
    with pytest.raises(SchemaError, match=match):
        parse_schema(spec)


def test_multi_valued_is_refused_for_libfm_and_with_derive():
    spec = _schema().to_dict()
    with pytest.raises(SchemaError, match="libfm files hold one value per field"):
        parse_schema({**spec, "format": "libfm"})
    spec["categorical"][2] = {**spec["categorical"][2], "derive": "weekday"}
    with pytest.raises(SchemaError, match="cannot be combined with 'derive'"):
        parse_schema(spec)


def test_the_schema_round_trips_through_to_dict():
    schema = _schema()
    assert parse_schema(schema.to_dict(), source=schema.source) == schema


def test_the_movielens_schema_reads_joined_rows_and_pools_the_genres(tmp_path):
    # Hand-made rows in the layout the schema documents (the data is not shipped).
    path = tmp_path / "ml.csv"
    path.write_text(
        "label,user_id,movie_id,gender,age,occupation,zip_code,genres\n"
        "1,1,1193,F,1,10,48067,Drama\n"
        "0,2,1,M,56,16,70072,Animation|Children's|Comedy\n"
        "1,6040,3952,M,25,0,11106,\n"
    )
    schema = load_schema("movielens")
    features, labels = next(iter(make_dataset(schema, str(path), 8)))
    assert features["genres"].numpy().tolist() == [b"Drama", b"Animation|Children's|Comedy", b""]
    model = build_model(Config.from_dict({"model": {"embedding_dim": 4}}), schema)
    ids = model.processor(features)[0].numpy()
    genres = ids[:, -8:]
    assert [int((row >= 0).sum()) for row in genres] == [1, 3, 0]
    assert ids[2, 0] == 6039  # user 6040 (id_offset 1): the block's last id row
    logs = model.train_step((features, labels))
    assert np.isfinite(float(logs["loss"]))
