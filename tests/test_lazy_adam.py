"""LazyAdam: sparse gradients update only touched rows; all-rows-touched equals tf_keras Adam."""

import numpy as np
import tensorflow as tf
import tf_keras

from rocketctr.config.core import OptimizerConfig
from rocketctr.model.optimizers import LazyAdam, build_optimizer


def _table(seed: int = 0) -> tf.Variable:
    rng = np.random.default_rng(seed)
    return tf.Variable(rng.normal(size=(6, 3)).astype(np.float32))


def _slots(optimizer, variable):
    index = optimizer._index_dict[optimizer._var_key(variable)]
    return optimizer._momentums[index].numpy(), optimizer._velocities[index].numpy()


def _sparse_grad(indices, values) -> tf.IndexedSlices:
    return tf.IndexedSlices(
        tf.constant(values, tf.float32), tf.constant(indices, tf.int64), tf.constant([6, 3])
    )


def test_registered_name_builds_lazy_adam():
    assert isinstance(build_optimizer(OptimizerConfig("lazy_adam", 0.01)), LazyAdam)


def test_untouched_rows_and_their_slots_stay_exactly_unchanged():
    table = _table()
    optimizer = LazyAdam(learning_rate=0.1)
    optimizer.build([table])
    # Step 1 touches every row, so all slots are non-zero before the partial steps.
    optimizer.apply_gradients([(_sparse_grad(range(6), np.ones((6, 3))), table)])
    before = table.numpy().copy()
    m_before, v_before = _slots(optimizer, table)
    assert np.all(m_before != 0) and np.all(v_before != 0)
    # Rows 1 and 4 (row 4 twice: duplicates are summed) for two more steps.
    for _ in range(2):
        grad = _sparse_grad([1, 4, 4], [[1.0, -2.0, 0.5], [0.3, 0.3, 0.3], [0.2, 0.1, -0.3]])
        optimizer.apply_gradients([(grad, table)])
    after = table.numpy()
    m_after, v_after = _slots(optimizer, table)
    untouched = [0, 2, 3, 5]
    np.testing.assert_array_equal(after[untouched], before[untouched])
    np.testing.assert_array_equal(m_after[untouched], m_before[untouched])
    np.testing.assert_array_equal(v_after[untouched], v_before[untouched])
    for row in (1, 4):
        assert np.all(after[row] != before[row])
        assert np.all(m_after[row] != m_before[row])


def test_all_rows_touched_matches_tf_keras_adam():
    lazy_table, dense_table = _table(), _table()
    lazy, adam = LazyAdam(learning_rate=0.05), tf_keras.optimizers.Adam(learning_rate=0.05)
    rng = np.random.default_rng(1)
    for _ in range(3):
        values = rng.normal(size=(6, 3)).astype(np.float32)
        order = rng.permutation(6)  # row order of the slices must not matter
        lazy.apply_gradients([(_sparse_grad(order, values[order]), lazy_table)])
        adam.apply_gradients([(tf.constant(values), dense_table)])
    np.testing.assert_allclose(lazy_table.numpy(), dense_table.numpy(), rtol=1e-6, atol=1e-7)
    for mine, reference in zip(_slots(lazy, lazy_table), _slots(adam, dense_table), strict=True):
        np.testing.assert_allclose(mine, reference, rtol=1e-6, atol=1e-7)


def test_dense_gradients_take_tf_keras_adam_path():
    lazy_var, dense_var = tf.Variable([1.0, -2.0]), tf.Variable([1.0, -2.0])
    lazy, adam = LazyAdam(learning_rate=0.1), tf_keras.optimizers.Adam(learning_rate=0.1)
    lazy.apply_gradients([(tf.constant([0.5, 0.25]), lazy_var)])
    adam.apply_gradients([(tf.constant([0.5, 0.25]), dense_var)])
    np.testing.assert_array_equal(lazy_var.numpy(), dense_var.numpy())
