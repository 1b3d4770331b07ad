"""Per-id first-order weights: the linear part of LR and FM, one weight per table row."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf
import tf_keras


class FirstOrder(tf_keras.layers.Layer):
    """w_f(id) for each field: a [R, 1] table over the rows of a tower's own fields only.

    A tower's fields own contiguous blocks of this table in their order, so a light net's
    table holds no row of a privileged feature and ships as it is. The table starts at 0:
    the model starts as its bias, and the pairwise term of an FM is not drowned by a linear
    term that starts large. It is trained by the embedding optimizer (sparse-friendly, like
    any table of rows).

    Args:
        rows: rows of each field (a categorical feature's `num_rows`), in field order.
    """

    def __init__(self, rows: Sequence[int], **kwargs) -> None:
        super().__init__(**kwargs)
        self.rows = tuple(int(r) for r in rows)
        self._offsets = np.cumsum((0, *self.rows[:-1])).astype(np.int64)

    def build(self, input_shape) -> None:
        self.table = self.add_weight(name="table", shape=[sum(self.rows), 1], initializer="zeros")
        super().build(input_shape)

    def call(self, ids: tf.Tensor) -> tf.Tensor:
        """Maps per-field local ids [B, F] (0 .. rows_f − 1) to weights [B, F]."""
        rows = tf.nn.embedding_lookup(self.table, ids + tf.constant(self._offsets))
        return tf.squeeze(rows, axis=2)
