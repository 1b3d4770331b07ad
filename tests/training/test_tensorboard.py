"""`BatchTensorBoard` writes what Keras' TensorBoard callback writes, at the same steps."""

import rocketctr  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)

# isort: split
import tensorflow as tf
import tf_keras

from rocketctr.features.schema import load_schema
from rocketctr.model.cotrain import build_model
from rocketctr.training.tensorboard import BatchTensorBoard
from tests.helpers import random_features, random_labels, tiny_config


def _scalars(log_dir) -> dict[str, list[int]]:
    """{tag: steps} of the scalar summaries in a run's train event files."""
    found: dict[str, list[int]] = {}
    for path in tf.io.gfile.glob(f"{log_dir}/train/events.out.tfevents*"):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                found.setdefault(value.tag, []).append(event.step)
    return {tag: sorted(steps) for tag, steps in found.items()}


def test_same_summaries_at_the_same_steps_as_keras_tensorboard(tmp_path):
    schema = load_schema("criteo")
    data = tf.data.Dataset.from_tensors((random_features(schema, 16), random_labels(16)))
    logs = {}
    for name, callback in [
        ("keras", lambda d: tf_keras.callbacks.TensorBoard(d, update_freq=3, write_graph=False)),
        ("rocketctr", lambda d: BatchTensorBoard(d, update_freq=3)),
    ]:
        tf_keras.utils.set_random_seed(0)
        model = build_model(tiny_config(), schema)
        model.compile()
        log_dir = str(tmp_path / name)
        # Keras calls batch hooks only when some callback has them (training has backups).
        batch_hook = tf_keras.callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: None)
        # Two fits, as a resumed run (Keras counts each fit's steps from 0).
        for steps in (7, 5):
            model.fit(data.repeat(steps), verbose=0, callbacks=[callback(log_dir), batch_hook])
        logs[name] = _scalars(log_dir)
    assert logs["rocketctr"] == logs["keras"]
    assert logs["keras"]["batch_loss"] == [3, 3, 6]  # steps 3, 6 of the first fit, 3 of the second
    assert logs["keras"]["epoch_loss"] == [0, 0]
