"""Deep & Cross boosters: DCN (full-rank or vector crosses) and DCN-v2 (low-rank crosses),
stacked or parallel."""

from __future__ import annotations

from dataclasses import dataclass

import tensorflow as tf
import tensorflow_recommenders as tfrs
import tf_keras

from rocketctr.config.core import ConfigError, non_negative, optional_positive
from rocketctr.layers.cross import VectorCross
from rocketctr.layers.mlp import MLP
from rocketctr.towers.base import MLPConfig, Tower, TowerOutput, flat_inputs

CROSS_STRUCTURES = ("parallel", "stacked")
CROSS_TYPES = ("matrix", "vector")


@dataclass(frozen=True)
class CrossConfig(MLPConfig):
    num_cross_layers: int = 3
    cross_structure: str = "parallel"  # "parallel" (cross ∥ MLP) or "stacked" (cross -> MLP)

    CHECKS = {
        "num_cross_layers": (non_negative, "must be >= 0"),
        "cross_structure": (
            lambda v: v in CROSS_STRUCTURES,
            f"must be one of {list(CROSS_STRUCTURES)}",
        ),
    }


@dataclass(frozen=True)
class DCNConfig(CrossConfig):
    # "matrix": x0 ∘ (W x + b) + x (full rank); "vector": the original DCN's
    # x0 · (xᵀ w) + b + x (rank one, 2·D weights a layer).
    cross_type: str = "matrix"

    CHECKS = {
        "cross_type": (lambda v: v in CROSS_TYPES, f"must be one of {list(CROSS_TYPES)}"),
    }


@dataclass(frozen=True)
class DCNv2Config(CrossConfig):
    projection_dim: int | None = None  # the rank of W = U Vᵀ (required)

    CHECKS = {"projection_dim": (optional_positive, "must be >= 1")}

    def __post_init__(self) -> None:
        if not self.projection_dim:
            raise ConfigError(
                "Tower 'dcn_v2' needs projection_dim (the cross rank); use 'dcn' for full "
                f"rank. Received: projection_dim={self.projection_dim!r}"
            )


class DCNTower(Tower, name="dcn"):
    """Cross network and MLP over x0 = [flattened embeddings, dense] (Wang et al., 2017/2021).

    `cross_structure="parallel"` concatenates the cross and MLP outputs; `"stacked"` feeds
    the cross output into the MLP. `cross_type="matrix"` crosses with a full-rank matrix
    (DCN-v2's full-rank form, the default); `"vector"` with the original DCN's weight vector.
    """

    Config = DCNConfig
    # "cross": the last cross layer's output; "mlp": the MLP's last hidden layer (stacked:
    # over the crosses); "final": what the output layer reads.
    hidden_names = ("cross", "mlp", "final")

    def __init__(self, config, **kwargs) -> None:
        super().__init__(config, **kwargs)
        self.crosses = [self._cross(f"cross_{i}") for i in range(config.num_cross_layers)]
        self.mlp = MLP(config.hidden_units, config.dropout, config.batch_norm)
        self.out = tf_keras.layers.Dense(1)

    def _cross(self, name: str) -> tf_keras.layers.Layer:
        if self.config.cross_type == "vector":
            return VectorCross(name=name)
        return tfrs.layers.dcn.Cross(name=name)

    def layer_flops(self, layer, num_fields: int, embedding_dim: int) -> int:
        if not isinstance(layer, tfrs.layers.dcn.Cross):
            return super().layer_flops(layer, num_fields, embedding_dim)
        # Its Dense (or low-rank U, V pair) counts as Dense; this is the element-wise work
        # x0 ∘ (Wx + b) + x (plus the optional diagonal term).
        width = int(
            layer._dense.kernel.shape[1]
            if layer._projection_dim is None
            else layer._dense_v.kernel.shape[1]
        )
        return 2 * width + (2 * width if layer._diag_scale else 0)

    def call(self, embeddings, dense, training=None) -> TowerOutput:
        x0 = flat_inputs(embeddings, dense)
        x = x0
        for cross in self.crosses:
            x = cross(x0, x)
        if self.config.cross_structure == "stacked":
            mlp = final = self.mlp(x, training=training)
        else:
            mlp = self.mlp(x0, training=training)
            final = tf.concat([x, mlp], axis=1)
        logits = tf.squeeze(self.out(final), axis=1)
        return TowerOutput(logits, {"cross": x, "mlp": mlp, "final": final})


class DCNv2Tower(DCNTower, name="dcn_v2"):
    """DCN-v2 with low-rank cross layers W = U Vᵀ of rank `projection_dim`."""

    Config = DCNv2Config

    def _cross(self, name: str) -> tf_keras.layers.Layer:
        return tfrs.layers.dcn.Cross(projection_dim=self.config.projection_dim, name=name)
