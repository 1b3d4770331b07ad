"""Model selection on the light net's validation metric, and learning-rate decay on plateau."""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from rocketctr.config import Config, ConfigError
from rocketctr.model import build_model
from rocketctr.schema import load_schema
from rocketctr.train import (
    _LearningRatePlateau,
    _record_selection,
    best_epoch,
    selection_monitor,
)

TINY = {
    "embedding_dim": 4,
    "booster": {"name": "dcn", "hidden_units": [8], "num_cross_layers": 1},
    "light": {"name": "mlp", "hidden_units": [4]},
}


def test_selection_monitor_follows_the_shipped_tower():
    assert selection_monitor(Config()) == ("val_light_auc", "max")
    light_bce = Config().replace({"train.selection_metric": "light_bce"})
    assert selection_monitor(light_bce) == ("val_light_bce", "min")
    booster_only = Config().replace({"distill.mode": "booster_only"})
    assert selection_monitor(booster_only) == ("val_booster_auc", "max")
    with pytest.raises(ConfigError, match="Received: 'auc'"):
        selection_monitor(Config().replace({"train.selection_metric": "auc"}))


def test_learning_rates_of_both_optimizers_decay_after_patience():
    model = build_model(Config.from_dict({"model": TINY}), load_schema("criteo"))
    plateau = _LearningRatePlateau("val_light_auc", "max", factor=0.5, patience=2)
    plateau.set_model(model)
    lrs = []
    for auc in [0.70, 0.71, 0.705, 0.709, 0.70, 0.72, 0.71]:
        plateau.on_epoch_end(0, {"val_light_auc": auc})
        lrs.append(
            (
                float(model.dense_optimizer.learning_rate),
                float(model.embedding_optimizer.learning_rate),
            )
        )
    dense0, emb0 = 0.001, 0.05
    # No improvement after 0.71 for two epochs (epochs 3, 4) -> halve; 0.72 improves; one
    # more bad epoch is within patience.
    expected = [(dense0, emb0)] * 3 + [(dense0 / 2, emb0 / 2)] * 4
    np.testing.assert_allclose(lrs, expected, rtol=1e-6)


HISTORY = [
    {"epoch": e, "val_light_auc": light, "val_booster_auc": booster}
    for e, light, booster in [(1, 0.70, 0.75), (2, 0.72, 0.74), (3, 0.71, 0.73), (4, 0.70, 0.72)]
]


def test_best_epoch_of_either_tower():
    assert best_epoch(HISTORY, "val_light_auc")["epoch"] == 2
    assert best_epoch(HISTORY, "val_booster_auc")["epoch"] == 1
    assert best_epoch(HISTORY, "val_booster_auc", mode="min")["epoch"] == 4
    assert best_epoch(HISTORY, "val_light_bce") is None


def test_selected_weights_are_checkpointed_and_early_stop_finishes_the_run(tmp_path, capsys):
    model = build_model(Config.from_dict({"model": TINY}), load_schema("criteo"))
    epoch = tf.Variable(3, dtype=tf.int64)
    manager = tf.train.CheckpointManager(
        tf.train.Checkpoint(model=model, epoch=epoch), str(tmp_path), max_to_keep=3
    )
    stopper = tf_keras.callbacks.EarlyStopping(
        "val_light_auc", mode="max", restore_best_weights=True
    )
    stopper.set_model(model)
    stopper.best_weights, stopper.best_epoch, stopper.best = model.get_weights(), 1, 0.7
    stopper.stopped_epoch = 3
    assert _record_selection(stopper, HISTORY, manager, epoch, num_epochs=10) == 2
    assert "(val_booster_auc: best 0.7500 at epoch 1)" in capsys.readouterr().out
    assert int(epoch.numpy()) == 10  # a rerun of the same command must not train on
    assert manager.latest_checkpoint is not None

    off = tf_keras.callbacks.EarlyStopping("val_light_auc", restore_best_weights=False)
    assert _record_selection(off, HISTORY, manager, epoch, num_epochs=10) is None
