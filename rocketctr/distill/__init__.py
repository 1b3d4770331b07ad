"""Distillation methods. Importing this package registers every hint."""

from rocketctr.distill import kd, rocket  # noqa: F401  (registration)
from rocketctr.distill.base import Hint, build_hint, hint_names
from rocketctr.distill.distiller import Distiller
from rocketctr.distill.pfd import HINT_FORMS, light_label_weight
from rocketctr.distill.schedule import hint_weight, validate_schedule

__all__ = [
    "HINT_FORMS",
    "Distiller",
    "Hint",
    "build_hint",
    "hint_names",
    "hint_weight",
    "light_label_weight",
    "validate_schedule",
]
