"""rocketctr: co-train a deep booster and a cheap light CTR net; serve only the light net."""

import os

# TFRS needs Keras 2 (tf_keras). This must be set before anything imports tf.keras.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
if os.environ["TF_USE_LEGACY_KERAS"] not in ("1", "true", "True"):
    raise ImportError(
        "rocketctr needs Keras 2 (tf_keras): TF_USE_LEGACY_KERAS must be 1. "
        f"Received: TF_USE_LEGACY_KERAS={os.environ['TF_USE_LEGACY_KERAS']!r}"
    )

__version__ = "0.1.0"
