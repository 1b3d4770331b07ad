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


def frappe_rows_of_four_users(schema, num_rows: int = 32) -> dict[str, tf.Tensor]:
    """Frappe rows (`schema`: the frappe schema) with ids in range (id_offset + k): 4 users
    ("user", the schema's user_id) of num_rows / 4 rows each, for ranking distillation."""
    rng = np.random.default_rng(0)
    features = {
        f.name: tf.constant((f.id_offset + rng.integers(0, f.num_ids, num_rows)).astype(str))
        for f in schema.categorical
    }
    features["user"] = tf.constant(np.repeat(["3", "5", "8", "9"], num_rows // 4))
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


def _example(row: dict) -> bytes:
    """A serialized tf.Example: str as bytes_list, float as float_list, int as int64_list."""
    feature = {}
    for name, value in row.items():
        if value is None:
            continue  # a missing value is an absent feature
        if isinstance(value, list):  # several values: malformed for a scalar column
            feature[name] = tf.train.Feature(bytes_list=tf.train.BytesList(value=value))
        elif isinstance(value, str):
            feature[name] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[value.encode()]))
        elif isinstance(value, float):
            feature[name] = tf.train.Feature(float_list=tf.train.FloatList(value=[value]))
        else:
            feature[name] = tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def write_tfrecord(path, rows: list[dict], gzipped: bool = False) -> str:
    """Writes one tf.Example per row (None: feature absent; a list: several bytes values)."""
    options = tf.io.TFRecordOptions(compression_type="GZIP" if gzipped else "")
    with tf.io.TFRecordWriter(str(path), options) as writer:
        for row in rows:
            writer.write(_example(row))
    return str(path)


def rows_of(columns: dict) -> list[dict]:
    """Column lists -> one dict per row."""
    return [
        dict(zip(columns, values, strict=True)) for values in zip(*columns.values(), strict=True)
    ]
