"""VectorCross (the original DCN's cross layer) on hand-worked values."""

import rocketctr  # noqa: F401  (selects Keras 2 before TensorFlow loads)

# isort: split
import numpy as np
import tensorflow as tf

from rocketctr.layers.cross import VectorCross


def test_vector_cross_is_x0_times_x_dot_w_plus_b_plus_x():
    layer = VectorCross()
    x0 = tf.constant([[1.0, 2.0, 3.0], [0.0, -1.0, 2.0]])
    x = tf.constant([[0.5, 0.0, 1.0], [1.0, 1.0, 1.0]])
    layer(x0, x)
    layer.kernel.assign([[2.0], [3.0], [-1.0]])
    layer.bias.assign([0.1, 0.2, 0.3])
    # x·w = [0.5*2 + 0 - 1, 2 + 3 - 1] = [0, 4]
    expected = [[0.1 + 0.5, 0.2, 0.3 + 1.0], [0.0 + 0.1 + 1.0, -4.0 + 0.2 + 1.0, 8.0 + 0.3 + 1.0]]
    np.testing.assert_allclose(layer(x0, x).numpy(), expected, rtol=1e-6)
    assert [v.shape for v in layer.trainable_variables] == [(3, 1), (3,)]


def test_vector_cross_init_is_glorot_normal_and_zero_bias():
    layer = VectorCross()
    layer(tf.ones([2, 400]), tf.ones([2, 400]))
    std = float(np.std(layer.kernel.numpy()))
    assert 0.8 * (2 / 401) ** 0.5 < std < 1.2 * (2 / 401) ** 0.5
    assert not layer.bias.numpy().any()
