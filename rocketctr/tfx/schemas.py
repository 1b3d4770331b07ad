"""The feature layout of a TFX run: a rocketctr schema named in custom_config, or one derived
from the TFMD schema SchemaGen (or Transform) wrote; and the tf.Example kinds of its columns."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import tensorflow as tf
import yaml

from rocketctr.config.core import ConfigError

DEFAULT_HASH_BUCKETS = 10_000


DERIVED_SCHEMA_FILE = "tfx_schema.yaml"  # written to model_run_dir when derived from TFMD


# TFMD FeatureType values (tensorflow_metadata schema.proto): BYTES=1, INT=2, FLOAT=3.
_TFMD_BYTES, _TFMD_INT, _TFMD_FLOAT = 1, 2, 3
_TFMD_DTYPES = {_TFMD_BYTES: tf.string, _TFMD_INT: tf.int64, _TFMD_FLOAT: tf.float32}


def read_tfmd_schema(path: str):
    """Reads a TFMD `Schema` from a schema.pbtxt (text) file, as SchemaGen writes it."""
    from google.protobuf import text_format
    from tensorflow_metadata.proto.v0 import schema_pb2

    with tf.io.gfile.GFile(path) as f:
        return text_format.Parse(f.read(), schema_pb2.Schema())


def schema_from_tfmd(
    tfmd_schema: Any,
    label: str,
    *,
    hash_buckets: int = DEFAULT_HASH_BUCKETS,
    dense: Sequence[str] = (),
    privileged: Sequence[str] = (),
    name: str = "tfx",
) -> dict[str, Any]:
    """A rocketctr schema mapping (format tfrecord) for the features of a TFMD schema.

    BYTES and INT features become categorical features hashed into `hash_buckets` rows
    (integers hash as their decimal text); FLOAT features, and INT features named in
    `dense`, become dense features without transform. Other feature types are refused.

    Args:
        tfmd_schema: a `tensorflow_metadata` `Schema` proto.
        label: the label feature's name.
        hash_buckets: hash buckets of every categorical feature.
        dense: INT features to read as numbers instead of ids.
        privileged: features only the booster sees.
        name: the schema's name.

    Returns:
        A mapping `rocketctr.features.schema.parse_schema` accepts.
    """
    features = {f.name: f.type for f in tfmd_schema.feature}
    if label not in features:
        raise ConfigError(
            f"custom_config['label'] {label!r} is not a feature of the TFMD schema. "
            f"Features: {sorted(features)}"
        )
    unknown = sorted((set(dense) | set(privileged)) - set(features))
    if unknown:
        raise ConfigError(f"custom_config names features the TFMD schema lacks: {unknown}")
    dense_specs, categorical = [], []
    for feature, kind in features.items():
        if feature == label:
            continue
        if kind == _TFMD_FLOAT or (kind == _TFMD_INT and feature in dense):
            dense_specs.append({"name": feature})
        elif kind in (_TFMD_BYTES, _TFMD_INT):
            if feature in dense:
                raise ConfigError(f"Feature {feature!r} in custom_config['dense'] is not numeric.")
            categorical.append({"name": feature, "hash_buckets": int(hash_buckets)})
        else:
            raise ConfigError(
                f"TFMD feature {feature!r} has type {kind} (not BYTES, INT or FLOAT); "
                "give a rocketctr schema with custom_config['schema'] instead."
            )
    return {
        "name": name,
        "format": "tfrecord",
        "columns": list(features),
        "label": label,
        "dense": dense_specs,
        "categorical": categorical,
        "privileged": list(privileged),
    }


def resolve_schema(custom: Mapping[str, Any], tfmd_schema: Any, run_dir: Path) -> str:
    """The schema reference the config carries: custom_config["schema"], or a YAML derived
    from the TFMD schema and written to `run_dir` (so checkpoints restore without TFX)."""
    from rocketctr.features.schema import load_schema, parse_schema

    if custom.get("schema"):
        schema = load_schema(str(custom["schema"]))
        if schema.format != "tfrecord":
            raise ConfigError(
                f"custom_config['schema'] {custom['schema']!r} has format {schema.format!r}; "
                "TFX passes TFRecord tf.Example files, so the schema needs format: tfrecord."
            )
        return str(custom["schema"])
    if tfmd_schema is None:
        raise ConfigError(
            "No feature layout: set custom_config['schema'] (a data_schemas name or YAML "
            "path), or give the Trainer a `schema` (SchemaGen) plus custom_config['label']."
        )
    if "label" not in custom:
        raise ConfigError("Deriving the schema from TFMD needs custom_config['label'].")
    data = schema_from_tfmd(
        tfmd_schema,
        custom["label"],
        hash_buckets=custom.get("hash_buckets", DEFAULT_HASH_BUCKETS),
        dense=custom.get("dense", ()),
        privileged=custom.get("privileged", ()),
    )
    path = run_dir / DERIVED_SCHEMA_FILE
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    parse_schema(data, source=str(path))  # fail here, naming the file, if it is invalid
    return str(path.resolve())


def training_example_dtypes(
    schema: Any, train_files: Sequence[str], tfmd_schema: Any = None
) -> dict[str, tf.DType]:
    """{column: tf.Example list type} of the training data, for `predict_examples`.

    The TFMD schema's types when there is one (they describe every record), otherwise what
    the TFRecord reader inferred from the training files (what training itself read).
    """
    from rocketctr.data.dataset import expand_patterns
    from rocketctr.data.tfrecord import TFRecordReader

    dtypes = dict(TFRecordReader(schema, expand_patterns(list(train_files)), 1).dtypes)
    if tfmd_schema is not None:
        for feature in tfmd_schema.feature:
            if feature.name in dtypes and feature.type in _TFMD_DTYPES:
                dtypes[feature.name] = _TFMD_DTYPES[feature.type]
    return {c: dt for c, dt in dtypes.items() if c in schema.columns}
