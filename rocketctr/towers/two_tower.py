"""Inner-product two-tower light net (the served model of PFD+MD, Xu et al., KDD 2020).

score = ⟨u, v⟩ + b, where the user tower maps the user-side fields (user and context
features: everything the request knows) to u [B, k] and the item tower maps the item
fields to v [B, k]. Item vectors can be computed once per catalogue item, so serving a
request costs one user-tower pass and one dot product per candidate.
"""

from __future__ import annotations

from dataclasses import dataclass

import tensorflow as tf
import tf_keras

from rocketctr.config.core import ConfigError, positive
from rocketctr.features.processor import FeatureProcessor
from rocketctr.layers.mlp import MLP
from rocketctr.towers.base import (
    Lookup,
    MLPConfig,
    Tower,
    TowerOutput,
    VectorSignature,
    flat_inputs,
)

USER_SIGNATURE = "user_embedding"
ITEM_SIGNATURE = "item_embedding"
SCORE_SIGNATURE = "score"  # the same as serving_default: all light columns -> probabilities


@dataclass(frozen=True)
class TwoTowerConfig(MLPConfig):
    output_dim: int = 16  # width k of the user and item vectors

    CHECKS = {"output_dim": (positive, "must be >= 1")}


class TwoTowerTower(Tower, name="two_tower"):
    """User MLP and item MLP, each ending in a linear layer of width `output_dim`.

    The split comes from the tower's inputs: fields and dense columns named in the
    schema's `item_features` go to the item tower, all others to the user tower.
    `user_vector` and `item_vector` take their side's fields only, in the order the
    inputs list them (the schema's order), which is what a `FeatureProcessor` built for
    that side delivers.
    """

    Config = TwoTowerConfig
    hidden_names = ("user", "item")  # u and v

    def __init__(self, config, inputs=None, **kwargs) -> None:
        super().__init__(config, inputs=inputs, **kwargs)
        if inputs is None or not inputs.item_features:
            raise ConfigError(
                "Tower 'two_tower' needs the schema to declare item_features (and "
                "user_features); the schema declares none."
            )
        item = set(inputs.item_features)
        self.user_fields = [i for i, n in enumerate(inputs.categorical) if n not in item]
        self.item_fields = [i for i, n in enumerate(inputs.categorical) if n in item]
        self.user_dense = [i for i, n in enumerate(inputs.dense) if n not in item]
        self.item_dense = [i for i, n in enumerate(inputs.dense) if n in item]
        if not self.user_fields or not self.item_fields:
            raise ConfigError(
                "Tower 'two_tower' needs at least one categorical field on each side. "
                f"Received: user side {[inputs.categorical[i] for i in self.user_fields]}, "
                f"item side {[inputs.categorical[i] for i in self.item_fields]}"
            )
        self.user_mlp = MLP(config.hidden_units, config.dropout, config.batch_norm, name="user")
        self.user_out = tf_keras.layers.Dense(config.output_dim, name="user_out")
        self.item_mlp = MLP(config.hidden_units, config.dropout, config.batch_norm, name="item")
        self.item_out = tf_keras.layers.Dense(config.output_dim, name="item_out")

    def build(self, input_shape) -> None:
        # Created here, inside the layer's name scope, so its name carries the tower's role.
        self.bias = self.add_weight(name="bias", shape=[], initializer="zeros")
        super().build(input_shape)

    def user_vector(self, embeddings, dense, training=None) -> tf.Tensor:
        """u [B, k] from the user-side fields [B, Fu, d] and dense columns [B, Du]."""
        return self.user_out(self.user_mlp(flat_inputs(embeddings, dense), training=training))

    def item_vector(self, embeddings, dense, training=None) -> tf.Tensor:
        """v [B, k] from the item fields [B, Fi, d] and dense columns [B, Di]."""
        return self.item_out(self.item_mlp(flat_inputs(embeddings, dense), training=training))

    serving_aliases = (SCORE_SIGNATURE,)

    def serving_signatures(self, schema, lookup: Lookup) -> dict[str, VectorSignature]:
        """`user_embedding` (user and context columns -> u) and `item_embedding` (item
        columns -> v), each through a `FeatureProcessor` over its side's features: the same
        ops and rows as the light net's, so ⟨u, v⟩ + bias equals its logits."""
        signatures = {}
        for name, features, vector in (
            (USER_SIGNATURE, schema.user_side_features(), self.user_vector),
            (ITEM_SIGNATURE, list(schema.item_features), self.item_vector),
        ):
            processor = FeatureProcessor(
                schema, features, name=name.replace("embedding", "features")
            )

            def fn(raw, processor=processor, vector=vector):
                ids, dense = processor(raw)
                return vector(processor.embed(ids, lookup), dense, training=False)

            signatures[name] = VectorSignature(fn, processor.input_dtypes, self.config.output_dim)
        return signatures

    def serving_metadata(self) -> dict:
        return {
            "two_tower": {
                "output_dim": self.config.output_dim,
                "bias": float(self.bias.numpy()),
                "logits": f"sum({USER_SIGNATURE} * {ITEM_SIGNATURE}) + bias",
            }
        }

    def call(self, embeddings, dense, training=None) -> TowerOutput:
        u = self.user_vector(
            _columns(embeddings, self.user_fields), _columns(dense, self.user_dense), training
        )
        v = self.item_vector(
            _columns(embeddings, self.item_fields), _columns(dense, self.item_dense), training
        )
        return TowerOutput(tf.reduce_sum(u * v, axis=1) + self.bias, {"user": u, "item": v})


def _columns(x: tf.Tensor, indices: list[int]) -> tf.Tensor:
    """x[:, indices] (possibly none), keeping static shapes."""
    return tf.gather(x, tf.constant(indices, tf.int32), axis=1)
