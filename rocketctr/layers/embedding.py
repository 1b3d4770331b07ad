"""The shared embedding table: one variable holding every categorical feature's rows."""

from __future__ import annotations

import tensorflow as tf
import tf_keras


class Embedding(tf_keras.layers.Layer):
    """Looks up row ids in one [num_rows, embedding_dim] table.

    One table for all features means one gather per batch, and its gradient is a single
    `tf.IndexedSlices`, so a sparse-aware optimizer updates only the touched rows.

    Args:
        num_rows: rows in the table (sum of every feature's rows).
        embedding_dim: width of each row.
    """

    def __init__(self, num_rows: int, embedding_dim: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.num_rows = num_rows
        self.embedding_dim = embedding_dim

    def build(self, input_shape) -> None:
        self.table = self.add_weight(
            name="table",
            shape=[self.num_rows, self.embedding_dim],
            initializer=tf_keras.initializers.RandomNormal(stddev=0.01),
        )
        super().build(input_shape)

    def call(self, ids: tf.Tensor) -> tf.Tensor:
        """Maps ids [B, F] to embeddings [B, F, embedding_dim]."""
        # embedding_lookup also reads a ShardedVariable (the table split over parameter
        # servers); on a plain variable it is the same gather with an IndexedSlices gradient.
        return tf.nn.embedding_lookup(self.table, ids)
