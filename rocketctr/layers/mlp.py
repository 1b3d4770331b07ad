"""A plain MLP block: Dense -> (BatchNorm) -> ReLU -> (Dropout), repeated."""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf
import tf_keras


class MLP(tf_keras.layers.Layer):
    """Hidden layers only; the tower adds its own output layer.

    Args:
        hidden_units: widths of the hidden layers; empty means identity.
        dropout: dropout rate after each hidden layer (training only).
        batch_norm: BatchNorm before each activation.
    """

    def __init__(
        self,
        hidden_units: Sequence[int],
        dropout: float = 0.0,
        batch_norm: bool = False,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.blocks = []
        for units in hidden_units:
            block = [tf_keras.layers.Dense(units, use_bias=not batch_norm)]
            if batch_norm:
                block.append(tf_keras.layers.BatchNormalization())
            block.append(tf_keras.layers.ReLU())
            if dropout:
                block.append(tf_keras.layers.Dropout(dropout))
            self.blocks.append(block)

    def call(self, x: tf.Tensor, training: bool | None = None) -> tf.Tensor:
        for block in self.blocks:
            for layer in block:
                x = layer(x, training=training)
        return x
