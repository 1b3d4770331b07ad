"""Training health: the divergence guard, the logit spread, a dead light net."""

from __future__ import annotations

import json
import math

import rocketctr  # noqa: F401  (selects Keras 2 before TensorFlow loads)

# isort: split
import numpy as np
import pytest
import tensorflow as tf

from rocketctr.config.core import Config
from rocketctr.model.cotrain import LogitSpread
from rocketctr.training import health
from rocketctr.training.health import (
    DivergenceGuard,
    TrainingDiverged,
    check_state,
    light_health,
)

TINY = {
    "model": {
        "embedding_dim": 4,
        "booster": {"name": "dcn", "hidden_units": [8], "num_cross_layers": 1},
        "light": {"name": "mlp", "hidden_units": [4]},
    },
    "train": {"batch_size": 256, "light_optimizer": {"name": "adam", "learning_rate": 0.1}},
}


def test_logit_spread_is_the_standard_deviation_over_batches():
    spread = LogitSpread("s")
    spread.update_state(tf.constant([1.0, 3.0]))
    spread.update_state(tf.constant([5.0, 7.0]))
    assert float(spread.result()) == pytest.approx(math.sqrt(5.0))  # std of 1, 3, 5, 7
    spread.reset_state()
    spread.update_state(tf.fill([50_000], -3.123456))  # a dead net's output
    assert float(spread.result()) <= health.DEAD_LOGIT_STD


def test_light_health_flags_a_dead_net_and_one_at_chance():
    config = Config.from_dict(TINY)
    warning, dead = light_health(
        config, {"epoch": 2, "val_light_auc": 0.5, "val_light_logit_std": 0.0}
    )
    assert dead
    assert warning.startswith(
        "WARNING: The light net (mlp [4]; train.light_optimizer: adam 0.1) after epoch 2 is dead"
    )
    assert "the run stops now" in warning and "\n" not in warning
    warning, dead = light_health(
        config, {"epoch": 1, "val_light_auc": 0.505, "val_light_logit_std": 0.2}
    )
    assert not dead and "no better than chance: validation AUC 0.5050" in warning
    assert "training goes on" in warning
    assert light_health(config, {"epoch": 1, "val_light_auc": 0.7, "val_light_logit_std": 0.2}) == (
        None,
        False,
    )
    assert light_health(config, {"epoch": 1}) == (None, False)  # not validated


class _Model:
    """What the guard reads of a model: its step, config, weights and optimizers."""

    def __init__(self, weights):
        self.global_step = tf.Variable(7, dtype=tf.int64)
        self.rocket_config = Config()
        self.weights = weights
        self.all_optimizers = []


@pytest.mark.parametrize(
    "name,value",
    [("loss", math.nan), ("loss", math.inf), ("light_bce", 6.8e20), ("booster_bce", math.nan)],
)
def test_the_guard_stops_at_a_non_finite_loss_or_a_saturated_tower(name, value):
    guard = DivergenceGuard()
    guard.set_model(_Model([]))
    logs = {
        "loss": tf.constant(0.7),
        "light_bce": tf.constant(0.5),
        "booster_bce": tf.constant(0.4),
    }
    guard.on_train_batch_end(0, logs)  # healthy: nothing happens
    logs[name] = tf.constant(value)
    with pytest.raises(TrainingDiverged, match="Training diverged at global step 7: ") as stopped:
        guard.on_train_batch_end(1, logs)
    assert "train.dense_optimizer adam 0.001" in str(stopped.value)
    assert DivergenceGuard(per_step=False).on_train_batch_end(1, logs) is None


def test_a_large_distillation_loss_alone_is_not_divergence():
    guard = DivergenceGuard()
    guard.set_model(_Model([]))
    guard.on_train_batch_end(0, {"loss": tf.constant(5e3), "light_bce": tf.constant(0.6)})


def test_no_state_with_a_non_finite_weight_is_saved():
    good, bad = (
        tf.Variable([1.0, 2.0], name="light/w"),
        tf.Variable([1.0, math.inf], name="booster/k"),
    )
    check_state(_Model([good, tf.Variable(3, name="step")]), "a checkpoint")
    with pytest.raises(
        TrainingDiverged,
        match=r"booster/k:0 hold non-finite values, so a "
        r"checkpoint was not written",
    ):
        check_state(_Model([good, bad]), "a checkpoint")


def test_a_dead_light_net_is_flagged_stops_the_run_and_is_not_exported(
    data, tmp_path, monkeypatch, capsys
):
    """A light net whose output is constant (its logits times 0: what dead ReLUs give):
    the run warns and stops after its first epoch, and the export gate refuses it."""
    from rocketctr import serving
    from rocketctr.towers.mlp import MLPTower
    from rocketctr.training import train as train_module

    call = MLPTower.call

    def dead_call(self, embeddings, dense, training=None):
        output = call(self, embeddings, dense, training=training)
        return output._replace(logits=output.logits * 0.0)

    monkeypatch.setattr(MLPTower, "call", dead_call)
    config = Config.from_dict({**TINY, "train": {**TINY["train"], "num_epochs": 5}})
    result = train_module.train(config, [str(data[0])], [str(data[1])], tmp_path / "run", verbose=0)
    out = capsys.readouterr().out
    assert "is dead: its validation logits are constant (std 0), AUC 0.5000" in out
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert [r["epoch"] for r in history] == [1] and history[0]["stop"] == "light_dead"
    assert history[0]["val_light_logit_std"] == 0.0
    with pytest.raises(
        serving.GateRefused,
        match=r"it predicts the same probability \(0.5000\) "
        r"for all 1,000 eval rows: a dead net",
    ):
        train_module.export_trained(result, [str(data[1])], tmp_path / "export")
    assert not (tmp_path / "export").exists()
    # The same command again finds the run finished (it stopped), and does not train on.
    again = train_module.train(config, [str(data[0])], [str(data[1])], tmp_path / "run", verbose=0)
    assert again.initial_epoch == 5
    version = train_module.export_trained(again, [str(data[1])], tmp_path / "export", force=True)
    assert serving.read_export_info(version)["gate"]["verdict"] == "forced"
    assert np.isfinite(serving.read_export_info(version)["gate"]["probability_spread"])
