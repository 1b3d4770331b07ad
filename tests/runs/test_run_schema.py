"""A run records the schema it was trained with: a resume with a changed schema is refused
naming the keys, and export/evaluate read the recorded schema, not today's file."""

from __future__ import annotations

import rocketctr  # noqa: F401  (selects Keras 2 before TensorFlow loads)

# isort: split
import pytest
import tensorflow as tf
import yaml

from rocketctr.config.core import ConfigError
from rocketctr.features.schema import load_schema
from rocketctr.model.cotrain import build_model
from rocketctr.runs.rundir import SCHEMA_FILE, RunPosition, restore_run
from rocketctr.training.resume import prepare_model_dir
from tests.helpers import tiny_config

SCHEMA = {
    "name": "small",
    "format": "tsv",
    "columns": ["label", "I1", "C1", "C2"],
    "label": "label",
    "dense": [{"name": "I1"}],
    "categorical": [{"name": "C1", "hash_buckets": 10}, {"name": "C2", "hash_buckets": 7}],
}


def _start(tmp_path, schema: dict):
    """A run started on a schema file: config, recorded schema and a checkpoint."""
    schema_path = tmp_path / "small.yaml"
    schema_path.write_text(yaml.safe_dump(schema))
    config = tiny_config(schema=str(schema_path))
    run = tmp_path / "run"
    prepare_model_dir(config, run)
    model = build_model(config, load_schema(str(schema_path)))
    position = RunPosition()
    manager = tf.train.CheckpointManager(position.checkpoint(model), str(run / "checkpoints"), 1)
    manager.save(checkpoint_number=1)
    return config, schema_path, run


def _edit(schema_path, change) -> None:
    data = yaml.safe_load(schema_path.read_text())
    change(data)
    schema_path.write_text(yaml.safe_dump(data))


@pytest.mark.parametrize(
    ("change", "named"),
    [
        # Another table shape: was reported as a corrupt checkpoint.
        (
            lambda d: d["categorical"][0].update(hash_buckets=20),
            "categorical.C1.hash_buckets: 10 -> 20",
        ),
        # Same shapes, another meaning: resumed silently.
        (
            lambda d: d["dense"][0].update(transform="log1p"),
            "dense.I1.transform: 'none' -> 'log1p'",
        ),
        (
            lambda d: d["categorical"].reverse(),
            "order of categorical features: ['C1', 'C2'] -> ['C2', 'C1']",
        ),
        (lambda d: d.update(privileged=["C2"]), "privileged: [] -> ['C2']"),
        (
            lambda d: d["categorical"].append({"name": "C3", "num_ids": 4, "source": "C2"}),
            "categorical.C3.num_ids: (absent) -> 4",
        ),
    ],
)
def test_resuming_with_a_changed_schema_is_refused_naming_the_keys(tmp_path, change, named):
    config, schema_path, run = _start(tmp_path, SCHEMA)
    recorded = (run / SCHEMA_FILE).read_text()
    _edit(schema_path, change)
    with pytest.raises(ConfigError) as refused:
        prepare_model_dir(config, run)
    message = str(refused.value)
    assert named in message, message
    assert f"was trained with another schema than {schema_path} now gives" in message
    assert f"recorded in {run / SCHEMA_FILE}" in message and "use a new --model_dir" in message
    assert (run / SCHEMA_FILE).read_text() == recorded  # the record is kept

    # Export and evaluate restore with the recorded schema, whatever the file says now.
    model, _, _, _ = restore_run(run)
    assert model.schema.categorical[0].hash_buckets == 10
    assert model.schema.dense[0].transform == "none"


def test_reading_keys_may_change_and_the_same_schema_resumes(tmp_path):
    config, schema_path, run = _start(tmp_path, SCHEMA)
    prepare_model_dir(config, run)  # unchanged: resumes
    # The same features from CSV files with a header and another column order.
    _edit(
        schema_path,
        lambda d: d.update(
            format="csv", header=True, columns=["C2", "C1", "I1", "label"], name="small_csv"
        ),
    )
    prepare_model_dir(config, run)
    assert yaml.safe_load((run / SCHEMA_FILE).read_text())["format"] == "csv"
    # Another schema file with the same features is the same run too.
    copy = tmp_path / "copy.yaml"
    copy.write_text(schema_path.read_text())
    prepare_model_dir(config.replace({"schema": str(copy)}), run)


def test_a_damaged_schema_record_is_named(tmp_path):
    config, _, run = _start(tmp_path, SCHEMA)
    (run / SCHEMA_FILE).write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match=rf"{run / SCHEMA_FILE} is not valid YAML"):
        prepare_model_dir(config, run)
    (run / SCHEMA_FILE).write_text("name: x\n")
    with pytest.raises(ValueError, match=rf"{run / SCHEMA_FILE} does not hold a schema"):
        restore_run(run)


def test_a_dir_whose_run_never_trained_takes_the_corrected_config(tmp_path):
    """A start that failed after writing its records (no checkpoint) is not a run to protect."""
    config, schema_path, run = _start(tmp_path, SCHEMA)
    for path in (run / "checkpoints").iterdir():
        path.unlink()
    _edit(schema_path, lambda d: d["categorical"][0].update(hash_buckets=20))
    corrected = config.replace({"model.embedding_dim": 3})
    prepare_model_dir(corrected, run)
    assert yaml.safe_load((run / "config.yaml").read_text())["model"]["embedding_dim"] == 3
    assert yaml.safe_load((run / SCHEMA_FILE).read_text())["categorical"][0]["hash_buckets"] == 20
