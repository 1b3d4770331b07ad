"""Teachers: what the light net learns from, one interface for the three kinds.

- `BoosterTeacher`: the co-trained booster (co_train mode, the default).
- `RunTeacher`: two-stage KD, the booster of a finished run (or of several), frozen
  (training/two_stage.py).
- Codistillation peers (training/codistill.py, `PeerTeacher`).

A teacher is handed to the model when the model is built (`build_model(teacher=...)`). It
is a plain object, not a layer, so nothing of it is tracked by the student: its variables
are never in the student's checkpoint or export.
"""

from __future__ import annotations

import tensorflow as tf

from rocketctr.towers.base import TowerOutput


class Teacher:
    """Gives the distillation target of a batch.

    Attributes:
        hidden_names: the hidden representations its outputs carry (see `TowerOutput`).
    """

    hidden_names: tuple[str, ...] = ()

    def __call__(
        self, features: dict[str, tf.Tensor], towers: dict[str, TowerOutput]
    ) -> tuple[TowerOutput, tf.Tensor]:
        """The teacher's output for the batch and a scale in [0, 1] for the methods' weights.

        Args:
            features: the batch's raw columns.
            towers: the student model's own tower outputs of this batch, by tower name.
        """
        raise NotImplementedError


class BoosterTeacher(Teacher):
    """The co-trained booster (or an ensemble's mixture, rocketctr/model/ensemble.py): its
    output in this very forward pass."""

    def __init__(self, hidden_names: tuple[str, ...]) -> None:
        self.hidden_names = tuple(hidden_names)

    def __call__(self, features, towers):
        return towers["booster"], tf.constant(1.0)


class RunTeacher(Teacher):
    """The booster of a finished run, frozen (two-stage KD); with several runs, the mean of
    their boosters' logits (and no hidden representation)."""

    def __init__(self, *models) -> None:
        self.models = models
        self.hidden_names = tuple(models[0].booster.hidden_names) if len(models) == 1 else ()

    def __call__(self, features, towers):
        del towers
        outputs = [m.tower_outputs(features, training=False)["booster"] for m in self.models]
        if len(outputs) == 1:
            return outputs[0], tf.constant(1.0)
        logits = tf.reduce_mean(tf.stack([o.logits for o in outputs], axis=1), axis=1)
        return TowerOutput(logits, {}), tf.constant(1.0)
