"""Feature transfer: the light net's hidden layer learns the teacher's (FitNets hints,
Romero et al. 2015; with the logit hint, the "dual DNN" of co-trained CTR students).

    hidden_i = mean over k of (W · h_light,i + b − h_teacher,i)²_k

h_light is the light tower's representation `light_layer` [B, m], h_teacher the teacher's
`teacher_layer` [B, k] (behind the gradient block), and W [m, k], b a linear regressor
trained with the light net. The regressor lets a narrow light layer match a wide teacher
layer; it is a training-only weight (`distiller/hidden/...`): checkpointed,
never exported. Combine it with an output hint for the dual-DNN setup:
`methods: {kd: {weight: 1}, hidden: {weight: 0.1}}`.
"""

from __future__ import annotations

from dataclasses import dataclass

import tensorflow as tf
import tf_keras

from rocketctr.distill.base import Method, MethodInputs, check_hidden_name


@dataclass(frozen=True)
class HiddenConfig:
    weight: float = 1.0
    light_layer: str = "mlp"  # one of the light tower's hidden_names
    teacher_layer: str = "mlp"  # one of the booster's hidden_names


class Hidden(Method, name="hidden"):
    Config = HiddenConfig

    def __init__(self, config, context, **kwargs) -> None:
        super().__init__(config, context, **kwargs)
        check_hidden_name(
            "hidden", "light_layer", config.light_layer, context.light_hidden, "light tower"
        )
        check_hidden_name(
            "hidden", "teacher_layer", config.teacher_layer, context.teacher_hidden, "teacher"
        )
        self.regressor = None

    def build(self, input_shape: MethodInputs) -> None:
        # The regressor's width is the teacher layer's, known once the towers have run.
        width = input_shape.teacher.hidden[self.config.teacher_layer][-1]
        self.regressor = tf_keras.layers.Dense(width, name="regressor")
        self.regressor.build(input_shape.light.hidden[self.config.light_layer])
        super().build(input_shape)

    def per_example(self, inputs: MethodInputs) -> tf.Tensor:
        projected = self.regressor(inputs.light.hidden[self.config.light_layer])
        target = inputs.teacher.hidden[self.config.teacher_layer]
        return tf.reduce_mean(tf.square(projected - target), axis=1)
