"""DCN-v1 cross layer: a weight vector per layer, x_{l+1} = x0 · (x_lᵀ w) + b + x_l."""

from __future__ import annotations

import tensorflow as tf
import tf_keras


class VectorCross(tf_keras.layers.Layer):
    """One cross layer of the original Deep & Cross Network (Wang et al., ADKDD 2017).

    The interaction is rank one: each example's x_l is projected to the scalar x_lᵀ w, which
    scales x0. A layer has 2·D weights where the full-rank cross (`tfrs.layers.dcn.Cross`)
    has D² + D. `kernel` is [D, 1] with Glorot-normal init (std √(2 / (D + 1))).
    """

    def build(self, input_shape) -> None:
        width = int(input_shape[-1])
        self.kernel = self.add_weight(name="kernel", shape=(width, 1), initializer="glorot_normal")
        self.bias = self.add_weight(name="bias", shape=(width,), initializer="zeros")
        super().build(input_shape)

    def flops(self, num_fields: int, embedding_dim: int) -> int:
        """xᵀw (2 per multiply-add), then x0 · s + b + x."""
        del num_fields, embedding_dim  # in the kernel's width
        width = int(self.kernel.shape[0])
        return 2 * width + 2 * width

    def call(self, x0: tf.Tensor, x: tf.Tensor) -> tf.Tensor:
        return x0 * tf.matmul(x, self.kernel) + self.bias + x
