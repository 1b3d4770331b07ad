"""FirstOrder: one weight per row of a tower's own fields, read with the embedding table's
row ids; sequences read their item's rows, empty slots read nothing."""

import rocketctr  # noqa: F401  (selects Keras 2 before TensorFlow loads)

# isort: split
import numpy as np
import pytest
import tensorflow as tf

from rocketctr.layers.first_order import FirstOrder

# Two fields of 3 and 2 rows, at rows 10-12 and 20-21 of the embedding table (a privileged
# field's rows 13-19 between them are not the tower's): its own table has 5 rows.
WEIGHTS = [[0.1], [0.2], [0.3], [1.0], [2.0]]


def _layer(rows=(3, 2), offsets=(10, 20), ids=((10, 20),), slot_fields=(0, 1)) -> FirstOrder:
    layer = FirstOrder(rows, offsets)
    layer(tf.constant(ids, tf.int64), slot_fields)
    return layer


def test_the_table_holds_the_fields_rows_only_and_starts_at_zero():
    layer = _layer()
    assert layer.table.shape == (5, 1)
    out = layer(tf.constant([[12, 21]], tf.int64), (0, 1))
    np.testing.assert_array_equal(out.numpy(), [[0.0, 0.0]])


def test_embedding_row_ids_read_the_fields_own_rows():
    layer = _layer()
    layer.table.assign(WEIGHTS)
    # Row 10 is field 0's first (own row 0), 12 its third (2); 20 and 21 are field 1's
    # first and second (own rows 3 and 4).
    out = layer(tf.constant([[10, 21], [12, 20]], tf.int64), (0, 1))
    np.testing.assert_allclose(out.numpy(), [[0.1, 2.0], [0.3, 1.0]], rtol=1e-6)


def test_a_sequence_reads_its_items_rows():
    # Field 1 (a sequence of field 0's items) owns no rows: it sits at its item's offset.
    layer = _layer(rows=(3, 0), offsets=(10, 10), ids=((10, 11),))
    assert layer.table.shape == (3, 1)
    layer.table.assign(WEIGHTS[:3])
    out = layer(tf.constant([[11, 12]], tf.int64), (0, 1))
    np.testing.assert_allclose(out.numpy(), [[0.2, 0.3]], rtol=1e-6)


def test_a_field_without_rows_of_its_own_or_an_item_is_refused():
    with pytest.raises(ValueError, match=r"Fields without rows read rows at \[30\]"):
        FirstOrder((3, 0), (10, 30))


def test_empty_slots_read_zero_and_the_gradient_holds_the_rows_read_only():
    # Field 1 is multi-valued: slots 1 and 2 are its values, -1 an empty slot.
    layer = _layer(ids=((10, 20, -1),), slot_fields=(0, 1, 1))
    layer.table.assign(WEIGHTS)
    ids = tf.constant([[11, 20, -1], [11, 21, 20]], tf.int64)
    with tf.GradientTape() as tape:
        out = layer(ids, (0, 1, 1))
        loss = tf.reduce_sum(out * tf.constant([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]))
    np.testing.assert_allclose(out.numpy(), [[0.2, 1.0, 0.0], [0.2, 2.0, 1.0]], rtol=1e-6)
    grad = tape.gradient(loss, layer.table)
    assert isinstance(grad, tf.IndexedSlices)
    assert set(grad.indices.numpy()) == {1, 3, 4}  # row 0, 2 (and the empty slot) not read
    # Own row 1 is read with weights 1 and 4, row 3 with 2 and 6, row 4 with 5.
    np.testing.assert_allclose(
        tf.convert_to_tensor(grad).numpy(), [[0.0], [5.0], [0.0], [8.0], [5.0]], rtol=1e-6
    )
