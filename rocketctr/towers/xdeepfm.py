"""xDeepFM and DeepFM boosters."""

from __future__ import annotations

import tensorflow as tf
import tf_keras

from rocketctr.layers.cin import CIN
from rocketctr.layers.mlp import MLP
from rocketctr.towers.base import Tower, flat_inputs
from rocketctr.towers.fm import fm_pairwise


class XDeepFMTower(Tower, name="xdeepfm"):
    """Linear + CIN over the embeddings + MLP over x0 (Lian et al., KDD 2018)."""

    uses = frozenset({"hidden_units", "cin_layer_sizes", "dropout", "batch_norm"})

    def __init__(self, config, **kwargs) -> None:
        super().__init__(config, **kwargs)
        self.linear = tf_keras.layers.Dense(1)
        self.cin = CIN(config.cin_layer_sizes)
        self.cin_out = tf_keras.layers.Dense(1)
        self.mlp = MLP(config.hidden_units, config.dropout, config.batch_norm)
        self.mlp_out = tf_keras.layers.Dense(1)

    def call(self, embeddings, dense, training=None) -> tf.Tensor:
        x0 = flat_inputs(embeddings, dense)
        logits = (
            self.linear(x0)
            + self.cin_out(self.cin(embeddings))
            + self.mlp_out(self.mlp(x0, training=training))
        )
        return tf.squeeze(logits, axis=1)


class DeepFMTower(Tower, name="deepfm"):
    """Linear + FM pairwise term + MLP over x0 (Guo et al., IJCAI 2017)."""

    uses = frozenset({"hidden_units", "dropout", "batch_norm"})

    def __init__(self, config, **kwargs) -> None:
        super().__init__(config, **kwargs)
        self.linear = tf_keras.layers.Dense(1)
        self.mlp = MLP(config.hidden_units, config.dropout, config.batch_norm)
        self.mlp_out = tf_keras.layers.Dense(1)

    def call(self, embeddings, dense, training=None) -> tf.Tensor:
        x0 = flat_inputs(embeddings, dense)
        logits = self.linear(x0) + self.mlp_out(self.mlp(x0, training=training))
        return tf.squeeze(logits, axis=1) + fm_pairwise(embeddings)
