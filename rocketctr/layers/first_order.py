"""Per-id first-order weights: the linear part of LR and FM, one weight per table row."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf
import tf_keras

from rocketctr.layers.embedding import gather_rows


class FirstOrder(tf_keras.layers.Layer):
    """w(row) for a tower's fields: a [R, 1] table over the rows of its own fields only.

    The fields own contiguous blocks of this table in their order, so a light net's table
    holds no row of a privileged feature and ships as it is. It is read with the row ids
    of the training table (the embedding table's layout), remapped by one add. The table
    starts at 0: the model starts as its bias, and the pairwise term of an FM is not
    drowned by a linear term that starts large. It is trained by the embedding optimizer
    (sparse-friendly, like any table of rows).

    Args:
        rows: rows of each field (a categorical feature's `num_rows`), in field order.
        offsets: each field's first row in the embedding table's layout (a sequence's is
            its item feature's, and it has no rows of its own).
    """

    def __init__(self, rows: Sequence[int], offsets: Sequence[int], **kwargs) -> None:
        super().__init__(**kwargs)
        self.rows = tuple(int(r) for r in rows)
        own = np.cumsum((0, *self.rows[:-1])).astype(np.int64)
        # A field of no rows (a sequence) reads the rows of the field at its offset (its item).
        own_at = {o: w for o, w, r in zip(offsets, own, self.rows, strict=True) if r}
        missing = [o for o, r in zip(offsets, self.rows, strict=True) if not r and o not in own_at]
        if missing:
            raise ValueError(f"Fields without rows read rows at {missing}, which no field owns.")
        own = np.asarray([own_at[o] for o in offsets], np.int64)
        self._shift = own - np.asarray(offsets, np.int64)

    def build(self, input_shape) -> None:
        self.table = self.add_weight(name="table", shape=[sum(self.rows), 1], initializer="zeros")
        super().build(input_shape)

    def call(self, ids: tf.Tensor, slot_fields: Sequence[int]) -> tf.Tensor:
        """Row ids [B, S] of the embedding layout -> weights [B, S].

        Args:
            ids: what the tower's `FeatureProcessor` returns.
            slot_fields: the field of each slot (the processor's `slot_fields`). Slots of
                id -1 (empty) give 0.
        """
        shift = tf.constant(self._shift[np.asarray(slot_fields, np.int64)])
        padded = len(slot_fields) > len(self.rows)  # multi-valued fields have empty slots
        ids = tf.where(ids >= 0, ids + shift, -1) if padded else ids + shift
        return tf.squeeze(gather_rows(self.table, ids, padded), axis=2)
