"""Rocket Launching's logit hint (Zhou et al., AAAI 2018)."""

from __future__ import annotations

from dataclasses import dataclass

import tensorflow as tf

from rocketctr.distill.base import Method, MethodInputs


@dataclass(frozen=True)
class LogitMSEConfig:
    weight: float = 1.0


class LogitMSE(Method, name="logit_mse"):
    """Squared difference of logits, (z_teacher − z_light)²."""

    Config = LogitMSEConfig

    def per_example(self, inputs: MethodInputs) -> tf.Tensor:
        return tf.square(inputs.teacher.logits - inputs.light.logits)
