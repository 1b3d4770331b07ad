"""A run dir records its hashing version; one trained with another hashing is refused."""

from __future__ import annotations

import json

import rocketctr  # noqa: F401  (selects Keras 2 before TensorFlow loads)

# isort: split
import pytest
import tensorflow as tf

from rocketctr import serving
from rocketctr.config.core import ConfigError, save_config
from rocketctr.features.processor import HASHING_VERSION
from rocketctr.features.schema import load_schema
from rocketctr.model.cotrain import build_model
from rocketctr.runs import feature_format
from rocketctr.runs.rundir import restore_run
from rocketctr.training.resume import prepare_model_dir
from tests.helpers import tiny_config


def _run_dir(path, schema: str = "criteo", record: bool = False):
    """A model dir as `rocketctr train` leaves it: config.yaml and a checkpoint."""
    config = tiny_config({"embedding_dim": 2}, schema=schema)
    path.mkdir()
    save_config(config, path / "config.yaml")
    model = build_model(config, load_schema(schema))
    epoch = tf.Variable(1, dtype=tf.int64)
    tf.train.CheckpointManager(
        tf.train.Checkpoint(model=model, epoch=epoch), str(path / "checkpoints"), 1
    ).save(checkpoint_number=1)
    if record:
        feature_format.record_run_format(path)
    return config


def test_a_run_from_before_the_record_is_refused_everywhere(tmp_path):
    run = tmp_path / "old"
    config = _run_dir(run)  # no feature_format.json: trained with hashing version 1
    assert feature_format.run_hashing_version(run) == 1
    why = "has no feature_format.json, so it was trained with hashing version 1"
    with pytest.raises(serving.ExportError, match=why) as refused:
        serving.export_from_model_dir(run, tmp_path / "serving")
    message = str(refused.value)
    assert f"version {HASHING_VERSION}" in message and "score wrongly" in message
    assert "Retrain it with this version in a new --model_dir" in message
    assert "C1, C2" in message  # the hashed features it names
    assert not (tmp_path / "serving").exists() or not list((tmp_path / "serving").iterdir())
    with pytest.raises(ValueError, match=why):
        restore_run(run)
    # Resuming it with `rocketctr train` is refused as well, and records nothing.
    with pytest.raises(ConfigError, match=why):
        prepare_model_dir(config, run)
    assert not (run / feature_format.FEATURE_FORMAT_FILE).exists()


def test_a_run_recording_another_version_is_refused(tmp_path):
    run = tmp_path / "other"
    _run_dir(run, record=True)
    path = run / feature_format.FEATURE_FORMAT_FILE
    path.write_text(json.dumps({"hashing_version": HASHING_VERSION + 1}))
    with pytest.raises(ValueError, match=f"records hashing version {HASHING_VERSION + 1}"):
        restore_run(run)


def test_a_new_run_records_the_version_and_restores(tmp_path):
    run = tmp_path / "new"
    config = tiny_config({"embedding_dim": 2}, schema="criteo")
    prepare_model_dir(config, run)  # a fresh dir: nothing to refuse
    recorded = json.loads((run / feature_format.FEATURE_FORMAT_FILE).read_text())
    assert recorded == feature_format.feature_format()
    assert recorded["hashing_version"] == HASHING_VERSION == 2
    prepare_model_dir(config, run)  # resuming the same run is fine
    _run_dir(tmp_path / "recorded", record=True)
    model, *_ = restore_run(tmp_path / "recorded")
    assert model.has_light


def test_an_old_run_without_hashed_features_is_still_readable(tmp_path):
    # Frappe's fields are integer ids: every version maps them to the same rows.
    run = tmp_path / "frappe"
    config = _run_dir(run, schema="frappe")
    model, *_ = restore_run(run)
    assert model.schema.name == "frappe"
    prepare_model_dir(config, run)  # resuming records the current version
    assert feature_format.run_hashing_version(run) == HASHING_VERSION


def test_the_export_records_the_hashing_version(tmp_path):
    run = tmp_path / "run"
    _run_dir(run, record=True)
    path = serving.export_from_model_dir(run, tmp_path / "serving")
    info = serving.read_export_info(path)
    assert info["feature_format"]["hashing_version"] == HASHING_VERSION
    assert "to_hash_bucket_fast" in info["feature_format"]["hashing"]
