"""Factorization machine light tower (Rendle, 2010) and its pairwise term."""

from __future__ import annotations

import tensorflow as tf
import tf_keras

from rocketctr.towers.base import Tower, TowerOutput, flat_inputs


def fm_pairwise(embeddings: tf.Tensor) -> tf.Tensor:
    """Σ over field pairs of <e_i, e_j> = 0.5 · Σ_dims((Σe)² − Σe²). Maps [B, F, d] to [B]."""
    square_of_sum = tf.square(tf.reduce_sum(embeddings, axis=1))
    sum_of_square = tf.reduce_sum(tf.square(embeddings), axis=1)
    return 0.5 * tf.reduce_sum(square_of_sum - sum_of_square, axis=1)


class FMTower(Tower, name="fm"):
    """Linear term over [embeddings, dense] plus FM pairwise interactions of the embeddings."""

    def __init__(self, config, **kwargs) -> None:
        super().__init__(config, **kwargs)
        self.linear = tf_keras.layers.Dense(1)

    def call(self, embeddings, dense, training=None) -> TowerOutput:
        linear = tf.squeeze(self.linear(flat_inputs(embeddings, dense)), axis=1)
        return TowerOutput(linear + fm_pairwise(embeddings), {})
