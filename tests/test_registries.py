"""Every registered tower, as booster and as light net: built from its config, trained one
step, FLOP-counted, and exported. A new tower is one file in rocketctr/towers/ plus a test
file; this proves it fits the rest of the pipeline."""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from rocketctr import serving
from rocketctr.config.core import TowerConfig
from rocketctr.data.dataset import reader_class
from rocketctr.data.reader import Reader
from rocketctr.features.schema import FORMATS, load_schema
from rocketctr.model.cotrain import build_model
from rocketctr.towers.base import (
    MLPConfig,
    Tower,
    TowerOutput,
    flat_inputs,
    tower_class,
    tower_names,
)
from tests.helpers import random_features, random_labels, tiny_config

# Has behaviour sequences (din) and item features (two_tower): every tower can train on it.
SCHEMA = load_schema("synthetic_sequence")
REQUIRED = {"dcn_v2": {"projection_dim": 2}}  # knobs without a default


def _tower(name: str) -> dict:
    small = {"hidden_units": [4]} if issubclass(tower_class(name).Config, MLPConfig) else {}
    return {"name": name, **small, **REQUIRED.get(name, {})}


def test_every_tower_config_is_a_frozen_dataclass_with_checks_for_known_knobs():
    for name in tower_names():
        cls = tower_class(name).Config
        assert dataclasses.is_dataclass(cls) and cls.__dataclass_params__.frozen, name
        fields = {f.name for f in dataclasses.fields(cls)}
        for klass in cls.__mro__:
            assert set(klass.__dict__.get("CHECKS", {})) <= fields, (name, klass)


@pytest.mark.parametrize("name", tower_names())
def test_every_tower_trains_is_counted_and_exports(name, tmp_path):
    tower = _tower(name)
    config = tiny_config({"booster": tower, "light": tower}, schema="synthetic_sequence")
    assert type(config.model.booster) is tower_class(name).Config
    model = build_model(config, SCHEMA)
    features, labels = random_features(SCHEMA, 16), random_labels(16)
    light_before = [v.numpy().copy() for v in model.light.trainable_variables]
    logs = model.train_step((features, labels))
    assert np.isfinite(float(logs["loss"]))
    assert any(
        not np.array_equal(b, v.numpy())
        for b, v in zip(light_before, model.light.trainable_variables, strict=True)
    )
    for net, processor in ((model.light, model.light_processor), (model.booster, model.processor)):
        assert net.flops(len(processor.categorical), 4) > 0
    path = serving.export_light(model, tmp_path)
    assert serving.read_export_info(path)["flops_per_example"]["light"] == model.light.flops(
        len(model.light_processor.categorical), 4
    )


class _Scale(tf_keras.layers.Layer):
    def build(self, input_shape):
        self.w = self.add_weight(name="w", shape=(input_shape[-1],))

    def call(self, x):
        return x * self.w


class _UncountedTower(Tower):  # not registered: no name
    def __init__(self, config, **kwargs):
        super().__init__(config, **kwargs)
        self.scale = _Scale()

    def call(self, embeddings, dense, training=None):
        return TowerOutput(tf.reduce_sum(self.scale(flat_inputs(embeddings, dense)), 1), {})


def test_a_layer_whose_flops_nobody_counts_is_refused_not_counted_as_zero():
    tower = _UncountedTower(TowerConfig(name="uncounted"))
    tower(tf.zeros([2, 3, 4]), tf.zeros([2, 1]))
    with pytest.raises(NotImplementedError, match="no FLOP count for its layer"):
        tower.flops(num_fields=3, embedding_dim=4)


def test_every_schema_format_names_a_reader():
    assert {"csv", "tsv", "libfm", "parquet", "tfrecord"} <= set(FORMATS)
    for file_format in FORMATS:
        assert issubclass(reader_class(file_format), Reader), file_format
    with pytest.raises(ValueError, match="No reader for format 'xls'"):
        reader_class("xls")
