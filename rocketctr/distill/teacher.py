"""Teachers: what the light net learns from, one interface for the three kinds.

- `BoosterTeacher`: the co-trained booster (co_train mode, the default).
- `RunTeacher`: two-stage KD, the booster of a finished run, frozen (training/two_stage.py).
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
    """The co-trained booster: its output in this very forward pass."""

    def __init__(self, hidden_names: tuple[str, ...]) -> None:
        self.hidden_names = tuple(hidden_names)

    def __call__(self, features, towers):
        return towers["booster"], tf.constant(1.0)


class RunTeacher(Teacher):
    """The booster of a finished run, frozen (two-stage KD)."""

    def __init__(self, model) -> None:
        self.model = model
        self.hidden_names = tuple(model.booster.hidden_names)

    def __call__(self, features, towers):
        del towers
        return self.model.tower_outputs(features, training=False)["booster"], tf.constant(1.0)
