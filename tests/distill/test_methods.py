"""Every distillation method, alone and combined: the gradient block holds for all of them,
and configs name methods the way the README says (old distill keys still load)."""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from rocketctr.config.core import Config, ConfigError
from rocketctr.distill import method_names
from rocketctr.features.schema import load_schema
from rocketctr.model.cotrain import build_model, variable_role
from tests.helpers import frappe_rows_of_four_users, random_labels, tiny_config

FRAPPE = load_schema("frappe")  # user_id: user
# Every registered method at its default knobs: a new method is covered with no edit here.
ALONE = [{name: {"weight": 0.5}} for name in method_names()]
COMBINED = [
    {"kd": {"weight": 0.3}, "pairwise": {"weight": 0.1}},
    {"kd": {"weight": 1.0}, "hidden": {"weight": 0.3, "teacher_layer": "cross"}},
    {name: {"weight": 0.2} for name in ("kd", "logit_mse", "hidden", "pairwise", "topk")},
]


def _config(methods, **distill):
    return tiny_config(schema="frappe", distill={"methods": methods, **distill})


def _distill_gradients(model):
    """{variable name: dense gradient} of the weighted distillation losses alone."""
    features, labels = frappe_rows_of_four_users(FRAPPE), random_labels(32)
    with tf.GradientTape() as tape:
        losses = model.compute_losses(features, labels, training=True)
        distill = losses["loss"] - losses["light_bce"] - losses["booster_bce"]
    variables = model.trainable_variables
    grads = tape.gradient(distill, variables)
    dense = {
        v.name: np.zeros(v.shape) if g is None else tf.convert_to_tensor(g).numpy()
        for v, g in zip(variables, grads, strict=True)
    }
    return losses, dense


def test_the_registry_holds_every_method():
    assert {"kd", "logit_mse", "hidden", "pairwise", "topk"} <= set(method_names())


@pytest.mark.parametrize("methods", ALONE + COMBINED, ids=lambda m: "+".join(m))
def test_gradient_block_keeps_every_method_off_the_booster(methods):
    # Seeded: with an unlucky initialisation the teacher's top row of every group is a labelled
    # positive, and topk is 0 by definition.
    tf_keras.utils.set_random_seed(0)
    model = build_model(_config(methods), FRAPPE)
    losses, grads = _distill_gradients(model)
    assert all(float(losses[name]) > 0 for name in methods), losses
    booster = [n for n in grads if variable_role(n) == "booster"]
    assert len(booster) >= 6
    for name in booster:
        assert not np.any(grads[name]), f"{methods}: distillation reaches booster {name}"
    light = [n for n in grads if variable_role(n) in ("light", "shared_embedding")]
    assert any(np.any(grads[n]) for n in light)


def test_without_gradient_block_the_methods_reach_the_booster():
    methods = {"kd": {"weight": 1.0}, "hidden": {"weight": 1.0}}
    _, grads = _distill_gradients(build_model(_config(methods, gradient_block=False), FRAPPE))
    assert any(np.any(g) for n, g in grads.items() if variable_role(n) == "booster")


def test_old_distill_keys_still_load_as_methods():
    old = Config.from_dict({"distill": {"hint": "logit_mse", "hint_weight": 0.03}}).distill
    assert old.methods == {"logit_mse": {"weight": 0.03}}
    old = Config.from_dict(
        {"distill": {"hint": "kd", "temperature": 2.0, "pairwise": {"weight": 0.1}}}
    ).distill
    assert old.methods == {"kd": {"weight": 1.0, "temperature": 2.0}, "pairwise": {"weight": 0.1}}
    # The resolved defaults of an old file equal today's.
    assert (
        Config.from_dict(
            {
                "distill": {
                    "hint": "kd",
                    "hint_weight": 1.0,
                    "temperature": 1.0,
                    "pairwise": {"weight": 0.0, "temperature": 1.0},
                }
            }
        )
        == Config()
    )
    with pytest.raises(ConfigError, match="temperature is read by the kd hint only"):
        Config.from_dict({"distill": {"hint": "logit_mse", "temperature": 2.0}})
    with pytest.raises(ConfigError, match="sets both methods and"):
        Config.from_dict({"distill": {"hint": "kd", "methods": {"kd": {}}}})


def test_overrides_add_and_change_methods_and_name_what_replaced_old_keys():
    config = Config().replace(
        {"distill.methods.pairwise.weight": 0.1, "distill.methods.kd.temperature": 2.0}
    )
    assert config.distill.methods == {
        "kd": {"weight": 1.0, "temperature": 2.0},
        "pairwise": {"weight": 0.1},
    }
    only = Config().replace({"distill.methods": {"hidden": {"weight": 1.0}}})
    assert only.distill.methods == {"hidden": {"weight": 1.0}}
    added = Config().replace({"distill.methods.topk": {"k": 2}})
    assert added.distill.methods == {"kd": {"weight": 1.0, "temperature": 1.0}, "topk": {"k": 2}}
    with pytest.raises(
        ConfigError,
        match=r"'distill.hint_weight': replaced by each method's "
        r"weight, e.g. --set distill.methods.kd.weight=0.3",
    ):
        Config().replace({"distill.hint_weight": 0.3})
    with pytest.raises(ConfigError, match="must map names to mappings"):
        Config.from_dict({"distill": {"methods": {"kd": 1.0}}})
