"""The output hints by hand: logit MSE and KD with temperature; the methods' knob guards."""

import numpy as np
import pytest
import tensorflow as tf

from rocketctr.config.core import ConfigError, DistillConfig
from rocketctr.distill.base import MethodContext, MethodInputs, build_methods
from rocketctr.towers import TowerOutput


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def _method(name, **knobs):
    (method,) = build_methods(DistillConfig(methods={name: knobs}), MethodContext())
    return method


def method_inputs(teacher, light, labels=None, groups=None) -> MethodInputs:
    """A batch for a method: teacher and light logits, labels and groups (default 0s)."""
    teacher = tf.constant(teacher, tf.float32)
    zeros = tf.zeros_like(teacher)
    return MethodInputs(
        labels=zeros if labels is None else tf.constant(labels, tf.float32),
        teacher=TowerOutput(teacher, {}),
        light=TowerOutput(tf.constant(light, tf.float32), {}),
        groups=zeros if groups is None else tf.constant(groups),
        step=tf.constant(0),
    )


def test_logit_mse_by_hand():
    out = _method("logit_mse")(method_inputs([2.0, -1.0], [0.5, -1.0]))
    np.testing.assert_allclose(out.numpy(), [2.25, 0.0])


def test_kd_with_temperature_by_hand():
    t = 2.0
    booster, light = np.array([2.0, -1.0, 0.0]), np.array([0.5, 1.0, 0.0])
    p, q = _sigmoid(booster / t), _sigmoid(light / t)
    expected = t * t * -(p * np.log(q) + (1 - p) * np.log(1 - q))
    # Row 3 by hand: p = q = 0.5 -> 4 * ln 2.
    assert expected[2] == pytest.approx(4 * np.log(2))
    out = _method("kd", temperature=t)(method_inputs(booster, light))
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-6)


def test_method_knobs_are_guarded():
    with pytest.raises(ConfigError, match="distill.methods.kd.temperature must be finite and > 0"):
        _method("kd", temperature=0.0)
    # A knob the method does not read is an error, naming the knobs it has.
    with pytest.raises(
        ConfigError,
        match=r"Unknown config key\(s\) \['temperature'\] in section distill.methods.logit_mse. "
        r"Known keys: \['weight'\]",
    ):
        _method("logit_mse", temperature=2.0)
    with pytest.raises(ConfigError, match="distill.methods.kd.weight must be float"):
        _method("kd", weight="heavy")
    with pytest.raises(ConfigError, match="distill.methods.kd.weight must be finite and >= 0"):
        _method("kd", weight=-0.1)
    with pytest.raises(
        ConfigError,
        match=r"Unknown distillation method 'mse'.*Known: \['hidden', 'kd', 'logit_mse', "
        r"'pairwise', 'topk'\]",
    ):
        _method("mse")
    with pytest.raises(ConfigError, match="distill.methods is empty"):
        build_methods(DistillConfig(methods={}), MethodContext())
    # Weight 0: checked, but off.
    assert build_methods(DistillConfig(methods={"kd": {"weight": 0.0}}), MethodContext()) == []
