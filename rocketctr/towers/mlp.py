"""The MLP light tower over the shared embeddings."""

from __future__ import annotations

import tensorflow as tf
import tf_keras

from rocketctr.layers.mlp import MLP
from rocketctr.towers.base import MLPConfig, Tower, TowerOutput, flat_inputs


class MLPTower(Tower, name="mlp"):
    """A small MLP over [flattened embeddings, dense]; with no hidden units, a linear model
    of the embeddings (the `lr` tower is the real LR: a weight per id)."""

    Config = MLPConfig

    @property
    def hidden_names(self) -> tuple[str, ...]:
        return ("mlp",) if self.config.hidden_units else ()  # the last hidden layer

    def __init__(self, config, **kwargs) -> None:
        super().__init__(config, **kwargs)
        self.mlp = MLP(config.hidden_units, config.dropout, config.batch_norm)
        self.out = tf_keras.layers.Dense(1)

    def call(self, embeddings, dense, training=None) -> TowerOutput:
        hidden = self.mlp(flat_inputs(embeddings, dense), training=training)
        logits = tf.squeeze(self.out(hidden), axis=1)
        return TowerOutput(logits, {"mlp": hidden} if self.hidden_names else {})
