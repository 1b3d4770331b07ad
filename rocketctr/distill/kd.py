"""Hinton knowledge distillation with temperature, for one sigmoid logit."""

from __future__ import annotations

from dataclasses import dataclass

import tensorflow as tf

from rocketctr.distill.base import Method, MethodInputs, check_positive


@dataclass(frozen=True)
class KDConfig:
    weight: float = 1.0
    temperature: float = 1.0


def kd_per_example(teacher_logits: tf.Tensor, light_logits: tf.Tensor, t: float) -> tf.Tensor:
    """T² · BCE(σ(t / T), σ(l / T)) of each row [B]."""
    soft_targets = tf.sigmoid(teacher_logits / t)
    bce = tf.nn.sigmoid_cross_entropy_with_logits(labels=soft_targets, logits=light_logits / t)
    return t * t * bce


class KD(Method, name="kd"):
    """T² · BCE(sigmoid(z_teacher / T), sigmoid(z_light / T)).

    The T² factor keeps the gradient scale independent of T (Hinton et al., 2015). The loss
    includes the constant entropy of the soft target, so it is not zero at a perfect match;
    its gradient is that of the KL divergence.
    """

    Config = KDConfig

    def __init__(self, config, context, **kwargs) -> None:
        super().__init__(config, context, **kwargs)
        check_positive("kd", "temperature", config.temperature)

    def per_example(self, inputs: MethodInputs) -> tf.Tensor:
        return kd_per_example(inputs.teacher.logits, inputs.light.logits, self.config.temperature)
