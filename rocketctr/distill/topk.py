"""Ranking distillation (Tang & Wang, KDD 2018): the teacher's top-K become extra positives.

Within each group (the rows of one request, or else of one user, in the batch: the schema's
`group_column`), rows are ranked by the teacher's logits, r = 0 for its best. A row that
the teacher ranks in its group's top `k`, that is not the group's last row, and that is not
labelled positive, is taken as a weighted positive for the light net:

    topk_i = w_i · BCE(1, σ(l_i))      (0 for every other row)

With weighting "position", w_i = exp(−r_i / decay) / Σ_{r<k} exp(−r / decay) (the paper's
position importance: the teacher's first choice weighs most). With "rank_discrepancy", that
weight is multiplied by tanh(max(mu · (r̂_i − r_i), 0)), r̂_i the light net's own rank of the
row: rows the light net already ranks as high as the teacher weigh nothing (the paper's
hybrid weighting). A row alone in its group has no ranking to learn, and contributes 0.
The loss pushes the light net's scores up for rows it would not be trained to score high,
so, unlike `pairwise`, it moves calibration as well as the ranking: judge it by GAUC.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import tensorflow as tf

from rocketctr.config.core import ConfigError
from rocketctr.distill.base import Method, MethodInputs, check_positive

WEIGHTINGS = ("position", "rank_discrepancy")


@dataclass(frozen=True)
class TopKConfig:
    weight: float = 1.0
    k: int = 1  # the teacher's top-k rows of each group
    weighting: str = "position"  # position | rank_discrepancy
    decay: float = 1.0  # of the position weights exp(−r / decay)
    mu: float = 0.5  # rank_discrepancy only: tanh(mu · (light rank − teacher rank))


def group_ranks(scores: tf.Tensor, groups: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Each row's 0-based rank by `scores` within its group (ties: earlier row first), and
    its group's size; both int32 [B]."""
    same = tf.equal(groups[:, None], groups[None, :])
    index = tf.range(tf.size(scores))
    ahead = (scores[None, :] > scores[:, None]) | (
        tf.equal(scores[None, :], scores[:, None]) & (index[None, :] < index[:, None])
    )
    ranks = tf.reduce_sum(tf.cast(same & ahead, tf.int32), axis=1)
    return ranks, tf.reduce_sum(tf.cast(same, tf.int32), axis=1)


def topk_per_example(
    teacher_logits: tf.Tensor,
    light_logits: tf.Tensor,
    labels: tf.Tensor,
    groups: tf.Tensor,
    config: TopKConfig,
) -> tf.Tensor:
    """The top-K loss of each row [B] (see the module docstring)."""
    ranks, sizes = group_ranks(teacher_logits, groups)
    chosen = (ranks < config.k) & (ranks < sizes - 1) & (labels < 0.5)
    r = tf.cast(ranks, tf.float32)
    norm = sum(math.exp(-i / config.decay) for i in range(config.k))
    weights = tf.exp(-r / config.decay) / norm
    if config.weighting == "rank_discrepancy":
        light_ranks, _ = group_ranks(tf.stop_gradient(light_logits), groups)
        gap = tf.cast(light_ranks, tf.float32) - r
        weights *= tf.tanh(tf.maximum(config.mu * gap, 0.0))
    positive = tf.nn.sigmoid_cross_entropy_with_logits(tf.ones_like(light_logits), light_logits)
    return tf.where(chosen, weights * positive, tf.zeros_like(positive))


class TopK(Method, name="topk"):
    Config = TopKConfig
    needs_groups = True

    def __init__(self, config, context, **kwargs) -> None:
        super().__init__(config, context, **kwargs)
        if config.k < 1:
            raise ConfigError(
                f"Config key distill.methods.topk.k must be >= 1. Received: {config.k}"
            )
        if config.weighting not in WEIGHTINGS:
            raise ConfigError(
                f"Config key distill.methods.topk.weighting must be one of {list(WEIGHTINGS)}. "
                f"Received: {config.weighting!r}"
            )
        check_positive("topk", "decay", config.decay)
        check_positive("topk", "mu", config.mu)
        if config.weighting == "position" and config.mu != TopKConfig.mu:
            raise ConfigError(
                "Config key distill.methods.topk.mu is read with weighting 'rank_discrepancy' "
                "only; weighting is 'position'."
            )

    def per_example(self, inputs: MethodInputs) -> tf.Tensor:
        return topk_per_example(
            inputs.teacher.logits, inputs.light.logits, inputs.labels, inputs.groups, self.config
        )
