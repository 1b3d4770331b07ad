"""Rocket Launching's logit hint (Zhou et al., AAAI 2018)."""

from __future__ import annotations

import tensorflow as tf

from rocketctr.distill.base import Hint


class LogitMSE(Hint, name="logit_mse"):
    """Squared difference of logits, (z_booster − z_light)²."""

    def per_example(self, booster_logits, light_logits) -> tf.Tensor:
        return tf.square(booster_logits - light_logits)
