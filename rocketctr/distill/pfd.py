"""Privileged Features Distillation's loss form (Xu et al., KDD 2020, Taobao).

PFD co-trains a booster that also sees privileged features (post-click signals such as
dwell time, available at training time only) with the served light net, and mixes the
light net's two targets convexly:

    (1 − λ) · BCE(y, light) + λ · hint(stop_gradient(booster), light) + BCE(y, booster)

with λ = 0 during warm-up (the booster is no help until it has learnt something) and the
configured value after it (λ the sum of the methods' weights). The hint is any method
(`logit_mse`, `kd`, ...); the
`Distiller` (distill/distiller.py) composes the loss and applies the gradient block, as for
every method.
"""

from __future__ import annotations

import tensorflow as tf

from rocketctr.config.core import ConfigError, DistillConfig
from rocketctr.distill.base import total_weight

HINT_FORMS = ("additive", "convex")


def validate_hint_form(config: DistillConfig) -> None:
    if config.hint_form not in HINT_FORMS:
        raise ConfigError(
            f"hint_form must be one of {list(HINT_FORMS)}. Received: {config.hint_form!r}"
        )
    if config.hint_form == "convex" and total_weight(config) > 1:
        raise ConfigError(
            "hint_form 'convex' weighs BCE(y, light) by 1 − λ, λ the sum of the methods' "
            f"weights, so that sum must be <= 1. Received: {total_weight(config)}"
        )


def light_label_weight(hint_weight: tf.Tensor, config: DistillConfig) -> tf.Tensor:
    """Weight of BCE(y, light) given λ at this step: 1 (additive) or 1 − λ (convex)."""
    if config.hint_form == "convex":
        return 1.0 - hint_weight
    return tf.ones_like(hint_weight)
