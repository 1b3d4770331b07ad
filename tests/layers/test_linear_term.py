"""LinearTerm (rocketctr/towers/fm.py), the linear part of LR, FM, DeepFM and xDeepFM:
b + Σ_f w_f + Σ_j u_j x_j, on hand-worked values."""

import rocketctr  # noqa: F401  (selects Keras 2 before TensorFlow loads)

# isort: split
import numpy as np
import tensorflow as tf

from rocketctr.towers.fm import LinearTerm

DENSE = tf.constant([[1.0, 2.0], [-2.0, 0.5]])  # x [B=2, D=2]
FIRST_ORDER = tf.constant([[0.1, 0.2, 0.3], [-1.0, 0.0, 0.5]])  # w [B=2, F=3]


def test_bias_plus_the_first_order_weights_plus_the_weighted_dense_values():
    layer = LinearTerm(num_dense=2)
    layer(DENSE, FIRST_ORDER)
    layer.dense_weights.kernel.assign([[0.5], [-1.0]])  # u
    layer.dense_weights.bias.assign([0.25])  # b
    # Row 0: 0.25 + (0.5 - 2.0) + (0.1 + 0.2 + 0.3) = -0.65
    # Row 1: 0.25 + (-1.0 - 0.5) + (-1.0 + 0 + 0.5) = -1.75
    np.testing.assert_allclose(layer(DENSE, FIRST_ORDER).numpy(), [-0.65, -1.75], rtol=1e-6)


def test_without_dense_columns_it_is_a_bias_plus_the_first_order_weights():
    layer = LinearTerm(num_dense=0)
    no_dense = tf.zeros([2, 0])
    layer(no_dense, FIRST_ORDER)
    assert layer.dense_weights is None
    assert [v.shape for v in layer.trainable_variables] == [()]  # the bias alone
    layer.bias.assign(0.5)
    np.testing.assert_allclose(layer(no_dense, FIRST_ORDER).numpy(), [1.1, 0.0], rtol=1e-6)


def test_every_term_gets_its_gradient():
    layer = LinearTerm(num_dense=2)
    first_order = tf.Variable(FIRST_ORDER)
    with tf.GradientTape() as tape:
        out = layer(DENSE, first_order)
        loss = tf.reduce_sum(out * tf.constant([1.0, 3.0]))
    kernel, bias = layer.dense_weights.kernel, layer.dense_weights.bias
    grad_kernel, grad_bias, grad_first_order = tape.gradient(loss, [kernel, bias, first_order])
    # d loss / d u_j = Σ_b c_b x_bj: 1·1 + 3·(-2), 1·2 + 3·0.5; d / d b = 1 + 3.
    np.testing.assert_allclose(grad_kernel.numpy(), [[-5.0], [3.5]], rtol=1e-6)
    np.testing.assert_allclose(grad_bias.numpy(), [4.0], rtol=1e-6)
    np.testing.assert_allclose(grad_first_order.numpy(), [[1.0] * 3, [3.0] * 3], rtol=1e-6)
