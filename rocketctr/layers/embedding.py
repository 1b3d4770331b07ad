"""The shared embedding table: one variable holding every categorical feature's rows."""

from __future__ import annotations

import tensorflow as tf
import tf_keras
from tensorflow.python.ops import resource_variable_ops  # UninitializedVariable


def gather_rows(table, ids: tf.Tensor, padded: bool) -> tf.Tensor:
    """Rows of `table` at `ids` [B, S] -> [B, S, width].

    With `padded`, ids of -1 (the empty slots of multi-valued fields) read nothing: their
    rows are 0 and they take no part in the gradient, whose `tf.IndexedSlices` hold the
    rows read only (an optimizer with state moves no row that no value read).
    """
    # embedding_lookup also reads a ShardedVariable (the table split over parameter
    # servers); on a plain variable it is the same gather with an IndexedSlices gradient.
    if not padded:
        return tf.nn.embedding_lookup(table, ids)
    positions = tf.where(ids >= 0)
    rows = tf.nn.embedding_lookup(table, tf.gather_nd(ids, positions))
    shape = tf.concat([tf.shape(ids, tf.int64), tf.shape(rows, tf.int64)[1:]], axis=0)
    return tf.scatter_nd(positions, rows, shape)


def _without_value(name, shape, dtype, trainable=True, **unused):
    """An `add_weight` getter: a variable that holds no value (and no memory) until one is
    assigned, as a checkpoint's restore does; before, it reads as empty and a lookup in it
    fails. A restore into an initialized table would briefly hold two tables."""
    return resource_variable_ops.UninitializedVariable(
        name=name, shape=shape, dtype=dtype, trainable=trainable
    )


class Embedding(tf_keras.layers.Layer):
    """Looks up row ids in one [num_rows, embedding_dim] table.

    One table for all features means one gather per batch, and its gradient is a single
    `tf.IndexedSlices`, so a sparse-aware optimizer updates only the touched rows.

    Args:
        num_rows: rows in the table (sum of every feature's rows).
        embedding_dim: width of each row.
        init_stddev: the rows start from a normal of this standard deviation; None: for a
            table whose values a checkpoint assigns next, no initial value (its memory is
            taken once, by the restore; under a distribution strategy, zeros).
        padded: whether ids hold -1 for empty slots (the schema has multi-valued fields).
    """

    def __init__(
        self,
        num_rows: int,
        embedding_dim: int,
        init_stddev: float | None = 0.01,
        padded: bool = False,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.num_rows = num_rows
        self.embedding_dim = embedding_dim
        self.init_stddev = init_stddev
        self.padded = padded

    def build(self, input_shape) -> None:
        shape = [self.num_rows, self.embedding_dim]
        if self.init_stddev is None and not tf.distribute.has_strategy():
            self.table = self.add_weight(name="table", shape=shape, getter=_without_value)
        else:
            initializer = (
                "zeros"
                if self.init_stddev is None
                else tf_keras.initializers.RandomNormal(stddev=self.init_stddev)
            )
            self.table = self.add_weight(name="table", shape=shape, initializer=initializer)
        super().build(input_shape)

    def call(self, ids: tf.Tensor) -> tf.Tensor:
        """Maps ids [B, S] to embeddings [B, S, embedding_dim]; id -1 (an empty slot of a
        multi-valued field, with `padded`) gives a zero row."""
        return gather_rows(self.table, ids, self.padded)
