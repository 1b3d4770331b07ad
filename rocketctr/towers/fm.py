"""Factorization machine (Rendle, 2010) and logistic regression light towers.

    LR: b + Σ_f w_f(id_f) + Σ_j u_j x_j                      (`LinearTerm`)
    FM: LR + Σ_{f<g} ⟨v_f, v_g⟩

w is the tower's own first-order table (one weight per row, `FirstOrder`), x the dense
values, v the embeddings. LR reads no embedding at all.
"""

from __future__ import annotations

import tensorflow as tf
import tf_keras

from rocketctr.towers.base import Tower, TowerOutput, dense_flops


def fm_pairwise(embeddings: tf.Tensor) -> tf.Tensor:
    """Σ over field pairs of <e_i, e_j> = 0.5 · Σ_dims((Σe)² − Σe²). Maps [B, F, d] to [B]."""
    square_of_sum = tf.square(tf.reduce_sum(embeddings, axis=1))
    sum_of_square = tf.reduce_sum(tf.square(embeddings), axis=1)
    return 0.5 * tf.reduce_sum(square_of_sum - sum_of_square, axis=1)


def fm_pairwise_flops(num_fields: int, embedding_dim: int) -> int:
    """0.5·Σ_d((Σ_f e)² − Σ_f e²): two field sums, two squarings, a difference, a sum."""
    f, d = num_fields, embedding_dim
    return 2 * f * d + f * d + d + d + d


class LinearTerm(tf_keras.layers.Layer):
    """The linear part of LR, FM, DeepFM and xDeepFM: b + Σ_f w_f + Σ_j u_j x_j, from the
    fields' first-order weights w [B, F] (the tower's `FirstOrder` table, read by the model)
    and the dense values x [B, D]. With no dense column it is b + Σ_f w_f (oneDNN refuses a
    0-wide matmul).

    Args:
        num_dense: D.
    """

    def __init__(self, num_dense: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.dense_weights = tf_keras.layers.Dense(1, name="dense_weights") if num_dense else None

    def build(self, input_shape) -> None:
        if self.dense_weights is None:
            self.bias = self.add_weight(name="bias", shape=[], initializer="zeros")
        super().build(input_shape)

    def flops(self, num_fields: int, embedding_dim: int) -> int:
        """Σ_j u_j x_j (2·D); Σ_f w_f is the tower's first-order sum (`Tower.flops`)."""
        del num_fields, embedding_dim
        return dense_flops(self.dense_weights) if self.dense_weights else 0

    def call(self, dense: tf.Tensor, first_order: tf.Tensor) -> tf.Tensor:
        weights = tf.reduce_sum(tf.cast(first_order, self.compute_dtype), axis=1)
        if self.dense_weights is None:
            return weights + tf.cast(self.bias, self.compute_dtype)
        return tf.squeeze(self.dense_weights(tf.cast(dense, self.compute_dtype)), axis=1) + weights


class LRTower(Tower, name="lr"):
    """Logistic regression: a weight per id (first-order table) and per dense value."""

    uses_first_order = True
    reads_embeddings = False

    def __init__(self, config, **kwargs) -> None:
        super().__init__(config, **kwargs)
        self.linear = LinearTerm(len(self.inputs.dense), name="linear")

    def call(self, embeddings, dense, training=None, first_order=None) -> TowerOutput:
        return TowerOutput(self.linear(dense, first_order), {})


class FMTower(LRTower, name="fm"):
    """LR plus the FM pairwise interactions of the (shared) embeddings."""

    reads_embeddings = True

    def flops(self, num_fields: int, embedding_dim: int) -> int:
        return super().flops(num_fields, embedding_dim) + fm_pairwise_flops(
            num_fields, embedding_dim
        )

    def call(self, embeddings, dense, training=None, first_order=None) -> TowerOutput:
        pairwise = tf.cast(fm_pairwise(embeddings), self.compute_dtype)
        return TowerOutput(self.linear(dense, first_order) + pairwise, {})
