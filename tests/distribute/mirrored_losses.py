"""Run as a script: per-step training losses on one device and on 2 mirrored CPU devices.

Logical devices must be configured before TensorFlow initialises them, hence a subprocess.
Prints {"one": [...], "two": [...]} as JSON.
"""

import json  # noqa: I001  (rocketctr first: it sets TF_USE_LEGACY_KERAS)
import tempfile

import rocketctr  # noqa: F401
import tensorflow as tf
import tf_keras

cpus = tf.config.list_physical_devices("CPU")
tf.config.set_logical_device_configuration(cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2)

from rocketctr.config.core import Config  # noqa: E402
from rocketctr.features.schema import load_schema  # noqa: E402
from rocketctr.model.cotrain import build_model  # noqa: E402
from tests.helpers import random_features, random_labels  # noqa: E402

SCHEMA = load_schema("criteo")
CONFIG = Config.from_dict(
    {
        "model": {
            "embedding_dim": 4,
            "booster": {"name": "dcn", "hidden_units": [8], "num_cross_layers": 1},
            "light": {"name": "mlp", "hidden_units": [4]},
        },
        "distill": {"methods": {"kd": {"weight": 0.5}}},
    }
)
BATCHES = [(random_features(SCHEMA, 64, seed=i), random_labels(64, seed=i)) for i in range(6)]


def losses_under(strategy: tf.distribute.Strategy, freeze: bool = False) -> list[float]:
    """Per-step losses over BATCHES; with `freeze`, the booster is frozen at its weights
    after 3 steps (distill.teacher_patience's switch) and 3 more steps train."""
    tf_keras.utils.set_random_seed(0)
    with strategy.scope():
        model = build_model(CONFIG, SCHEMA)
    losses = []

    class Record(tf_keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            losses.append(float(logs["loss"]))

    signature = (
        {k: tf.TensorSpec([None], v.dtype) for k, v in BATCHES[0][0].items()},
        tf.TensorSpec([None], tf.float32),
    )

    def fit(batches):
        data = tf.data.Dataset.from_generator(lambda: iter(batches), output_signature=signature)
        model.fit(data, epochs=1, verbose=0, callbacks=[Record()])

    if not freeze:
        fit(BATCHES)
        return losses
    fit(BATCHES[:3])
    with tempfile.TemporaryDirectory() as tmp:
        path = model.booster_checkpoint().write(f"{tmp}/booster")
        model.freeze_booster(path)
    fit(BATCHES[3:])
    return losses


if __name__ == "__main__":
    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    one = losses_under(tf.distribute.get_strategy())
    two = losses_under(mirrored)
    one_frozen = losses_under(tf.distribute.get_strategy(), freeze=True)
    two_frozen = losses_under(mirrored, freeze=True)
    print(json.dumps({"one": one, "two": two, "one_frozen": one_frozen, "two_frozen": two_frozen}))
