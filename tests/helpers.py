"""Small builders shared by tests."""

from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import tensorflow as tf

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def random_features(schema, num_rows: int, seed: int = 0) -> dict[str, tf.Tensor]:
    """Raw features as readers deliver them: strings for categorical columns, floats else."""
    rng = np.random.default_rng(seed)
    features = {}
    for column in schema.input_columns:
        if schema.is_string_column(column):
            features[column] = tf.constant(rng.integers(0, 50, num_rows).astype(str))
        else:
            features[column] = tf.constant(rng.normal(1.0, 2.0, num_rows).astype(np.float32))
    return features


def random_labels(num_rows: int, seed: int = 0) -> tf.Tensor:
    return tf.constant((np.random.default_rng(seed).random(num_rows) < 0.4).astype(np.float32))


def free_ports(num_ports: int) -> list[int]:
    """Ports free on 127.0.0.1 right now (held open together, so they are distinct)."""
    sockets = [socket.socket() for _ in range(num_ports)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports
