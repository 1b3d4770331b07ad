"""Ranking distillation after Tang & Wang (`topk`): ranks, weights and losses by hand,
groups of one and groups without (or with only) positives, and the knob guards."""

import math

import numpy as np
import pytest
import tensorflow as tf

from rocketctr.config.core import Config, ConfigError
from rocketctr.distill.topk import TopKConfig, group_ranks, topk_per_example
from rocketctr.features.schema import load_schema
from rocketctr.model.cotrain import build_model, variable_role
from tests.helpers import frappe_rows_of_four_users, random_labels

FRAPPE = load_schema("frappe")


def _softplus(x):  # BCE(1, σ(l)) = log(1 + e^-l)
    return math.log1p(math.exp(-x))


def _loss(t, light, labels, groups, **knobs):
    return topk_per_example(
        tf.constant(t), tf.constant(light), tf.constant(labels), tf.constant(groups),
        TopKConfig(**knobs),
    ).numpy()  # fmt: skip


def test_ranks_within_groups_ties_to_the_earlier_row():
    ranks, sizes = group_ranks(tf.constant([0.5, 2.0, 0.5, 1.0, 3.0]),
                               tf.constant(["u", "u", "u", "v", "u"]))  # fmt: skip
    np.testing.assert_array_equal(ranks.numpy(), [2, 1, 3, 0, 0])
    np.testing.assert_array_equal(sizes.numpy(), [4, 4, 4, 1, 4])


def test_four_rows_position_weighting_by_hand():
    # Group u: rows 0, 1, 3 (teacher order: 0, 3, 1); group v: row 2 alone.
    t, light = [2.0, -1.0, 5.0, 0.0], [0.5, 1.0, 0.0, -1.0]
    groups = ["u", "u", "v", "u"]
    # k = 1: only u's first choice, row 0, unlabelled: weight 1.
    np.testing.assert_allclose(_loss(t, light, [0.0] * 4, groups), [_softplus(0.5), 0, 0, 0],
                               rtol=1e-6)  # fmt: skip
    # k = 2, decay 1: rows 0 (r 0) and 3 (r 1), weights e^0 and e^-1 over (1 + e^-1).
    norm = 1 + math.exp(-1)
    expected = [_softplus(0.5) / norm, 0, 0, math.exp(-1) * _softplus(-1.0) / norm]
    np.testing.assert_allclose(_loss(t, light, [0.0] * 4, groups, k=2), expected, rtol=1e-6)
    # A labelled positive is no extra positive: row 0 drops out, row 3 keeps its weight.
    expected[0] = 0.0
    np.testing.assert_allclose(_loss(t, light, [1.0, 0, 0, 0], groups, k=2), expected, rtol=1e-6)
    # A group of only positives adds nothing; k never takes a group's last row (k = 5: u's
    # rows 0 and 3, not row 1); v's lone row 2 never counts.
    np.testing.assert_array_equal(_loss(t, light, [1.0] * 4, groups, k=3), [0.0] * 4)
    out = _loss(t, light, [0.0] * 4, groups, k=5)
    assert out[0] > 0 and out[3] > 0 and out[1] == 0 and out[2] == 0
    np.testing.assert_array_equal(_loss(t, light, [0.0] * 4, ["a", "b", "c", "d"], k=3), [0] * 4)


def test_rank_discrepancy_weighs_only_rows_the_light_net_ranks_lower():
    t, groups = [3.0, 2.0, 1.0], ["u"] * 3
    # The light net ranks row 0 last (r̂ 2 vs r 0) and row 1 first (r̂ 0 vs r 1).
    light = [0.0, 5.0, 1.0]
    out = _loss(t, light, [0.0] * 3, groups, k=2, weighting="rank_discrepancy", mu=0.5)
    norm = 1 + math.exp(-1)
    np.testing.assert_allclose(out, [math.tanh(0.5 * 2) * _softplus(0.0) / norm, 0.0, 0.0],
                               rtol=1e-6)  # fmt: skip


def _config(**topk):
    return Config.from_dict({
        "schema": "frappe",
        "model": {"embedding_dim": 4, "booster": {"name": "dcn", "hidden_units": [8],
                  "num_cross_layers": 1}, "light": {"name": "mlp", "hidden_units": [4]}},
        "distill": {"methods": {"topk": {"weight": 1.0, **topk}}},
    })  # fmt: skip


def test_topk_gradient_reaches_the_light_side_never_the_booster():
    model = build_model(_config(k=2), FRAPPE)
    features = frappe_rows_of_four_users(FRAPPE)
    with tf.GradientTape() as tape:
        losses = model.compute_losses(features, tf.zeros([32]), training=True)
    variables = model.trainable_variables
    grads = tape.gradient(losses["topk"], variables)
    for variable, grad in zip(variables, grads, strict=True):
        values = np.zeros(0) if grad is None else tf.convert_to_tensor(grad).numpy()
        if variable_role(variable.name) == "booster":
            assert not np.any(values), variable.name
        elif variable_role(variable.name) == "light":
            assert np.any(values), variable.name
    assert float(losses["topk"]) > 0
    logs = model.train_step((features, random_labels(32)))
    assert float(logs["topk"]) > 0


def test_topk_knobs_are_guarded():
    with pytest.raises(ConfigError, match="topk.k must be >= 1"):
        build_model(_config(k=0), FRAPPE)
    with pytest.raises(ConfigError, match=r"weighting must be one of \['position', "
                       r"'rank_discrepancy'\]"):  # fmt: skip
        build_model(_config(weighting="hybrid"), FRAPPE)
    with pytest.raises(ConfigError, match="topk.mu is read with weighting 'rank_discrepancy'"):
        build_model(_config(mu=2.0), FRAPPE)
    with pytest.raises(ConfigError, match="topk.decay must be finite and > 0"):
        build_model(_config(decay=0.0), FRAPPE)
    criteo = Config.from_dict({"distill": {"methods": {"topk": {}}}})
    with pytest.raises(ConfigError, match="the schema needs a request_id or user_id column"):
        build_model(criteo, load_schema("criteo"))
