"""rocketctr: co-train a deep booster and a cheap light CTR net; serve only the light net."""

import importlib
import importlib.abc
import importlib.util
import os
import sys
import warnings

# TFRS needs Keras 2 (tf_keras). This must be set before anything imports tf.keras.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
if os.environ["TF_USE_LEGACY_KERAS"] not in ("1", "true", "True"):
    raise ImportError(
        "rocketctr needs Keras 2 (tf_keras): TF_USE_LEGACY_KERAS must be 1. "
        f"Received: TF_USE_LEGACY_KERAS={os.environ['TF_USE_LEGACY_KERAS']!r}"
    )

__version__ = "0.1.0"

# Modules that moved into the package's folders. Their old paths, which pipelines and scripts
# may hold (a TFX Trainer's `rocketctr.tfx_trainer.run_fn`), import the module at its new
# path, with a DeprecationWarning naming it.
MOVED_MODULES = {
    "rocketctr.catalogue": "rocketctr.serving.catalogue",
    "rocketctr.distribute": "rocketctr.training.distribute",
    "rocketctr.distill.codistill": "rocketctr.training.codistill",
    "rocketctr.distill.two_stage": "rocketctr.training.two_stage",
    "rocketctr.evaluation": "rocketctr.scoring.evaluation",
    "rocketctr.feature_format": "rocketctr.runs.feature_format",
    "rocketctr.feature_stats": "rocketctr.features.statistics",
    "rocketctr.file_layout": "rocketctr.features.file_layout",
    "rocketctr.frontier": "rocketctr.scoring.frontier",
    "rocketctr.health": "rocketctr.training.health",
    "rocketctr.layers.features": "rocketctr.features.processor",
    "rocketctr.metrics": "rocketctr.scoring.metrics",
    "rocketctr.predict": "rocketctr.scoring.predict",
    "rocketctr.report": "rocketctr.scoring.report",
    "rocketctr.resume": "rocketctr.training.resume",
    "rocketctr.rundir": "rocketctr.runs.rundir",
    "rocketctr.schema": "rocketctr.features.schema",
    "rocketctr.selection": "rocketctr.training.selection",
    "rocketctr.tfx_trainer": "rocketctr.tfx.trainer",
    "rocketctr.train": "rocketctr.training.train",
    "rocketctr.yaml_files": "rocketctr.config.yaml_files",
}


class _MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports an old module path (MOVED_MODULES) as the module at its new path."""

    def find_spec(self, name, path=None, target=None):
        return importlib.util.spec_from_loader(name, self) if name in MOVED_MODULES else None

    def create_module(self, spec):
        new = MOVED_MODULES[spec.name]
        warnings.warn(f"{spec.name} moved to {new}", DeprecationWarning, stacklevel=2)
        return importlib.import_module(new)

    def exec_module(self, module):
        pass  # the module at the new path is already executed


if not any(isinstance(f, _MovedModules) for f in sys.meta_path):
    sys.meta_path.append(_MovedModules())
