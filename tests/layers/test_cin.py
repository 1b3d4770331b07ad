"""CIN (xDeepFM's Compressed Interaction Network) on hand-worked values and against a plain
numpy reference written from the paper's formula."""

import rocketctr  # noqa: F401  (selects Keras 2 before TensorFlow loads)

# isort: split
import numpy as np
import tensorflow as tf

from rocketctr.layers.cin import CIN


def _reference(x0: np.ndarray, filters: list[np.ndarray]) -> np.ndarray:
    """X^k[h] = Σ_{i,j} W^k[i·F + j, h] (X^{k-1}[i] ∘ X^0[j]), each X^k sum-pooled over the
    embedding dimension; loops over every index, no einsum."""
    batch, num_fields, dim = x0.shape
    pooled = []
    for b in range(batch):
        xk, row = x0[b], []
        for w in filters:
            out = np.zeros((w.shape[1], dim))
            for h in range(w.shape[1]):
                for i in range(xk.shape[0]):
                    for j in range(num_fields):
                        out[h] += w[i * num_fields + j, h] * xk[i] * x0[b, j]
            row.extend(out.sum(axis=1))
            xk = out
        pooled.append(row)
    return np.array(pooled)


def test_one_layer_by_hand():
    # Fields e0 = [1, 2], e1 = [3, 4]; one feature map reading (e0 ∘ e0) and 2·(e1 ∘ e1).
    layer = CIN([1])
    x0 = tf.constant([[[1.0, 2.0], [3.0, 4.0]]])  # [B=1, F=2, d=2]
    layer(x0)
    layer.filters[0].assign([[1.0], [0.0], [0.0], [2.0]])  # rows (0,0), (0,1), (1,0), (1,1)
    # e0∘e0 = [1, 4], e1∘e1 = [9, 16]: X^1 = [1 + 18, 4 + 32] = [19, 36], pooled 55.
    np.testing.assert_allclose(layer(x0).numpy(), [[55.0]], rtol=1e-6)


def test_the_filter_gradient_is_the_pooled_products_of_the_fields():
    layer = CIN([1])
    x0 = tf.constant([[[1.0, 2.0], [3.0, 4.0]]])
    layer(x0)
    with tf.GradientTape() as tape:
        out = tf.reduce_sum(layer(x0))
    # d out / d W[(i, j)] = Σ_d e_i[d]·e_j[d]: 1+4, 3+8, 3+8, 9+16.
    grad = tape.gradient(out, layer.filters[0])
    np.testing.assert_allclose(grad.numpy(), [[5.0], [11.0], [11.0], [25.0]], rtol=1e-6)


def test_two_layers_match_the_reference_and_concatenate_their_pooled_maps():
    rng = np.random.default_rng(0)
    x0 = rng.normal(size=(3, 4, 5)).astype(np.float32)  # [B=3, F=4, d=5]
    layer = CIN([2, 3])
    out = layer(tf.constant(x0)).numpy()
    assert [tuple(w.shape) for w in layer.filters] == [(4 * 4, 2), (2 * 4, 3)]
    assert out.shape == (3, 2 + 3)
    filters = [w.numpy() for w in layer.filters]
    np.testing.assert_allclose(out, _reference(x0, filters), rtol=1e-5, atol=1e-5)


def test_layer_k_is_of_degree_k_plus_1_in_the_embeddings():
    x0 = tf.random.stateless_normal([2, 3, 4], seed=[1, 2])
    layer = CIN([2, 2])
    once, twice = layer(x0).numpy(), layer(2.0 * x0).numpy()
    np.testing.assert_allclose(twice[:, :2], 4.0 * once[:, :2], rtol=1e-5)  # degree 2
    np.testing.assert_allclose(twice[:, 2:], 8.0 * once[:, 2:], rtol=1e-5)  # degree 3


def test_gradients_reach_every_field_and_every_filter():
    x0 = tf.Variable(tf.random.stateless_normal([2, 3, 4], seed=[3, 4]))
    layer = CIN([2, 2])
    with tf.GradientTape() as tape:
        out = tf.reduce_sum(layer(x0))
    grad_x0, *grad_filters = tape.gradient(out, [x0, *layer.filters])
    assert np.all(np.abs(grad_x0.numpy()).sum(axis=(0, 2)) > 0)  # per field
    assert all(np.abs(g.numpy()).sum() > 0 for g in grad_filters)
