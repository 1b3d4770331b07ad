"""Fixtures for the data tests: a tiny schema, file writers, and batch collection."""

from __future__ import annotations

from pathlib import Path

import rocketctr  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)

# isort: split
import numpy as np
import pytest
import tensorflow as tf

from rocketctr.data import dataset as dataset_module
from rocketctr.features.schema import Schema, parse_schema

# <repo>/../shared/data: real data kept outside the repository (not redistributable).
SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"

TINY_COLUMNS = ["label", "I1", "I2", "C1", "C2"]


def _tiny_schema(fmt: str = "tsv", **overrides) -> Schema:
    """label, two dense columns (I1, I2), two categorical ones (C1, C2); C2 is the user id."""
    spec = {
        "name": "tiny",
        "format": fmt,
        "columns": TINY_COLUMNS,
        "label": "label",
        "dense": [{"name": "I1"}, {"name": "I2"}],
        "categorical": [{"name": "C1", "hash_buckets": 10}, {"name": "C2", "hash_buckets": 10}],
        "user_id": "C2",
    }
    return parse_schema({**spec, **overrides}, source="tiny.yaml")


def _collect(ds: tf.data.Dataset) -> tuple[dict[str, np.ndarray], np.ndarray, list[int]]:
    """All batches concatenated: (features with strings decoded, labels, batch sizes)."""
    batches = list(ds.as_numpy_iterator())
    sizes = [len(labels) for _, labels in batches]
    features = {}
    for name in batches[0][0] if batches else []:
        values = np.concatenate([f[name] for f, _ in batches])
        if values.dtype == object:
            values = np.array([v.decode() for v in values], dtype=object)
        features[name] = values
    labels = np.concatenate([labels for _, labels in batches]) if batches else np.zeros(0)
    return features, labels, sizes


@pytest.fixture
def tiny_schema():
    """tiny_schema(fmt="tsv", **overrides) -> Schema over TINY_COLUMNS."""
    return _tiny_schema


@pytest.fixture
def collect():
    """collect(ds) -> (features with strings decoded, labels, batch sizes)."""
    return _collect


@pytest.fixture
def write(tmp_path):
    """write(name, text) -> path of a new file under tmp_path."""

    def write_file(name: str, text: str) -> str:
        path = tmp_path / name
        path.write_text(text)
        return str(path)

    return write_file


@pytest.fixture
def rows_per_chunk(monkeypatch):
    """Sets how many lines/records are parsed per chunk, to put row boundaries in tests."""

    def set_rows(rows: int) -> None:
        monkeypatch.setattr(dataset_module, "ROWS_PER_CHUNK", rows)

    return set_rows


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA} (kept outside the repository)")
    return SHARED_DATA
