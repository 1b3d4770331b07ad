"""Deep & Cross boosters: DCN (full-rank or vector crosses) and DCN-v2 (low-rank crosses),
stacked or parallel."""

from __future__ import annotations

import tensorflow as tf
import tensorflow_recommenders as tfrs
import tf_keras

from rocketctr.config.core import ConfigError
from rocketctr.layers.cross import VectorCross
from rocketctr.layers.mlp import MLP
from rocketctr.towers.base import Tower, TowerOutput, flat_inputs


class DCNTower(Tower, name="dcn"):
    """Cross network and MLP over x0 = [flattened embeddings, dense] (Wang et al., 2017/2021).

    `cross_structure="parallel"` concatenates the cross and MLP outputs; `"stacked"` feeds
    the cross output into the MLP. `cross_type="matrix"` crosses with a full-rank matrix
    (DCN-v2's full-rank form, the default); `"vector"` with the original DCN's weight vector.
    """

    uses = frozenset(
        {"hidden_units", "num_cross_layers", "cross_structure", "cross_type", "dropout",
         "batch_norm"}
    )  # fmt: skip
    # "cross": the last cross layer's output; "mlp": the MLP's last hidden layer (stacked:
    # over the crosses); "final": what the output layer reads.
    hidden_names = ("cross", "mlp", "final")

    def __init__(self, config, **kwargs) -> None:
        super().__init__(config, **kwargs)
        if config.cross_structure not in ("parallel", "stacked"):
            raise ConfigError(
                "cross_structure must be 'parallel' or 'stacked'. "
                f"Received: {config.cross_structure!r}"
            )
        if config.cross_type not in ("matrix", "vector"):
            raise ConfigError(
                f"cross_type must be 'matrix' or 'vector'. Received: {config.cross_type!r}"
            )
        if config.cross_type == "vector":
            self.crosses = [VectorCross(name=f"cross_{i}") for i in range(config.num_cross_layers)]
        else:
            self.crosses = [
                tfrs.layers.dcn.Cross(projection_dim=config.projection_dim, name=f"cross_{i}")
                for i in range(config.num_cross_layers)
            ]
        self.mlp = MLP(config.hidden_units, config.dropout, config.batch_norm)
        self.out = tf_keras.layers.Dense(1)

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

    uses = (DCNTower.uses - {"cross_type"}) | {"projection_dim"}

    def __init__(self, config, **kwargs) -> None:
        if not config.projection_dim:
            raise ConfigError(
                "Tower 'dcn_v2' needs projection_dim (the cross rank); use 'dcn' for full "
                f"rank. Received: projection_dim={config.projection_dim!r}"
            )
        super().__init__(config, **kwargs)
