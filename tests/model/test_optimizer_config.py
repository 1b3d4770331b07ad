"""OptimizerConfig's warm-up and clipping: the rates and updates they give, plateau decay and
checkpoint restore during a warm-up, and configs without them unchanged."""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from rocketctr.config.core import OPTIMIZERS, Config, ConfigError, OptimizerConfig, load_config
from rocketctr.model.optimizers import build_optimizer


def _steps(optimizer, variable, n, grad=1.0):
    """Applies `grad` n times; returns each step's change of the variable."""
    deltas = []
    for _ in range(n):
        before = variable.numpy().copy()
        optimizer.apply_gradients([(tf.fill(variable.shape, grad), variable)])
        deltas.append(float((before - variable.numpy())[0]))
    return deltas


def test_warmup_is_linear_then_the_full_rate():
    v = tf.Variable([0.0])
    opt = build_optimizer(OptimizerConfig("sgd", 0.1, warmup_steps=4))
    assert _steps(opt, v, 6) == pytest.approx([0.025, 0.05, 0.075, 0.1, 0.1, 0.1], rel=1e-6)
    assert float(opt.learning_rate) == pytest.approx(0.1)


def test_warmup_on_adam_scales_its_steps():
    # Adam's first step moves a weight by lr (m / sqrt(v) = 1 for a constant gradient).
    v = tf.Variable([0.0])
    opt = build_optimizer(OptimizerConfig("adam", 0.1, warmup_steps=10))
    assert isinstance(opt, tf_keras.optimizers.Adam)
    assert _steps(opt, v, 1, grad=3.0) == pytest.approx([0.01], rel=1e-4)


def test_plateau_decay_during_warmup_scales_the_stored_rate_by_the_factor():
    v = tf.Variable([0.0])
    opt = build_optimizer(OptimizerConfig("sgd", 0.1, warmup_steps=4))
    _steps(opt, v, 1)
    assert float(opt.learning_rate) == pytest.approx(0.05)  # step 2 of 4
    opt.learning_rate = float(opt.learning_rate) * 0.1  # what selection.py does
    assert float(opt.learning_rate) == pytest.approx(0.005)
    assert _steps(opt, v, 4) == pytest.approx([0.005, 0.0075, 0.01, 0.01], rel=1e-5)


def test_restore_continues_the_warmup_and_the_decayed_rate(tmp_path):
    config = OptimizerConfig("adam", 0.1, warmup_steps=5)
    v = tf.Variable([0.0, 0.0])
    opt = build_optimizer(config)
    _steps(opt, v, 2)
    opt.learning_rate = float(opt.learning_rate) * 0.1
    path = tf.train.Checkpoint(v=v, opt=opt).write(str(tmp_path / "ckpt"))
    uninterrupted = _steps(opt, v, 4)

    v2 = tf.Variable([0.0, 0.0])
    opt2 = build_optimizer(config)
    opt2.build([v2])
    tf.train.Checkpoint(v=v2, opt=opt2).read(path).assert_consumed()
    assert int(opt2.iterations) == 2
    assert float(opt2.learning_rate) == pytest.approx(0.1 * 0.1 * 3 / 5)
    assert _steps(opt2, v2, 4) == pytest.approx(uninterrupted, rel=1e-6)


def test_clipping():
    v = tf.Variable([0.0, 0.0])
    opt = build_optimizer(OptimizerConfig("sgd", 1.0, global_clipnorm=1.0))
    opt.apply_gradients([(tf.constant([3.0, 4.0]), v)])
    np.testing.assert_allclose(v.numpy(), [-0.6, -0.8], rtol=1e-6)
    a, b = tf.Variable([0.0]), tf.Variable([0.0])
    opt = build_optimizer(OptimizerConfig("sgd", 1.0, clipnorm=2.0))
    opt.apply_gradients([(tf.constant([3.0]), a), (tf.constant([1.0]), b)])
    np.testing.assert_allclose([a.numpy()[0], b.numpy()[0]], [-2.0, -1.0], rtol=1e-6)
    with pytest.raises(ConfigError, match="at most one of clipnorm and global_clipnorm"):
        build_optimizer(OptimizerConfig("sgd", 1.0, clipnorm=1.0, global_clipnorm=1.0))


def test_a_config_without_them_loads_and_builds_unchanged(tmp_path):
    path = tmp_path / "old.yaml"
    path.write_text("train:\n  light_optimizer: {name: adam, learning_rate: 0.1}\n")
    light = load_config(str(path)).train.light_optimizer
    assert light == OptimizerConfig("adam", 0.1)
    assert (light.warmup_steps, light.clipnorm, light.global_clipnorm) == (0, None, None)
    opt = build_optimizer(light)
    assert type(opt) is tf_keras.optimizers.Adam
    assert opt.clipnorm is None and opt.global_clipnorm is None
    assert float(opt.learning_rate) == pytest.approx(0.1)
    v = tf.Variable([0.0])
    assert _steps(opt, v, 2) == pytest.approx([0.1, 0.1], rel=1e-4)  # no warm-up
    # Every other optimizer section of an old config is untouched too.
    assert load_config(str(path)).train.dense_optimizer == Config().train.dense_optimizer


def test_config_keys_load_and_bad_values_are_refused():
    config = load_config("frappe").replace(
        {"train.light_optimizer.warmup_steps": 50, "train.light_optimizer.global_clipnorm": 1.0}
    )
    assert config.train.light_optimizer == OptimizerConfig(
        "adam", 0.1, warmup_steps=50, global_clipnorm=1.0
    )
    with pytest.raises(ConfigError, match="warmup_steps must be >= 0"):
        load_config("frappe").replace({"train.light_optimizer.warmup_steps": -1})
    with pytest.raises(ConfigError, match="clipnorm must be null or finite and > 0"):
        load_config("frappe").replace({"train.light_optimizer.clipnorm": 0.0})


def test_every_optimizer_a_config_may_name_builds():
    for name in OPTIMIZERS:
        assert build_optimizer(OptimizerConfig(name, 0.1)).learning_rate.numpy() > 0
