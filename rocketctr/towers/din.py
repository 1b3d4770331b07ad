"""DIN booster: target attention of the candidate item over behaviour sequences
(Zhou et al., "Deep Interest Network for Click-Through Rate Prediction", KDD 2018)."""

from __future__ import annotations

from dataclasses import dataclass

import tensorflow as tf
import tf_keras

from rocketctr.config.core import all_positive
from rocketctr.layers.mlp import MLP
from rocketctr.towers.base import MLPConfig, Tower, TowerOutput, dense_flops, flat_inputs


@dataclass(frozen=True)
class DINConfig(MLPConfig):
    attention_units: tuple[int, ...] = (80, 40)  # the attention MLP's hidden layers

    CHECKS = {"attention_units": (all_positive, "must list positive layer widths")}


class TargetAttention(tf_keras.layers.Layer):
    """Σ_t a(q, k_t) · k_t over the present values of one sequence.

    a is an MLP over [q, k, q − k, q ∘ k] ending in one unit, as in DIN: the weights are
    not normalized by a softmax, so the interest vector keeps the strength of the match.

    Args:
        units: hidden layer widths of the attention MLP.
        length: the sequence's length L (its positions, present or not).
    """

    def __init__(self, units, length: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.length = length
        self.mlp = MLP(units)
        self.score = tf_keras.layers.Dense(1)

    def flops(self, num_fields: int, embedding_dim: int) -> int:
        """Per position: the attention MLP and its score, q − k, q ∘ k and the weighted sum."""
        del num_fields
        dense = [m for m in self.submodules if isinstance(m, tf_keras.layers.Dense)]
        return self.length * (sum(dense_flops(m) for m in dense) + 4 * embedding_dim)

    def call(self, query, keys, present) -> tf.Tensor:
        """query [B, d], keys [B, L, d], present [B, L] -> interest [B, d]."""
        keys = tf.cast(keys, self.compute_dtype)  # only the first input is autocast
        q = tf.broadcast_to(query[:, None, :], tf.shape(keys))
        pairs = tf.concat([q, keys, q - keys, q * keys], axis=2)
        weights = tf.squeeze(self.score(self.mlp(pairs)), axis=2) * tf.cast(present, keys.dtype)
        return tf.reduce_sum(weights[:, :, None] * keys, axis=1)


class DINTower(Tower, name="din"):
    """An MLP over [flattened embeddings, one interest vector per sequence, dense].

    Each behaviour sequence is attended to with its item feature's embedding (the
    candidate) as the query. The embeddings also hold each sequence mean-pooled, as every
    tower sees it.
    """

    Config = DINConfig
    hidden_names = ("mlp", "interest")  # the last MLP layer; the interest vectors, joined
    uses_sequences = True

    def __init__(self, config, **kwargs) -> None:
        super().__init__(config, **kwargs)
        inputs = self.inputs
        if inputs is None or not inputs.sequences:
            raise ValueError(
                "The din tower needs a behaviour sequence among its features: a schema entry "
                "{name: ..., sequence: {item_feature: ...}}."
            )
        self._queries = [(name, inputs.categorical.index(item)) for name, item in inputs.sequences]
        self.attention = {
            name: TargetAttention(
                config.attention_units, inputs.sequence_length[name], name=f"attention_{name}"
            )
            for name, _ in self._queries
        }
        self.mlp = MLP(config.hidden_units, config.dropout, config.batch_norm)
        self.out = tf_keras.layers.Dense(1)

    def call(self, embeddings, dense, training=None, sequences=None) -> TowerOutput:
        interests = [
            self.attention[name](embeddings[:, field], *sequences[name])
            for name, field in self._queries
        ]
        interest = tf.concat(interests, axis=1) if len(interests) > 1 else interests[0]
        x = tf.concat([flat_inputs(embeddings, dense), interest], axis=1)
        hidden = self.mlp(x, training=training)
        return TowerOutput(
            tf.squeeze(self.out(hidden), axis=1), {"mlp": hidden, "interest": interest}
        )
