"""Model selection on the light net's validation metric, early stopping, learning-rate decay
on plateau, and all three across a resume."""

import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from rocketctr.config.core import Config, ConfigError
from rocketctr.features.schema import load_schema
from rocketctr.model.cotrain import build_model
from rocketctr.runs.selected import best_epoch, selection_monitor
from rocketctr.training.selection import Selection
from tests.helpers import tiny_config


def test_selection_monitor_follows_the_shipped_tower():
    assert selection_monitor(Config()) == ("val_light_auc", "max")
    light_bce = Config().replace({"train.selection_metric": "light_bce"})
    assert selection_monitor(light_bce) == ("val_light_bce", "min")
    booster_only = Config().replace({"distill.mode": "booster_only"})
    assert selection_monitor(booster_only) == ("val_booster_auc", "max")
    with pytest.raises(ConfigError, match="Received: 'auc'"):
        selection_monitor(Config().replace({"train.selection_metric": "auc"}))


HISTORY = [
    {"epoch": e, "val_light_auc": light, "val_booster_auc": booster}
    for e, light, booster in [(1, 0.70, 0.75), (2, 0.72, 0.74), (3, 0.71, 0.73), (4, 0.70, 0.72)]
]


def test_best_epoch_of_either_tower():
    assert best_epoch(HISTORY, "val_light_auc")["epoch"] == 2
    assert best_epoch(HISTORY, "val_booster_auc")["epoch"] == 1
    assert best_epoch(HISTORY, "val_booster_auc", mode="min")["epoch"] == 4
    assert best_epoch(HISTORY, "val_light_bce") is None


def _tiny_model(**train):
    config = tiny_config(train=train)
    return config, build_model(config, load_schema("criteo"))


def _run_epochs(selection, model, aucs, first_epoch=0, num_epochs=10, weights=None):
    """Feeds `aucs` as epochs' validation results; before each, sets the light net's first
    kernel to the epoch number (so which epoch's weights are kept can be read back)."""
    selection.set_model(model)
    selection.set_params({"epochs": num_epochs})
    lrs = []
    for epoch, auc in enumerate(aucs, start=first_epoch):
        if model.stop_training:
            break
        kernel = model.light.trainable_weights[0]
        kernel.assign(tf.fill(kernel.shape, float(epoch + 1)))
        selection.on_epoch_begin(epoch)
        selection.on_epoch_end(epoch, {"loss": 0.5, "val_light_auc": auc})
        lrs.append(
            (
                float(model.dense_optimizer.learning_rate),
                float(model.embedding_optimizer.learning_rate),
            )
        )
    return lrs


def _kept_epoch(model) -> float:
    return float(model.light.trainable_weights[0].numpy().flat[0])


def test_learning_rates_of_both_optimizers_decay_after_patience(tmp_path):
    config, model = _tiny_model(lr_plateau_factor=0.5, lr_plateau_patience=2)
    history = []
    selection = Selection(config, history, tmp_path / "history.json", str(tmp_path / "best"))
    lrs = _run_epochs(selection, model, [0.70, 0.71, 0.705, 0.709, 0.70, 0.72, 0.71])
    dense0, emb0 = 0.001, 0.05
    # No improvement after 0.71 for two epochs (epochs 3, 4) -> halve; 0.72 improves; one
    # more bad epoch is within patience.
    expected = [(dense0, emb0)] * 3 + [(dense0 / 2, emb0 / 2)] * 4
    np.testing.assert_allclose(lrs, expected, rtol=1e-6)
    assert [r["lr_scale"] for r in history] == [1, 1, 1, 0.5, 0.5, 0.5, 0.5]
    assert json.loads((tmp_path / "history.json").read_text()) == history


def test_early_stopping_records_why_training_ended(tmp_path, capsys):
    config, model = _tiny_model(early_stopping_patience=2)
    history = []
    selection = Selection(config, history, tmp_path / "history.json", str(tmp_path / "best"))
    _run_epochs(selection, model, [0.70, 0.72, 0.71, 0.719, 0.73, 0.74])
    assert [r["epoch"] for r in history] == [1, 2, 3, 4]
    assert history[-1]["stop"] == "early_stopping" and selection.stopped_early
    assert (
        "has not improved for 2 epoch(s) since epoch 2: stopping early" in capsys.readouterr().out
    )
    # The best epoch's weights (not the last's) are the run's last checkpoint, and the run
    # is marked finished.
    epoch = tf.Variable(4, dtype=tf.int64)
    manager = tf.train.CheckpointManager(
        tf.train.Checkpoint(model=model, epoch=epoch), str(tmp_path / "ckpt"), max_to_keep=3
    )
    assert selection.finish(model, manager, epoch, num_epochs=10) == 2
    assert _kept_epoch(model) == 2.0 and int(epoch.numpy()) == 10
    assert manager.latest_checkpoint is not None
    out = capsys.readouterr().out
    assert "Selected epoch 2 of 4 by val_light_auc = 0.7200" in out and "WARNING" not in out
    # The final save is said, with its size (on large tables it takes seconds per GiB).
    size = sum(
        f.stat().st_size
        for f in (tmp_path / "ckpt").glob(Path(manager.latest_checkpoint).name + ".*")
    )
    assert (
        "Saved epoch 2's weights as the run's last checkpoint, which export and evaluate "
        f"read ({size / 2**30:.2f} GiB in " in out
    )

    config, model = _tiny_model()  # no patience: runs to num_epochs, says so
    history = []
    selection = Selection(config, history, None, str(tmp_path / "best2"))
    _run_epochs(selection, model, [0.70, 0.72, 0.73], num_epochs=3)
    assert [r.get("stop") for r in history] == [None, None, "num_epochs"]
    assert selection.finish(model, manager, epoch, num_epochs=3) == 3
    assert "val_light_auc was still improving at the last epoch (3)" in capsys.readouterr().out


def test_a_resumed_run_selects_stops_and_decays_as_the_uninterrupted_one(tmp_path):
    aucs = [0.70, 0.74, 0.72, 0.73, 0.71, 0.735, 0.72, 0.75]
    train = {"early_stopping_patience": 3, "lr_plateau_factor": 0.5, "lr_plateau_patience": 1}

    def run(directory, split):
        directory.mkdir()
        config, model = _tiny_model(**train)
        history, best = [], str(directory / "best")
        first = Selection(config, history, directory / "history.json", best)
        lrs = _run_epochs(first, model, aucs[:split])
        # Killed; a new process restores the checkpoint of epoch `split`, whose optimizer
        # state holds the decayed rates, and replays the record.
        config, model = _tiny_model(**train)
        model.dense_optimizer.learning_rate, model.embedding_optimizer.learning_rate = lrs[-1]
        record = json.loads((directory / "history.json").read_text())
        second = Selection(config, record, directory / "history.json", best)
        lrs += _run_epochs(second, model, aucs[split:], first_epoch=split)
        epoch = tf.Variable(len(record), dtype=tf.int64)
        manager = tf.train.CheckpointManager(
            tf.train.Checkpoint(model=model), str(directory / "ckpt"), max_to_keep=1
        )
        return second.finish(model, manager, epoch, 10), _kept_epoch(model), record, lrs

    whole = run(tmp_path / "whole", len(aucs))
    for split in (1, 3, 4):
        resumed = run(tmp_path / f"split{split}", split)
        assert resumed[:2] == whole[:2] == (2, 2.0)  # epoch 2's weights, though restored at 4
        assert [r["epoch"] for r in resumed[2]] == [r["epoch"] for r in whole[2]] == [1, 2, 3, 4, 5]
        assert [r.get("stop") for r in resumed[2]][-1] == "early_stopping"
        assert [r["lr_scale"] for r in resumed[2]] == [r["lr_scale"] for r in whole[2]]
        np.testing.assert_allclose(resumed[3], whole[3], rtol=1e-6)
    # Once training has ended, only the selected epoch's weights are kept.
    assert _indexes(tmp_path / "whole" / "best") == ["ckpt-2.index"]


def _indexes(directory):
    return sorted(p.name for p in directory.iterdir() if p.suffix == ".index")


def test_the_replaced_best_weights_stay_until_the_next_epoch_starts(tmp_path):
    """Epoch 2 replaces epoch 1 as the best. A run killed before epoch 2's checkpoint is
    saved resumes from epoch 1's, which selected epoch 1: its weights must still be there.
    Once epoch 3 starts (epoch 2's checkpoint saved) they go: on a large table each copy
    is the table's bytes."""
    config, model = _tiny_model()
    best = tmp_path / "best"
    selection = Selection(config, [], tmp_path / "history.json", str(best))
    _run_epochs(selection, model, [0.6, 0.7])
    assert _indexes(best) == ["ckpt-1.index", "ckpt-2.index"]
    resumed = Selection(
        config, json.loads((tmp_path / "history.json").read_text())[:1], None, str(best)
    )
    assert resumed.best == 1  # from epoch 1's checkpoint: its selected weights are there
    selection.on_epoch_begin(2)
    assert _indexes(best) == ["ckpt-2.index"]


def test_selection_starts_again_when_the_selected_weights_are_gone(tmp_path, capsys):
    config, model = _tiny_model()
    history = [{"epoch": 1, "val_light_auc": 0.7}, {"epoch": 2, "val_light_auc": 0.6}]
    selection = Selection(config, history, None, str(tmp_path / "best"))
    assert (
        "the weights of epoch 1, selected by val_light_auc, are not in" in capsys.readouterr().out
    )
    _run_epochs(selection, model, [0.65], first_epoch=2)
    assert selection.best == 3


def test_selection_off_keeps_the_last_epoch(tmp_path):
    config, model = _tiny_model(restore_best=False)
    selection = Selection(config, [], None, None)
    _run_epochs(selection, model, [0.72, 0.70], num_epochs=2)
    epoch = tf.Variable(2, dtype=tf.int64)
    manager = tf.train.CheckpointManager(tf.train.Checkpoint(model=model), str(tmp_path), 1)
    assert selection.finish(model, manager, epoch, 2) is None and _kept_epoch(model) == 2.0


def test_a_dead_light_net_stops_the_run_and_the_best_epoch_is_kept(tmp_path, capsys):
    """Validation logits that go constant at epoch 3 stop the run there, without waiting
    for patience; selection keeps epoch 2, the best."""
    config, model = _tiny_model(early_stopping_patience=5)
    history = []
    selection = Selection(config, history, tmp_path / "history.json", str(tmp_path / "best"))
    selection.set_model(model)
    selection.set_params({"epochs": 10})
    for epoch, (auc, std) in enumerate([(0.70, 0.4), (0.72, 0.5), (0.50, 0.0), (0.73, 0.5)]):
        if model.stop_training:
            break
        kernel = model.light.trainable_weights[0]
        kernel.assign(tf.fill(kernel.shape, float(epoch + 1)))
        selection.on_epoch_begin(epoch)
        logs = {"loss": 0.5, "val_light_auc": auc, "val_light_logit_std": std}
        selection.on_epoch_end(epoch, logs)
    assert [r["epoch"] for r in history] == [1, 2, 3]
    assert history[-1]["stop"] == "light_dead" and selection.stopped_early
    assert "after epoch 3 is dead: its validation logits are constant" in capsys.readouterr().out
    epoch = tf.Variable(3, dtype=tf.int64)
    manager = tf.train.CheckpointManager(
        tf.train.Checkpoint(model=model, epoch=epoch), str(tmp_path / "ckpt"), max_to_keep=3
    )
    assert selection.finish(model, manager, epoch, num_epochs=10) == 2
    assert _kept_epoch(model) == 2.0 and int(epoch.numpy()) == 10  # finished: no rerun trains


def test_a_temporary_dir_left_in_best_by_a_dead_writer_is_removed(tmp_path):
    """A kill (or a full disk) during the best/ write leaves `ckpt-N_temp/`: the next
    improvement removes it instead of failing on it for ever."""
    config, model = _tiny_model()
    best = tmp_path / "best"
    (best / "ckpt-1_temp").mkdir(parents=True)
    (best / "ckpt-1_temp" / "part-00000-of-00001.data-00000-of-00001").write_bytes(b"x")
    selection = Selection(config, [], None, str(best))
    _run_epochs(selection, model, [0.70, 0.72])
    assert sorted(p.name for p in best.iterdir() if p.name != "checkpoint") == [
        "ckpt-1.data-00000-of-00001",
        "ckpt-1.index",
        "ckpt-2.data-00000-of-00001",
        "ckpt-2.index",
    ]
