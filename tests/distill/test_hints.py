import numpy as np
import pytest
import tensorflow as tf

from rocketctr import distill
from rocketctr.config import ConfigError, DistillConfig


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def test_logit_mse_by_hand():
    hint = distill.build_hint(DistillConfig(hint="logit_mse"))
    out = hint.per_example(tf.constant([2.0, -1.0]), tf.constant([0.5, -1.0]))
    np.testing.assert_allclose(out.numpy(), [2.25, 0.0])


def test_kd_with_temperature_by_hand():
    t = 2.0
    hint = distill.build_hint(DistillConfig(hint="kd", temperature=t))
    booster, light = np.array([2.0, -1.0, 0.0]), np.array([0.5, 1.0, 0.0])
    p, q = _sigmoid(booster / t), _sigmoid(light / t)
    expected = t * t * -(p * np.log(q) + (1 - p) * np.log(1 - q))
    # Row 3 by hand: p = q = 0.5 -> 4 * ln 2.
    assert expected[2] == pytest.approx(4 * np.log(2))
    out = hint.per_example(tf.constant(booster, tf.float32), tf.constant(light, tf.float32))
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-6)


def test_kd_rejects_non_positive_temperature():
    with pytest.raises(ConfigError, match="temperature must be > 0. Received: 0.0"):
        distill.build_hint(DistillConfig(hint="kd", temperature=0.0))


def test_unknown_hint_lists_known_ones():
    with pytest.raises(ConfigError, match=r"Known hints: \['kd', 'logit_mse'\]"):
        distill.build_hint(DistillConfig(hint="mse"))
