"""Ranking distillation within groups: the light net learns the booster's pairwise order.

Within each group (rows of one request, or else of one user, in one batch: the schema's
`group_column`), for every pair (i, j) the light net's preference σ(l_i − l_j) is pulled
towards the teacher's σ((t_i − t_j) / T):

    pairwise_i = mean over j in group(i), j ≠ i, of BCE(σ((t_i − t_j) / T), σ(l_i − l_j))

and the batch loss is the mean over rows, so each group counts by its size and a row alone
in its group contributes 0. The target is the teacher's logits after the gradient block.
Unlike the pointwise hints it says nothing of the level of the scores, only of their order
within a group: it is meant to move GAUC.
"""

from __future__ import annotations

from dataclasses import dataclass

import tensorflow as tf

from rocketctr.distill.base import Method, MethodInputs, check_positive


@dataclass(frozen=True)
class PairwiseConfig:
    weight: float = 1.0
    temperature: float = 1.0  # of the teacher's pairwise preferences


class Pairwise(Method, name="pairwise"):
    """`pairwise_per_example` over the schema's request or user groups."""

    Config = PairwiseConfig
    needs_groups = True

    def __init__(self, config, context, **kwargs) -> None:
        super().__init__(config, context, **kwargs)
        check_positive("pairwise", "temperature", config.temperature)

    def per_example(self, inputs: MethodInputs) -> tf.Tensor:
        return pairwise_per_example(
            inputs.teacher.logits, inputs.light.logits, inputs.groups, self.config.temperature
        )


def pairwise_per_example(
    teacher_logits: tf.Tensor, light_logits: tf.Tensor, groups: tf.Tensor, temperature: float
) -> tf.Tensor:
    """The pairwise loss of each row [B] (0 for a row alone in its group).

    Args:
        teacher_logits: [B] the target (already behind the gradient block).
        light_logits: [B].
        groups: [B] group ids of any dtype (equal ids, one group).
        temperature: T > 0 of the teacher's pairwise preferences.
    """
    same = tf.equal(groups[:, None], groups[None, :])
    others = tf.logical_and(same, tf.logical_not(tf.eye(tf.size(groups), dtype=tf.bool)))
    targets = tf.sigmoid((teacher_logits[:, None] - teacher_logits[None, :]) / temperature)
    bce = tf.nn.sigmoid_cross_entropy_with_logits(
        labels=targets, logits=light_logits[:, None] - light_logits[None, :]
    )
    mask = tf.cast(others, bce.dtype)
    pairs = tf.reduce_sum(mask, axis=1)
    return tf.math.divide_no_nan(tf.reduce_sum(bce * mask, axis=1), pairs)
