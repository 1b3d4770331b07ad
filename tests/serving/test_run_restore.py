"""`export_from_model_dir`: a training run's latest checkpoint, exported; a dir without a
checkpoint, a booster_only run or no run at all refused."""

from __future__ import annotations

import json

import rocketctr  # noqa: F401  (selects Keras 2 before TensorFlow loads)

# isort: split
import numpy as np
import pytest
import tensorflow as tf

from rocketctr import serving
from rocketctr.config.core import save_config
from rocketctr.features.schema import load_schema
from rocketctr.runs.feature_format import record_run_format
from tests.helpers import light_probabilities, random_features, serve, tiny_config, trained_model

SCHEMA = load_schema("criteo")


def test_export_from_model_dir_restores_the_latest_checkpoint(tmp_path, capsys):
    config = tiny_config()
    model = trained_model(config, SCHEMA, steps=3)
    model_dir = tmp_path / "run"
    model_dir.mkdir()
    save_config(config, model_dir / "config.yaml")
    record_run_format(model_dir)  # what `rocketctr train` writes when a run starts
    epoch = tf.Variable(2, dtype=tf.int64)
    manager = tf.train.CheckpointManager(
        tf.train.Checkpoint(model=model, epoch=epoch), str(model_dir / "checkpoints"), 3
    )
    manager.save(checkpoint_number=3)
    (model_dir / "metrics.json").write_text(json.dumps({"light": {"auc": 0.7}}))

    path = serving.export_from_model_dir(model_dir, tmp_path / "serving")
    assert path == tmp_path / "serving" / "1"
    # This run recorded no eval data: synthetic rows, no warmup, and it says so.
    assert "recorded no eval data: checking the export on synthetic rows" in capsys.readouterr().out
    assert serving.read_export_info(path)["verification"]["parity_rows"] == 256
    assert not (path / "assets.extra" / "tf_serving_warmup_requests").exists()
    features = random_features(SCHEMA, 50, seed=9)
    np.testing.assert_allclose(
        serve(path, features)["probabilities"],
        light_probabilities(model, features),
        rtol=0,
        atol=1e-5,
    )
    meta = serving.read_export_info(path)["metadata"]
    assert meta["metrics"] == {"light": {"auc": 0.7}}
    assert (meta["global_step"], meta["completed_epochs"]) == (3, 2)


def test_export_from_model_dir_refuses_missing_checkpoint_and_booster_only(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    save_config(tiny_config(), run / "config.yaml")
    with pytest.raises(serving.ExportError, match="No checkpoint in"):
        serving.export_from_model_dir(run, tmp_path / "serving")
    save_config(tiny_config().replace({"distill.mode": "booster_only"}), run / "config.yaml")
    with pytest.raises(serving.ExportError, match="booster_only"):
        serving.export_from_model_dir(run, tmp_path / "serving")
    with pytest.raises(serving.ExportError, match="not a training run"):
        serving.export_from_model_dir(tmp_path / "nothing", tmp_path / "serving")
    assert not (tmp_path / "serving").exists() or not list((tmp_path / "serving").iterdir())
