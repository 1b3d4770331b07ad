"""LR and FM light nets: per-id first-order weights in their own table, the pairwise term
over the shared embeddings, and what their exports hold."""

from __future__ import annotations

import rocketctr  # noqa: F401  (selects Keras 2 before TensorFlow loads)

# isort: split
import numpy as np
import pytest
import tensorflow as tf

from rocketctr import serving
from rocketctr.config.core import Config
from rocketctr.features.schema import parse_schema
from rocketctr.model.cotrain import build_model, variable_role
from rocketctr.serving.verification import loaded_variables
from rocketctr.towers.fm import fm_pairwise

# Three id fields (4, 3 and 5 table rows: ids + the OOV row) and one dense column; `b` is
# privileged, so the light net's fields are a and c: 4 + 5 = 9 rows.
SCHEMA = parse_schema(
    {
        "name": "tiny",
        "format": "csv",
        "columns": ["y", "a", "b", "c", "x"],
        "label": "y",
        "dense": [{"name": "x"}],
        "categorical": [
            {"name": "a", "num_ids": 3},
            {"name": "b", "num_ids": 2},
            {"name": "c", "num_ids": 4},
        ],
        "privileged": ["b"],
    }
)
FEATURES = {
    "a": tf.constant(["0", "2", "1", "9"]),  # "9": out of range, the OOV row 3
    "b": tf.constant(["1", "0", "1", "0"]),
    "c": tf.constant(["3", "0", "x", "2"]),  # "x": the OOV row 4
    "x": tf.constant([0.5, -1.0, 2.0, np.nan]),
}
LOCAL_IDS = {"a": [0, 2, 1, 3], "c": [3, 0, 4, 2]}


def _model(light: str, mode: str = "co_train", model: dict | None = None, **train):
    config = Config.from_dict(
        {
            "model": {
                "embedding_dim": 3,
                "booster": {"name": "dcn", "hidden_units": [4], "num_cross_layers": 1},
                "light": {"name": light},
                **(model or {}),
            },
            "distill": {"mode": mode},
            "train": train,
        }
    )
    return build_model(config, SCHEMA)


def test_fm_pairwise_equals_the_explicit_sum_over_field_pairs():
    embeddings = np.array(
        [[[1, 2], [3, -1], [0, 4]], [[-2, 1], [1, 1], [2, -3]]], dtype=np.float32
    )  # [B=2, F=3, d=2]
    explicit = [
        sum(float(row[i] @ row[j]) for i in range(3) for j in range(i + 1, 3)) for row in embeddings
    ]
    assert explicit == [1 + 8 - 4, -1 - 7 - 1]  # worked by hand: 5, -9
    np.testing.assert_allclose(fm_pairwise(tf.constant(embeddings)).numpy(), explicit)


def test_the_first_order_table_holds_the_light_fields_rows_only():
    model = _model("fm")
    table = model.light.first_order.table
    assert tuple(table.shape) == (4 + 5, 1)
    assert variable_role(table.name) == "light"
    assert not np.any(table.numpy())  # starts at 0: the net starts as its bias


def test_fm_logits_by_hand():
    model = _model("fm")
    rng = np.random.default_rng(0)
    w = rng.normal(size=(9, 1)).astype(np.float32)
    model.light.first_order.table.assign(w)
    model.light.linear.dense_weights.kernel.assign([[0.7]])
    model.light.linear.dense_weights.bias.assign([0.2])
    logits = model.light_logits({c: FEATURES[c] for c in ("a", "c", "x")}).numpy()

    ids, _ = model.light_processor({c: FEATURES[c] for c in ("a", "c", "x")})
    v = model.embedding(ids).numpy()  # [4, 2, 3]: fields a and c
    x = np.nan_to_num(FEATURES["x"].numpy())  # missing is 0
    for row in range(4):
        first_order = w[LOCAL_IDS["a"][row], 0] + w[4 + LOCAL_IDS["c"][row], 0]
        expected = 0.2 + 0.7 * x[row] + first_order + float(v[row, 0] @ v[row, 1])
        np.testing.assert_allclose(logits[row], expected, rtol=1e-5, atol=1e-6)


def test_lr_logits_by_hand_read_no_embedding():
    model = _model("lr", mode="light_only")
    w = np.arange(9, dtype=np.float32)[:, None] / 10
    model.light.first_order.table.assign(w)
    model.light.linear.dense_weights.kernel.assign([[-0.5]])
    model.light.linear.dense_weights.bias.assign([0.1])
    features = {c: FEATURES[c] for c in ("a", "c", "x")}
    logits = model.light_logits(features).numpy()
    x = np.nan_to_num(FEATURES["x"].numpy())
    expected = [
        0.1 - 0.5 * x[r] + w[LOCAL_IDS["a"][r], 0] + w[4 + LOCAL_IDS["c"][r], 0] for r in range(4)
    ]
    np.testing.assert_allclose(logits, expected, rtol=1e-5, atol=1e-6)
    assert not model.embedding.built  # light_only LR: no embedding table exists at all
    assert model.light_table() is None


@pytest.mark.parametrize("light", ["lr", "fm"])
def test_the_first_order_table_trains_with_the_embedding_optimizer_on_touched_rows(light):
    model = _model(light, light_optimizer={"name": "adam", "learning_rate": 0.1})
    table = model.light.first_order.table
    assert any(v is table for v in model.embedding_variables())
    assert not any(v is table for v in model.light_variables() + model.dense_variables())
    labels = tf.constant([1.0, 0.0, 1.0, 0.0])
    model.train_step((FEATURES, labels))
    touched = {LOCAL_IDS["a"][r] for r in range(4)} | {4 + LOCAL_IDS["c"][r] for r in range(4)}
    moved = set(np.flatnonzero(table.numpy()[:, 0]))
    assert moved == touched  # rows no example had stay at exactly 0
    assert light == "fm" or model.light_table() is None


def test_embedding_table_l2_covers_the_first_order_table():
    # light_only LR: the only table of rows is the first-order one.
    model = _model("lr", mode="light_only", model={"embedding_table_l2": 0.2})
    model.light.first_order.table.assign(np.ones((9, 1), np.float32))
    model(FEATURES, training=True)
    np.testing.assert_allclose(float(tf.add_n(model.losses)), 0.1 * 9, rtol=1e-6)


@pytest.mark.parametrize("light", ["lr", "fm"])
def test_the_export_holds_the_first_order_table_and_for_lr_no_embedding(tmp_path, light):
    model = _model(light)
    model.train_step((FEATURES, tf.constant([1.0, 0.0, 1.0, 0.0])))
    rows = {c: FEATURES[c] for c in ("a", "b", "c", "x")}
    path = serving.export_light(model, tmp_path, example_features=rows)  # verified, parity
    variables = {v.name: v for v in loaded_variables(tf.saved_model.load(str(path)))}
    names = {
        "rocketctr/light/first_order/table:0",
        "rocketctr/light/linear/dense_weights/kernel:0",
        "rocketctr/light/linear/dense_weights/bias:0",
    }
    if light == "fm":
        names.add("shared_embedding/light_rows:0")
        assert tuple(variables["shared_embedding/light_rows:0"].shape) == (9, 3)
    assert set(variables) == names
    exported = variables["rocketctr/light/first_order/table:0"].numpy()
    np.testing.assert_array_equal(exported, model.light.first_order.table.numpy())
    served = tf.saved_model.load(str(path)).signatures["serving_default"](
        **{c: FEATURES[c] for c in ("a", "c", "x")}
    )["logits"]
    expected = model.light_logits({c: FEATURES[c] for c in ("a", "c", "x")})
    np.testing.assert_allclose(served.numpy(), expected.numpy(), atol=1e-6)
    info = serving.read_export_info(path)
    assert info["embedding_table"]["rows"] == (9 if light == "fm" else 0)
    assert info["parameters"]["light"]["embedding"] == (27 if light == "fm" else 0)


def test_without_dense_columns_the_linear_part_is_a_bias():
    # No 0-wide matmul (oneDNN aborts the process on one in a traced graph).
    schema = parse_schema({**SCHEMA.to_dict(), "dense": []})
    config = Config.from_dict({"model": {"embedding_dim": 2, "light": {"name": "fm"}}})
    model = build_model(config, schema)
    assert model.light.linear.dense_weights is None
    assert model.light.flops(num_fields=2, embedding_dim=2) == 2 + 3 * 2 * 2 + 3 * 2
    model.light.linear.bias.assign(0.25)
    features = {c: FEATURES[c] for c in ("a", "b", "c")}
    ids, _ = model.light_processor(features)
    expected = 0.25 + fm_pairwise(model.embedding(ids))  # first-order weights start at 0
    np.testing.assert_allclose(model.light_logits(features), expected, rtol=1e-6)
    fit = model.fit(
        tf.data.Dataset.from_tensors((features, tf.constant([1.0, 0.0, 1.0, 0.0]))), verbose=0
    )
    assert np.isfinite(fit.history["loss"][0])
