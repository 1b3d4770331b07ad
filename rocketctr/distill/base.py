"""Hints: per-example losses that pull the light net towards the booster.

A hint receives the booster's logits already wrapped in `tf.stop_gradient` when gradient
block is on: the `Distiller` (distill/distiller.py) applies the block once, for every method.
"""

from __future__ import annotations

import tensorflow as tf

from rocketctr.config import ConfigError, DistillConfig

_REGISTRY: dict[str, type[Hint]] = {}


class Hint:
    """Subclass, override `per_example`, and register with `class X(Hint, name="x")`."""

    def __init_subclass__(cls, name: str | None = None, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if name is not None:
            _REGISTRY[name] = cls

    def __init__(self, config: DistillConfig) -> None:
        self.config = config

    def per_example(self, booster_logits: tf.Tensor, light_logits: tf.Tensor) -> tf.Tensor:
        """Returns the hint loss of each example.

        Args:
            booster_logits: [B] pre-sigmoid booster scores (the target).
            light_logits: [B] pre-sigmoid light scores.

        Returns:
            [B] non-negative losses.
        """
        raise NotImplementedError


def hint_names() -> list[str]:
    return sorted(_REGISTRY)


def build_hint(config: DistillConfig) -> Hint:
    if config.hint not in _REGISTRY:
        raise ConfigError(f"Unknown hint {config.hint!r}. Known hints: {hint_names()}")
    return _REGISTRY[config.hint](config)
