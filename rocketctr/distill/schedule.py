"""λ(step): the hint weight over training."""

from __future__ import annotations

import tensorflow as tf

from rocketctr.config import ConfigError, DistillConfig
from rocketctr.distill.pfd import validate_hint_form


def validate_schedule(config: DistillConfig) -> None:
    if config.ramp not in ("linear", "step"):
        raise ConfigError(f"ramp must be 'linear' or 'step'. Received: {config.ramp!r}")
    validate_hint_form(config)


def hint_weight(step: tf.Tensor, config: DistillConfig) -> tf.Tensor:
    """λ at a 0-based global step.

    0 for steps < warmup_steps. Then, with ramp "linear" and ramp_steps > 0, λ rises linearly
    from 0 at step warmup_steps to hint_weight at step warmup_steps + ramp_steps; with ramp
    "step" (or ramp_steps 0) it jumps straight to hint_weight.
    """
    step = tf.cast(step, tf.float32)
    warmup = float(config.warmup_steps)
    if config.ramp == "linear" and config.ramp_steps > 0:
        fraction = tf.clip_by_value((step - warmup) / float(config.ramp_steps), 0.0, 1.0)
    else:
        fraction = tf.cast(step >= warmup, tf.float32)
    return config.hint_weight * fraction
