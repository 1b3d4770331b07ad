"""Booster and light towers, registered by name. Importing this package registers them all."""

from rocketctr.towers import dcn, din, fm, mlp, two_tower, xdeepfm  # noqa: F401  (registration)
from rocketctr.towers.base import (
    Tower,
    TowerInputs,
    TowerOutput,
    build_tower,
    tower_names,
    tower_view,
)

__all__ = ["Tower", "TowerInputs", "TowerOutput", "build_tower", "tower_names", "tower_view"]
