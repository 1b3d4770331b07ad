"""Compressed Interaction Network (xDeepFM, Lian et al., KDD 2018)."""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf
import tf_keras


class CIN(tf_keras.layers.Layer):
    """Explicit vector-wise feature interactions of bounded degree.

    Layer k: X^k[h] = sum_{i,j} W^k[h,i,j] (X^{k-1}[i] ∘ X^0[j]); each layer's feature maps
    are sum-pooled over the embedding dimension and concatenated.

    Args:
        layer_sizes: feature maps per CIN layer.
    """

    def __init__(self, layer_sizes: Sequence[int], **kwargs) -> None:
        super().__init__(**kwargs)
        self.layer_sizes = list(layer_sizes)

    def build(self, input_shape) -> None:
        num_fields = int(input_shape[1])
        self.filters = []
        previous = num_fields
        for k, size in enumerate(self.layer_sizes):
            self.filters.append(
                self.add_weight(
                    name=f"filter_{k}",
                    shape=[previous * num_fields, size],
                    initializer="glorot_uniform",
                )
            )
            previous = size
        super().build(input_shape)

    def flops(self, num_fields: int, embedding_dim: int) -> int:
        """Per example and layer: the outer product X^{k-1} ∘ X^0 (rows = H_{k-1}·F per
        embedding position), its contraction with the filter (2 per multiply-add), and the
        sum-pooling over the embedding dimension."""
        del num_fields  # in each filter's rows
        total = 0
        for w in self.filters:
            rows, maps = (int(s) for s in w.shape)
            total += rows * embedding_dim + 2 * rows * maps * embedding_dim + maps * embedding_dim
        return total

    def call(self, x0: tf.Tensor) -> tf.Tensor:
        """Maps embeddings [B, F, d] to pooled feature maps [B, sum(layer_sizes)]."""
        batch = tf.shape(x0)[0]
        dim = tf.shape(x0)[2]
        xk = x0
        pooled = []
        for w in self.filters:
            # Outer product over fields, per embedding position: [B, Hk, F, d].
            z = tf.einsum("bhd,bmd->bhmd", xk, x0)
            z = tf.reshape(z, [batch, -1, dim])  # [B, Hk*F, d]
            xk = tf.einsum("bnd,nh->bhd", z, w)  # [B, H_{k+1}, d]
            pooled.append(tf.reduce_sum(xk, axis=2))
        return tf.concat(pooled, axis=1)
