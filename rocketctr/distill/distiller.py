"""The Distiller: the one place the training loss is composed.

    total = w(λ) · BCE(y, light) + Σ_b BCE(y, b) + s(step) · Σ_m weight_m · method_m

over the boosters b (the booster; or each booster of an ensemble, and its gated mixture) and
the methods of `distill.methods` (distill/base.py), with s(step) the warm-up/ramp
share (distill/schedule.py) times the teacher's scale (codistillation: 0 until a peer has
saved), λ(step) = s(step) · Σ_m weight_m, and w(λ) = 1, or 1 − λ with hint_form "convex"
(distill/pfd.py). The teacher's output (logits and hidden representations: the co-trained
booster, a frozen two-stage teacher, or the codistillation peers) is put behind the
gradient block here, once, before any method sees it. Every term is per example; the model
averages them over the global batch.
"""

from __future__ import annotations

from typing import NamedTuple

import tensorflow as tf
import tf_keras

from rocketctr.config.core import DistillConfig
from rocketctr.distill.base import MethodContext, MethodInputs, build_methods
from rocketctr.distill.pfd import light_label_weight
from rocketctr.distill.schedule import schedule_fraction, validate_schedule
from rocketctr.towers.base import TowerOutput


class DistillerInputs(NamedTuple):
    """One batch, as the model hands it over.

    Attributes:
        labels: float 0/1 [B].
        light: the light tower's output, or None (booster_only).
        boosters: the outputs that learn from the labels besides the light net: the
            booster's, or each booster's of an ensemble and (`booster_mixture: gated`) the
            mixture's, whose BCE trains the gate alone; () without a booster.
        teacher: what the light net learns from, or None when it has no teacher.
        teacher_scale: multiplies the methods' weights.
        groups: [B] the group column's values (see `MethodInputs`).
        step: the 0-based global step.
    """

    labels: tf.Tensor
    light: TowerOutput | None
    boosters: tuple[TowerOutput, ...]
    teacher: TowerOutput | None
    teacher_scale: tf.Tensor
    groups: tf.Tensor
    step: tf.Tensor


class Distiller(tf_keras.layers.Layer):
    """Composes the per-example losses of a batch.

    A layer of the model, so the methods' own weights (a regressor) are tracked, trained
    and checkpointed with it; their variables are named `distiller/<method>/...` (one per
    light net of `model.lights`: `distiller_<light net>/<method>/...`).

    Args:
        config: the distill section.
        context: what the towers offer the methods (see `MethodContext`).
        name: its scope.

    Raises:
        ConfigError: an unknown method, knob or schedule; a method that needs groups
            without a group column, or a hidden representation a tower does not offer.
    """

    def __init__(
        self, config: DistillConfig, context: MethodContext, name: str = "distiller", **kwargs
    ) -> None:
        super().__init__(name=name, **kwargs)
        validate_schedule(config)
        self.config = config
        self.methods = build_methods(config, context)
        grouped = any(m.needs_groups for m in self.methods)
        self.group_column = context.group_column if grouped else None

    @property
    def loss_names(self) -> tuple[str, ...]:
        """The distillation losses it logs (unweighted), besides the two label losses."""
        return tuple(m.method_name for m in self.methods)

    def call(self, inputs: DistillerInputs) -> tuple[dict[str, tf.Tensor], tf.Tensor]:
        """The per-example losses [B] by name ("total", "light_bce", "booster_bce" (Σ_b) and
        each method's), and λ at this step."""
        labels = inputs.labels
        zero = tf.zeros_like(labels)
        losses = {name: zero for name in ("light_bce", "booster_bce", *self.loss_names)}
        if inputs.light is not None:
            losses["light_bce"] = tf.nn.sigmoid_cross_entropy_with_logits(
                labels, inputs.light.logits
            )
        for booster in inputs.boosters:
            losses["booster_bce"] += tf.nn.sigmoid_cross_entropy_with_logits(labels, booster.logits)
        weight, label_weight = tf.constant(0.0), tf.constant(1.0)
        distill_total = zero
        if inputs.teacher is not None and inputs.light is not None:
            teacher = inputs.teacher
            if self.config.gradient_block:
                # The one place the gradient block lives: booster-only weights learn from
                # labels alone, whatever the method.
                teacher = tf.nest.map_structure(tf.stop_gradient, teacher)
            share = schedule_fraction(inputs.step, self.config) * inputs.teacher_scale
            batch = MethodInputs(labels, teacher, inputs.light, inputs.groups, inputs.step)
            for method in self.methods:
                losses[method.method_name] = method(batch)
                distill_total += method.config.weight * share * losses[method.method_name]
            weight = share * sum(m.config.weight for m in self.methods)
            label_weight = light_label_weight(weight, self.config)
        losses["total"] = label_weight * losses["light_bce"] + losses["booster_bce"] + distill_total
        return losses, weight
