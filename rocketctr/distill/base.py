"""Distillation methods: how the light net learns from its teacher, one file each.

A method is a Keras layer registered by name (`class X(Method, name="x")`) with a frozen
dataclass `Config` of its knobs, one of them `weight`. The config's `distill.methods` maps
method names to their knobs; several methods combine, each with its own weight. Being a
layer, a method with weights (the `hidden` hint's regressor) is tracked by the model: it
trains with the dense optimizer, is checkpointed and restored, and never reaches an export
(its variables are named `distiller/...`, a role the export check refuses).

A method sees the teacher's outputs already behind the gradient block: the `Distiller`
(distill/distiller.py) applies it once, for every method.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar, NamedTuple

import tensorflow as tf
import tf_keras

from rocketctr.config.core import ConfigError, DistillConfig, section_from_dict
from rocketctr.towers.base import TowerOutput

_REGISTRY: dict[str, type[Method]] = {}


class MethodInputs(NamedTuple):
    """What a method receives for one batch (a layer's input: a nest of tensors).

    Attributes:
        labels: float 0/1 [B].
        teacher: the teacher's output (behind the gradient block when it is on).
        light: the light net's output.
        groups: [B] ids whose equal values form a group (the schema's request id, else its
            user id); all equal (one group) when the schema names none, which no method
            reads then.
        step: the 0-based global step.
    """

    labels: tf.Tensor
    teacher: TowerOutput
    light: TowerOutput
    groups: tf.Tensor
    step: tf.Tensor


@dataclasses.dataclass(frozen=True)
class MethodContext:
    """What a method may check its knobs against when it is built.

    Attributes:
        light_hidden: the light tower's `hidden_names`.
        teacher_hidden: the teacher's `hidden_names` (none for codistillation peers).
        group_column: the column that forms groups (the schema's request id, else its user
            id), or None.
    """

    light_hidden: tuple[str, ...] = ()
    teacher_hidden: tuple[str, ...] = ()
    group_column: str | None = None


class Method(tf_keras.layers.Layer):
    """Subclass: set `Config`, override `per_example`, register with a name.

    Args:
        config: the method's knobs (an instance of its `Config`).
        context: what the towers offer.
    """

    Config: ClassVar[type]
    needs_groups: ClassVar[bool] = False  # it reads MethodInputs.groups

    def __init_subclass__(cls, name: str | None = None, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if name is not None:
            cls.method_name = name
            _REGISTRY[name] = cls

    def __init__(self, config: Any, context: MethodContext, **kwargs) -> None:
        super().__init__(name=self.method_name, **kwargs)
        self.config = config
        self.context = context
        if self.needs_groups and context.group_column is None:
            raise ConfigError(
                f"distill.methods.{self.method_name} ranks rows within a request or a user: "
                "the schema needs a request_id or user_id column."
            )

    def call(self, inputs: MethodInputs) -> tf.Tensor:
        return self.per_example(inputs)

    def per_example(self, inputs: MethodInputs) -> tf.Tensor:
        """Returns the method's loss of each example [B], unweighted."""
        raise NotImplementedError


def method_names() -> list[str]:
    return sorted(_REGISTRY)


def parse_methods(config: DistillConfig) -> dict[str, Any]:
    """{method name: its Config} of `distill.methods`, knobs checked.

    Raises:
        ConfigError: an unknown method or knob, a knob of the wrong type, or a weight that
            is not finite and >= 0.
    """
    if not config.methods:
        raise ConfigError(
            "distill.methods is empty. Name at least one method (e.g. {kd: {weight: 1}}), or "
            "train with distill.mode light_only for no distillation."
        )
    parsed = {}
    for name, knobs in config.methods.items():
        if name not in _REGISTRY:
            raise ConfigError(
                f"Unknown distillation method {name!r} in distill.methods. Known: {method_names()}"
            )
        parsed[name] = section_from_dict(_REGISTRY[name].Config, knobs, f"distill.methods.{name}")
        weight = parsed[name].weight
        if not (math.isfinite(weight) and weight >= 0):
            raise ConfigError(
                f"Config key distill.methods.{name}.weight must be finite and >= 0. "
                f"Received: {weight!r}"
            )
    return parsed


def resolve_methods(config: DistillConfig) -> DistillConfig:
    """`config` with each method's knobs checked and complete (defaults filled in), as a run
    records them: two spellings of one config compare equal."""
    methods = {name: dataclasses.asdict(knobs) for name, knobs in parse_methods(config).items()}
    return dataclasses.replace(config, methods=methods)


def total_weight(config: DistillConfig) -> float:
    """Σ of the methods' weights: λ after warm-up and ramp."""
    return sum(m.weight for m in parse_methods(config).values())


def build_methods(config: DistillConfig, context: MethodContext) -> list[Method]:
    """The methods of `distill.methods` with a weight > 0, in config order."""
    return [
        _REGISTRY[name](knobs, context)
        for name, knobs in parse_methods(config).items()
        if knobs.weight > 0
    ]


def check_hidden_name(method: str, knob: str, name: str, offered: tuple[str, ...], side: str):
    """Refuses a hidden representation `name` the `side` tower does not offer."""
    if name not in offered:
        raise ConfigError(
            f"distill.methods.{method}.{knob} is {name!r}, but the {side} offers "
            + (
                str(list(offered))
                if offered
                else "no hidden representation (a mixture of several teachers, "
                "model.boosters or a list of distill.teacher_dir, has none)"
            )
            + "."
        )


def check_positive(method: str, knob: str, value: float) -> None:
    """Refuses a knob that must be finite and > 0."""
    if not (math.isfinite(value) and value > 0):
        raise ConfigError(
            f"Config key distill.methods.{method}.{knob} must be finite and > 0. "
            f"Received: {value!r}"
        )
