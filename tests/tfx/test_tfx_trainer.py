"""rocketctr.tfx.trainer's pieces that need no TFX install: config, schema, file copying.

The whole TFX pipeline runs in test_tfx_pipeline.py (under .ci/tfx).
"""

from __future__ import annotations

from types import SimpleNamespace

import rocketctr  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)

# isort: split
import pytest

from rocketctr.config.core import ConfigError, load_config
from rocketctr.features.schema import parse_schema
from rocketctr.files import copy_tree
from rocketctr.tfx import schemas as tfx_schemas
from rocketctr.tfx import trainer as tfx_trainer


def _tfmd(**features: int):
    """A stand-in for a TFMD Schema proto: .feature items with .name and .type."""
    return SimpleNamespace(feature=[SimpleNamespace(name=n, type=t) for n, t in features.items()])


def test_train_steps_become_one_epoch_of_that_many_steps():
    config = tfx_trainer.resolve_config(
        {"config": "criteo", "overrides": {"train.batch_size": 64}}, "criteo_tfx", 123
    )
    assert config.schema == "criteo_tfx"
    assert (config.train.steps_per_epoch, config.train.num_epochs) == (123, 1)
    assert config.train.batch_size == 64


def test_without_train_steps_the_config_epochs_stand():
    config = tfx_trainer.resolve_config({"config": "criteo"}, "criteo_tfx", None)
    preset = load_config("criteo").train
    assert preset.num_epochs == 30 and preset.steps_per_epoch is None
    assert (config.train.steps_per_epoch, config.train.num_epochs) == (None, 30)
    assert config.train.early_stopping_patience == preset.early_stopping_patience == 2


def test_unknown_override_is_refused_by_name():
    with pytest.raises(ConfigError, match="train.batch_sise"):
        tfx_trainer.resolve_config({"overrides": {"train.batch_sise": 1}}, "criteo_tfx", None)


def test_schema_must_read_tfrecords(tmp_path):
    assert tfx_schemas.resolve_schema({"schema": "criteo_tfx"}, None, tmp_path) == "criteo_tfx"
    with pytest.raises(ConfigError, match="format 'tsv'.*tfrecord"):
        tfx_schemas.resolve_schema({"schema": "criteo"}, None, tmp_path)
    with pytest.raises(ConfigError, match="No feature layout"):
        tfx_schemas.resolve_schema({}, None, tmp_path)


def test_schema_from_tfmd_types():
    # TFMD types: BYTES=1, INT=2, FLOAT=3.
    tfmd = _tfmd(label=2, count=2, price=3, city=1, user=2)
    data = tfx_schemas.schema_from_tfmd(tfmd, "label", hash_buckets=50, dense=["count"])
    schema = parse_schema(data)
    assert schema.format == "tfrecord" and schema.label == "label"
    assert [f.name for f in schema.dense] == ["count", "price"]
    assert [(f.name, f.hash_buckets) for f in schema.categorical] == [("city", 50), ("user", 50)]
    with pytest.raises(ConfigError, match="'click' is not a feature"):
        tfx_schemas.schema_from_tfmd(tfmd, "click")
    with pytest.raises(ConfigError, match="not numeric"):
        tfx_schemas.schema_from_tfmd(tfmd, "label", dense=["city"])


def test_derived_schema_is_written_to_the_run_dir(tmp_path):
    ref = tfx_schemas.resolve_schema({"label": "label"}, _tfmd(label=2, city=1), tmp_path)
    assert ref == str((tmp_path / tfx_schemas.DERIVED_SCHEMA_FILE).resolve())
    with pytest.raises(ConfigError, match="custom_config\\['label'\\]"):
        tfx_schemas.resolve_schema({}, _tfmd(label=2, city=1), tmp_path)


def test_copy_tree_copies_nested_files(tmp_path):
    source = tmp_path / "src"
    (source / "variables").mkdir(parents=True)
    (source / "saved_model.pb").write_bytes(b"pb")
    (source / "variables" / "variables.index").write_bytes(b"ix")
    copy_tree(source, tmp_path / "dst")
    assert (tmp_path / "dst" / "saved_model.pb").read_bytes() == b"pb"
    assert (tmp_path / "dst" / "variables" / "variables.index").read_bytes() == b"ix"
