"""xDeepFM and DeepFM boosters."""

from __future__ import annotations

from dataclasses import dataclass

import tensorflow as tf
import tf_keras

from rocketctr.config.core import all_positive
from rocketctr.layers.cin import CIN
from rocketctr.layers.mlp import MLP
from rocketctr.towers.base import MLPConfig, Tower, TowerOutput, flat_inputs
from rocketctr.towers.fm import LinearTerm, fm_pairwise, fm_pairwise_flops


@dataclass(frozen=True)
class XDeepFMConfig(MLPConfig):
    cin_layer_sizes: tuple[int, ...] = (128, 128)  # feature maps of each CIN layer

    CHECKS = {"cin_layer_sizes": (all_positive, "must list positive layer sizes")}


class XDeepFMTower(Tower, name="xdeepfm"):
    """Linear (a weight per id and per dense value) + CIN over the embeddings + MLP over x0
    (Lian et al., KDD 2018)."""

    Config = XDeepFMConfig
    hidden_names = ("cin", "mlp")  # the CIN's pooled feature maps; the MLP's last layer
    uses_first_order = True

    def __init__(self, config, **kwargs) -> None:
        super().__init__(config, **kwargs)
        self.linear = LinearTerm(len(self.inputs.dense), name="linear")
        self.cin = CIN(config.cin_layer_sizes)
        self.cin_out = tf_keras.layers.Dense(1)
        self.mlp = MLP(config.hidden_units, config.dropout, config.batch_norm)
        self.mlp_out = tf_keras.layers.Dense(1)

    def call(self, embeddings, dense, training=None, first_order=None) -> TowerOutput:
        x0 = flat_inputs(embeddings, dense)
        cin, mlp = self.cin(embeddings), self.mlp(x0, training=training)
        logits = tf.squeeze(self.cin_out(cin) + self.mlp_out(mlp), axis=1)
        return TowerOutput(logits + self.linear(dense, first_order), {"cin": cin, "mlp": mlp})


class DeepFMTower(Tower, name="deepfm"):
    """Linear (a weight per id and per dense value) + FM pairwise term + MLP over x0 (Guo
    et al., IJCAI 2017)."""

    Config = MLPConfig
    hidden_names = ("mlp",)
    uses_first_order = True

    def flops(self, num_fields: int, embedding_dim: int) -> int:
        return super().flops(num_fields, embedding_dim) + fm_pairwise_flops(
            num_fields, embedding_dim
        )

    def __init__(self, config, **kwargs) -> None:
        super().__init__(config, **kwargs)
        self.linear = LinearTerm(len(self.inputs.dense), name="linear")
        self.mlp = MLP(config.hidden_units, config.dropout, config.batch_norm)
        self.mlp_out = tf_keras.layers.Dense(1)

    def call(self, embeddings, dense, training=None, first_order=None) -> TowerOutput:
        x0 = flat_inputs(embeddings, dense)
        mlp = self.mlp(x0, training=training)
        logits = tf.squeeze(self.mlp_out(mlp), axis=1) + self.linear(dense, first_order)
        pairwise = tf.cast(fm_pairwise(embeddings), logits.dtype)
        return TowerOutput(logits + pairwise, {"mlp": mlp})
