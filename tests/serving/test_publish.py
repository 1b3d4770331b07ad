"""Publishing an export: numbered versions, nothing left by a crash or a failed check, and
the temporary dirs of killed exports removed by the next export."""

from __future__ import annotations

import os
import subprocess
import sys

import rocketctr  # noqa: F401  (selects Keras 2 before TensorFlow loads)

# isort: split
import pytest
import tensorflow as tf

from rocketctr import serving
from rocketctr.features.schema import load_schema
from rocketctr.model.cotrain import build_model
from rocketctr.serving import verification
from tests.helpers import random_features, tiny_config

SCHEMA = load_schema("criteo")


def test_versions_increase_and_a_crash_leaves_nothing(tmp_path, monkeypatch):
    model = build_model(tiny_config(), SCHEMA)
    real_save = tf.saved_model.save

    def save_then_crash(*args, **kwargs):
        real_save(*args, **kwargs)  # files are on disk when the crash happens
        raise OSError("disk full")

    monkeypatch.setattr(tf.saved_model, "save", save_then_crash)
    with pytest.raises(OSError, match="disk full"):
        serving.export_light(model, tmp_path)
    assert list(tmp_path.iterdir()) == []
    monkeypatch.undo()

    first = serving.export_light(model, tmp_path)
    second = serving.export_light(model, tmp_path)
    assert (first.name, second.name) == ("1", "2")
    (tmp_path / "10").mkdir()  # versions are numbers, not names: 10 > 9 > 2
    (tmp_path / "9").mkdir()
    (tmp_path / "notes").mkdir()
    assert serving.next_version(tmp_path) == 11
    assert sorted(p.name for p in tmp_path.iterdir()) == ["1", "10", "2", "9", "notes"]


def test_failed_verification_leaves_no_version(tmp_path, monkeypatch):
    model = build_model(tiny_config(), SCHEMA)
    serving.export_light(model, tmp_path)
    monkeypatch.setattr(verification, "PARITY_ATOL", -1.0)  # no score can pass
    with pytest.raises(serving.ExportError, match="differs from the in-memory light net"):
        serving.export_light(model, tmp_path, example_features=random_features(SCHEMA, 20))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["1"]


@pytest.mark.integration
def test_the_next_export_removes_temp_dirs_that_killed_exports_left(tmp_path):
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait()  # its pid now names no running process: a killed exporter's
    stale = tmp_path / f".tmp-3-{finished.pid}"
    (stale / "variables").mkdir(parents=True)
    (stale / "variables" / "variables.data-00000-of-00001").write_bytes(b"x" * 1000)
    live = tmp_path / f".tmp-4-{os.getpid()}"  # a running exporter's: kept
    live.mkdir()
    (tmp_path / ".tmp-notes").mkdir()  # not the exporter's name pattern: kept
    path = serving.export_light(build_model(tiny_config(), SCHEMA), tmp_path)
    assert path.name == "1"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["1", live.name, ".tmp-notes"])
