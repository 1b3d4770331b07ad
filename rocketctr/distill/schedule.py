"""λ(step): the distillation weight over training."""

from __future__ import annotations

import tensorflow as tf

from rocketctr.config.core import DistillConfig
from rocketctr.distill.base import parse_methods, total_weight
from rocketctr.distill.pfd import validate_hint_form


def validate_schedule(config: DistillConfig) -> None:
    """Refuses unknown methods or knobs, an unknown hint form, and methods' weights no
    schedule can use (the ramp's choices are checked when the config loads)."""
    parse_methods(config)
    validate_hint_form(config)


def schedule_fraction(step: tf.Tensor, config: DistillConfig) -> tf.Tensor:
    """The share in [0, 1] of their weight the distillation losses have at a 0-based step.

    0 for steps < warmup_steps. Then, with ramp "linear" and ramp_steps > 0, it rises
    linearly to 1 at step warmup_steps + ramp_steps; with ramp "step" (or ramp_steps 0) it
    jumps straight to 1.
    """
    step = tf.cast(step, tf.float32)
    warmup = float(config.warmup_steps)
    if config.ramp == "linear" and config.ramp_steps > 0:
        return tf.clip_by_value((step - warmup) / float(config.ramp_steps), 0.0, 1.0)
    return tf.cast(step >= warmup, tf.float32)


def hint_weight(step: tf.Tensor, config: DistillConfig) -> tf.Tensor:
    """λ at a 0-based global step: the sum of the methods' weights · `schedule_fraction`."""
    return total_weight(config) * schedule_fraction(step, config)
