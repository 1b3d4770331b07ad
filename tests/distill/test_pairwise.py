"""Pairwise ranking distillation: hand-worked values, groups of one and without positives,
the gradient block, and the config guards."""

import dataclasses
import math

import numpy as np
import pytest
import tensorflow as tf

from rocketctr.config.core import Config, ConfigError
from rocketctr.distill.pairwise import pairwise_per_example
from rocketctr.features.schema import load_schema
from rocketctr.model.cotrain import build_model, variable_role
from rocketctr.towers import TowerOutput
from tests.helpers import frappe_rows_of_four_users, random_labels, tiny_config

FRAPPE = load_schema("frappe")  # user_id: user


def _sigmoid(x):
    return 1 / (1 + math.exp(-x))


def _bce(p, logit):
    q = _sigmoid(logit)
    return -(p * math.log(q) + (1 - p) * math.log(1 - q))


def _loss(t, light, groups, temperature=1.0):
    return pairwise_per_example(
        tf.constant(t), tf.constant(light), tf.constant(groups), temperature
    ).numpy()


def test_two_rows_by_hand():
    # The teacher prefers row 0 (σ(1 − 0) = 0.731); the light net is indifferent (σ(0) = 0.5):
    # BCE(0.731, 0.5) = ln 2 for the pair, seen from either row.
    np.testing.assert_allclose(
        _loss([1.0, 0.0], [0.0, 0.0], ["u", "u"]), [math.log(2)] * 2, rtol=1e-6
    )
    # Light already orders them as the teacher: what remains is the target's entropy.
    p = _sigmoid(1.0)
    entropy = -(p * math.log(p) + (1 - p) * math.log(1 - p))
    np.testing.assert_allclose(_loss([1.0, 0.0], [3.0, 2.0], ["u", "u"]), [entropy] * 2, rtol=1e-6)
    # Temperature 2 softens the teacher's preference: σ(1 / 2).
    np.testing.assert_allclose(
        _loss([1.0, 0.0], [0.0, 0.0], ["u", "u"], temperature=2.0), [math.log(2)] * 2, rtol=1e-6
    )
    q = _loss([1.0, 0.0], [0.5, 0.0], ["u", "u"], temperature=2.0)
    np.testing.assert_allclose(q[0], _bce(_sigmoid(0.5), 0.5), rtol=1e-6)


def test_four_rows_groups_of_one_contribute_nothing():
    t, light = [2.0, 0.0, 1.0, -1.0], [1.0, 1.0, 0.0, 3.0]
    groups = ["u", "u", "v", "u"]  # u: rows 0, 1, 3; v: row 2 alone
    expected = [
        (_bce(_sigmoid(2 - 0), 1 - 1) + _bce(_sigmoid(2 + 1), 1 - 3)) / 2,
        (_bce(_sigmoid(0 - 2), 1 - 1) + _bce(_sigmoid(0 + 1), 1 - 3)) / 2,
        0.0,
        (_bce(_sigmoid(-1 - 2), 3 - 1) + _bce(_sigmoid(-1 - 0), 3 - 1)) / 2,
    ]
    np.testing.assert_allclose(_loss(t, light, groups), expected, rtol=1e-6)
    np.testing.assert_array_equal(_loss(t, light, ["a", "b", "c", "d"]), [0.0] * 4)
    # Integer group ids work the same.
    np.testing.assert_allclose(_loss(t, light, [7, 7, 8, 7]), expected, rtol=1e-6)


def _config(**pairwise):
    methods = {"pairwise": pairwise} if pairwise else {"kd": {}}
    return tiny_config(schema="frappe", distill={"methods": methods})


def _features():
    return frappe_rows_of_four_users(FRAPPE)


def test_groups_without_a_positive_are_distilled_too():
    # The method reads no label: a group of negatives still learns the teacher's order.
    model = build_model(_config(weight=0.5), FRAPPE)
    features = _features()
    zeros = model.compute_losses(features, tf.zeros([32]), training=False)
    ones = model.compute_losses(features, tf.ones([32]), training=False)
    assert float(zeros["pairwise"]) > 0
    assert float(zeros["pairwise"]) == pytest.approx(float(ones["pairwise"]), rel=1e-6)


def test_pairwise_gradient_reaches_the_light_side_never_the_booster():
    # float32 towers: the gradients of a logit shift cancel exactly only there (bf16 towers
    # round each row's logit gradient before the sum).
    config = _config(weight=0.5, temperature=2.0).replace({"train.mixed_precision": "float32"})
    model = build_model(config, FRAPPE)
    features, labels = _features(), random_labels(32)
    with tf.GradientTape() as tape:
        losses = model.compute_losses(features, labels, training=True)
        term = 0.5 * losses["pairwise"]
    grads = tape.gradient(term, model.trainable_variables)
    by_role = {}
    for variable, grad in zip(model.trainable_variables, grads, strict=True):
        values = np.zeros(0) if grad is None else tf.convert_to_tensor(grad).numpy()
        by_role.setdefault(variable_role(variable.name), []).append((variable.name, values))
    assert len(by_role["booster"]) >= 4
    for name, grad in by_role["booster"]:
        assert not np.any(grad), name
    # Only differences of light logits matter: the output bias gets exactly none.
    light = dict(by_role["light"])
    output_bias = [n for n in light if "dense" in n and n.endswith("bias:0")][-1]
    assert not np.any(light.pop(output_bias))
    assert light and all(np.any(grad) for grad in light.values()), list(light)
    # It is part of the total and of what training logs.
    assert float(losses["pairwise"]) > 0
    logs = model.train_step((features, labels))
    assert "pairwise" in logs and float(logs["pairwise"]) > 0


def test_pairwise_knobs_are_guarded():
    with pytest.raises(ConfigError, match="pairwise.temperature must be finite and > 0"):
        build_model(_config(temperature=0.0), FRAPPE)
    criteo = Config.from_dict({"distill": {"methods": {"pairwise": {"weight": 0.1}}}})
    with pytest.raises(ConfigError, match="the schema needs a request_id or user_id column"):
        build_model(criteo, load_schema("criteo"))
    with pytest.raises(ConfigError, match=r"distill.methods.pairwise.weight must be finite"):
        build_model(_config(weight=-1.0), FRAPPE)
    model = build_model(_config(), FRAPPE)  # off: nothing logged
    assert "pairwise" not in [m.name for m in model.metrics]


def test_a_request_id_groups_the_rows_instead_of_the_user(monkeypatch):
    # Frappe rows grouped by their `item` column as if it were the request: 4 requests that
    # cut across the 4 users. Fixed logits, so the two groupings give different losses.
    schema = dataclasses.replace(FRAPPE, request_id="item")
    assert schema.group_column == "item"
    model = build_model(_config(weight=1.0), schema)
    assert model.distiller.group_column == "item"
    teacher = tf.linspace(-2.0, 2.0, 32)
    light = tf.sin(tf.range(32, dtype=tf.float32))
    monkeypatch.setattr(
        model,
        "tower_outputs",
        lambda f, training=None: {
            "booster": TowerOutput(teacher, {}),
            "light": TowerOutput(light, {}),
        },
    )
    features = _features()
    features["item"] = tf.constant(np.tile(["a", "b", "c", "d"], 8))
    losses = model.compute_losses(features, tf.zeros([32]), training=False)
    by_request = _loss(teacher.numpy(), light.numpy(), features["item"].numpy())
    by_user = _loss(teacher.numpy(), light.numpy(), features["user"].numpy())
    assert float(losses["pairwise"]) == pytest.approx(by_request.mean(), rel=1e-5)
    assert abs(by_request.mean() - by_user.mean()) > 0.01
