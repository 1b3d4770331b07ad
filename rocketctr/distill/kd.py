"""Hinton knowledge distillation with temperature, for one sigmoid logit."""

from __future__ import annotations

import tensorflow as tf

from rocketctr.config import ConfigError
from rocketctr.distill.base import Hint


class KD(Hint, name="kd"):
    """T² · BCE(sigmoid(z_booster / T), sigmoid(z_light / T)).

    The T² factor keeps the gradient scale independent of T (Hinton et al., 2015). The loss
    includes the constant entropy of the soft target, so it is not zero at a perfect match;
    its gradient is that of the KL divergence.
    """

    def __init__(self, config) -> None:
        super().__init__(config)
        if config.temperature <= 0:
            raise ConfigError(f"temperature must be > 0. Received: {config.temperature}")

    def per_example(self, booster_logits, light_logits) -> tf.Tensor:
        t = self.config.temperature
        soft_targets = tf.sigmoid(booster_logits / t)
        bce = tf.nn.sigmoid_cross_entropy_with_logits(labels=soft_targets, logits=light_logits / t)
        return t * t * bce
