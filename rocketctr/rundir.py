"""The layout of a training run's model dir, and restoring a model from it.

Kept apart from `rocketctr.train` (which pulls in the data readers) so that export and the
two-stage teacher can read a run without it.
"""

from __future__ import annotations

from pathlib import Path

import tensorflow as tf

from rocketctr.config import Config, load_config
from rocketctr.feature_format import check_run_format
from rocketctr.model import CoTrainModel, build_model
from rocketctr.schema import load_schema

CONFIG_FILE = "config.yaml"
METRICS_FILE = "metrics.json"
HISTORY_FILE = "history.json"  # per-epoch training and validation metrics of both towers
CHECKPOINT_DIR = "checkpoints"
BACKUP_DIR = "backup"


def restore_run(
    model_dir: str | Path, error: type[Exception] = ValueError
) -> tuple[CoTrainModel, Config, str, int]:
    """Builds a run's model from its config and restores its latest checkpoint, all of it.

    Args:
        model_dir: a `rocketctr train` model dir.
        error: the exception raised when the dir holds no config or no checkpoint.

    Returns:
        (model, config, checkpoint path, completed epochs).
    """
    model_dir = Path(model_dir)
    config_path = model_dir / CONFIG_FILE
    if not config_path.exists():
        raise error(f"{model_dir} is not a training run: {config_path} does not exist.")
    config = load_config(str(config_path))
    check_run_format(model_dir, config.schema, error)  # refuses an old hashing
    checkpoint_dir = model_dir / CHECKPOINT_DIR
    latest = tf.train.latest_checkpoint(str(checkpoint_dir))
    if latest is None:
        raise error(f"No checkpoint in {checkpoint_dir}; the run has not trained yet.")
    model = build_model(config, load_schema(config.schema))
    epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="completed_epochs")
    status = tf.train.Checkpoint(model=model, epoch=epoch).restore(latest)
    # Every model variable must come from the checkpoint: never use initial weights.
    status.assert_existing_objects_matched()
    return model, config, latest, int(epoch.numpy())
