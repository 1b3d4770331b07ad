"""The Distiller: the one place the training loss is composed.

    total = w(λ) · BCE(y, light) + BCE(y, booster) + λ(step) · hint(t, light)
            + s(step) · pairwise.weight · pairwise(t, light, groups)

t is the teacher's logits (the co-trained booster, a frozen two-stage teacher, or the
codistillation peers), put behind the gradient block here, once, before any method sees
it; λ(step) = hint_weight · s(step) with s the warm-up/ramp share (distill/schedule.py);
w(λ) is 1, or 1 − λ with hint_form "convex" (distill/pfd.py). Every term is per example;
the model averages them over the global batch.
"""

from __future__ import annotations

import dataclasses

import tensorflow as tf

from rocketctr.config import ConfigError, DistillConfig, PairwiseConfig
from rocketctr.distill.base import build_hint
from rocketctr.distill.pairwise import pairwise_per_example
from rocketctr.distill.pfd import light_label_weight
from rocketctr.distill.schedule import schedule_fraction, validate_schedule


class Distiller:
    """Composes the per-example losses of a batch.

    Args:
        config: the distill section.
        group_column: the raw column whose equal values form a group for `pairwise` (the
            schema's user id), or None.

    Raises:
        ConfigError: an unknown hint or schedule; a pairwise knob set while pairwise is off,
            or pairwise on without a group column.
    """

    def __init__(self, config: DistillConfig, group_column: str | None) -> None:
        validate_schedule(config)
        self.config = config
        self.hint = build_hint(config)
        self.pairwise = config.pairwise.weight > 0
        if not self.pairwise:
            changed = [
                f.name for f in dataclasses.fields(PairwiseConfig)
                if getattr(config.pairwise, f.name) != getattr(PairwiseConfig(), f.name)
            ]  # fmt: skip
            if changed:
                raise ConfigError(
                    f"distill.pairwise.{changed[0]} is set but distill.pairwise.weight is 0: "
                    "pairwise distillation is off. Set its weight, or remove the key."
                )
        elif group_column is None:
            raise ConfigError(
                "distill.pairwise ranks rows within a user: the schema needs a user_id column."
            )
        self.group_column = group_column if self.pairwise else None

    @property
    def loss_names(self) -> tuple[str, ...]:
        """The distillation losses it logs, besides the two label losses."""
        return ("hint", "pairwise") if self.pairwise else ("hint",)

    def __call__(
        self,
        labels: tf.Tensor,
        outputs: dict[str, tf.Tensor],
        teacher_logits: tf.Tensor | None,
        teacher_scale: tf.Tensor,
        groups: tf.Tensor | None,
        step: tf.Tensor,
    ) -> tuple[dict[str, tf.Tensor], tf.Tensor]:
        """The per-example losses [B] by name ("total", "light_bce", "booster_bce", "hint"
        and, when on, "pairwise"), and λ at this step.

        Args:
            labels: float 0/1 [B].
            outputs: the towers' "light_logits" / "booster_logits" [B] present.
            teacher_logits: [B] the hint target, or None when the light net has none.
            teacher_scale: multiplies λ (codistillation: 0 until a peer has saved).
            groups: [B] the group column's values (pairwise only).
            step: the 0-based global step.
        """
        zero = tf.zeros_like(labels)
        losses = {name: zero for name in ("light_bce", "booster_bce", *self.loss_names)}
        if "light_logits" in outputs:
            losses["light_bce"] = tf.nn.sigmoid_cross_entropy_with_logits(
                labels, outputs["light_logits"]
            )
        if "booster_logits" in outputs:
            losses["booster_bce"] = tf.nn.sigmoid_cross_entropy_with_logits(
                labels, outputs["booster_logits"]
            )
        weight, label_weight = tf.constant(0.0), tf.constant(1.0)
        distill_total = zero
        if teacher_logits is not None:
            if self.config.gradient_block:
                # The one place the gradient block lives: booster-only weights learn from
                # labels alone, whatever the method.
                teacher_logits = tf.stop_gradient(teacher_logits)
            light = outputs["light_logits"]
            share = schedule_fraction(step, self.config) * teacher_scale
            weight = self.config.hint_weight * share
            losses["hint"] = self.hint.per_example(teacher_logits, light)
            distill_total = weight * losses["hint"]
            if self.pairwise:
                losses["pairwise"] = pairwise_per_example(
                    teacher_logits, light, groups, self.config.pairwise.temperature
                )
                distill_total += self.config.pairwise.weight * share * losses["pairwise"]
            label_weight = light_label_weight(weight, self.config)
        losses["total"] = label_weight * losses["light_bce"] + losses["booster_bce"] + distill_total
        return losses, weight
