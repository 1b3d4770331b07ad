"""The rows an export is checked on and warmed up with: real eval rows, or synthetic ones."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import tensorflow as tf

from rocketctr.serving.export_error import ExportError

PARITY_ROWS = 1000  # at most this many example rows are scored twice at export
SYNTHETIC_ROWS = 256


def as_numpy_rows(
    features: Mapping[str, Any], input_dtypes: Mapping[str, tf.DType]
) -> dict[str, np.ndarray]:
    """{serving column: [N]} numpy rows (bytes for strings), at most PARITY_ROWS of them."""
    missing = [c for c in input_dtypes if c not in features]
    if missing:
        raise ExportError(
            f"example_features lack serving columns {missing}; received {sorted(features)}"
        )
    rows = {}
    for column, dtype in input_dtypes.items():
        value = features[column]
        value = value.numpy() if hasattr(value, "numpy") else np.asarray(value)
        value = value.reshape(-1)
        if dtype == tf.string:
            rows[column] = np.array(
                [v if isinstance(v, bytes) else str(v).encode() for v in value], dtype=object
            )
        else:
            rows[column] = value.astype(np.float32)
    sizes = {len(v) for v in rows.values()}
    if len(sizes) != 1:
        raise ExportError(f"example_features columns have different lengths: {sorted(sizes)}")
    n = sizes.pop()
    if n == 0:
        raise ExportError("example_features has no rows.")
    return {c: v[:PARITY_ROWS] for c, v in rows.items()}


def as_numpy_labels(labels: Any, num_rows: int) -> np.ndarray:
    """0/1 labels [num_rows] of the example rows (the first num_rows given)."""
    labels = labels.numpy() if hasattr(labels, "numpy") else np.asarray(labels)
    labels = labels.reshape(-1).astype(np.float32)
    if len(labels) < num_rows:
        raise ExportError(
            f"example_labels has {len(labels)} rows; example_features has {num_rows}."
        )
    return labels[:num_rows]


def synthetic_rows(input_dtypes: Mapping[str, tf.DType], seed: int = 0) -> dict[str, np.ndarray]:
    """Rows covering the awkward values: missing, negative, huge, repeated, unseen text."""
    rng = np.random.default_rng(seed)
    n = SYNTHETIC_ROWS
    rows = {}
    for column, dtype in input_dtypes.items():
        if dtype == tf.string:
            values = rng.integers(0, 1000, n).astype(str).astype(object)
            values[rng.random(n) < 0.1] = ""
            rows[column] = np.array([v.encode() for v in values], dtype=object)
        else:
            values = rng.lognormal(1.0, 2.0, n) * rng.choice([-1.0, 1.0], n, p=[0.1, 0.9])
            values[rng.random(n) < 0.1] = math.nan
            rows[column] = values.astype(np.float32)
    return rows
