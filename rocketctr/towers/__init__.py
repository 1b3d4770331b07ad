"""Booster and light towers, registered by name. Importing this package registers them all."""

from rocketctr.towers import dcn, fm, mlp, xdeepfm  # noqa: F401  (registration)
from rocketctr.towers.base import Tower, build_tower, tower_names

__all__ = ["Tower", "build_tower", "tower_names"]
