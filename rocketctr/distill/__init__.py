"""Distillation methods. Importing this package registers every method."""

from rocketctr.distill import hidden, kd, pairwise, rocket, topk  # noqa: F401  (registration)
from rocketctr.distill.base import Method, MethodContext, MethodInputs, method_names
from rocketctr.distill.distiller import Distiller, DistillerInputs
from rocketctr.distill.pfd import HINT_FORMS, light_label_weight
from rocketctr.distill.schedule import hint_weight, validate_schedule

__all__ = [
    "HINT_FORMS",
    "Distiller",
    "DistillerInputs",
    "Method",
    "MethodContext",
    "MethodInputs",
    "hint_weight",
    "light_label_weight",
    "method_names",
    "validate_schedule",
]
