"""An ensemble of boosters (`model.boosters`): one teacher made of several towers.

Each booster is a tower of its own on the shared tables (`booster_<name>/...`), trained on
the labels alone, exactly as it would be alone. The teacher the light nets learn from is
their mixture (`model.booster_mixture`):

- "mean": the mean of their logits;
- "gated": Σ_k g_k(x) · logit_k, with g(x) = softmax(W · [embeddings, dense] + b) per
  example (teacher gating, Zhu et al., "Ensembled CTR Prediction via Knowledge
  Distillation", CIKM 2020). The gate learns from the labels, through the mixture's BCE, and
  from nothing else: it reads the boosters' logits and the batch's embedding rows behind a
  stop_gradient, so its loss moves neither a booster nor a table row.

The ensemble is the model's `booster`: its variables are the boosters' and the gate's
(every one of role "booster", never served), and its output is the teacher's. Its metrics
are `booster_auc`, `booster_bce` (the mixture's), and each booster's `booster_<name>_auc`,
`booster_<name>_bce`.
"""

from __future__ import annotations

import tensorflow as tf
import tf_keras

from rocketctr import towers
from rocketctr.towers.base import TowerOutput, dense_flops, flat_inputs


def member_scope(name: str) -> str:
    """The scope (and output name) of booster `name` of an ensemble."""
    return f"booster_{name}"


class BoosterEnsemble(tf_keras.layers.Layer):
    """The boosters of `model.boosters` and how they mix into one teacher.

    The model calls each booster itself (`members`), as it calls a single booster, and then
    this layer on their outputs. It answers what the model asks of a booster tower:
    `reads_embeddings`, `row_variables`, `flops`, `hidden_names` (none: the mixture of
    several towers' hidden layers is no representation a method could transfer).

    Args:
        configs: {name: tower config}, two or more.
        inputs: the fields and dense columns every booster receives.
        mixture: "mean" or "gated".
    """

    hidden_names: tuple[str, ...] = ()
    uses_first_order = False  # each booster reads its own first-order rows, if it has any
    uses_sequences = False

    def __init__(self, configs, inputs: towers.TowerInputs, mixture: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.mixture = mixture
        self.members = {
            name: towers.build_tower(config, member_scope(name), inputs)
            for name, config in configs.items()
        }
        self.gate = (
            tf_keras.layers.Dense(len(configs), name="booster_gate") if mixture == "gated" else None
        )

    @property
    def reads_embeddings(self) -> bool:
        return any(m.reads_embeddings for m in self.members.values())

    def row_variables(self) -> list[tf.Variable]:
        return [v for m in self.members.values() for v in m.row_variables()]

    def flops(self, num_fields: int, embedding_dim: int) -> int:
        """The boosters' FLOPs per example, and the gate's."""
        total = sum(m.flops(num_fields, embedding_dim) for m in self.members.values())
        return total + (dense_flops(self.gate) if self.gate is not None else 0)

    def call(
        self,
        members: dict[str, TowerOutput],
        embeddings: tf.Tensor | None = None,
        dense: tf.Tensor | None = None,
    ) -> TowerOutput:
        """The teacher's output from the boosters' outputs (by name, in `members` order).

        Args:
            members: each booster's output (float32) of this batch.
            embeddings: [B, F, d] the batch's pooled rows, which the gate reads.
            dense: [B, D] its dense values, which the gate reads.
        """
        logits = tf.stack([members[n].logits for n in self.members], axis=1)  # [B, K]
        if self.gate is None:
            return TowerOutput(tf.reduce_mean(logits, axis=1), {})
        seen = tf.stop_gradient(flat_inputs(embeddings, dense))
        # The gate computes in bf16 under train.mixed_precision; the mixture is float32.
        weights = tf.nn.softmax(tf.cast(self.gate(seen), tf.float32), axis=1)
        return TowerOutput(tf.reduce_sum(weights * tf.stop_gradient(logits), axis=1), {})
