"""In-graph feature processing: raw columns -> embedding-table row ids and dense values.

These ops run inside the model, so training, evaluation and every exported signature apply
exactly the same graph to the same raw values (DESIGN invariant 5). Readers deliver raw
strings and floats only.
"""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf
import tf_keras

from rocketctr.schema import CategoricalFeature, DenseFeature, Schema


def _as_string(raw: tf.Tensor) -> tf.Tensor:
    return raw if raw.dtype == tf.string else tf.strings.as_string(raw)


def _parse_int(raw: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Returns (value, valid) for a string or integer tensor; invalid strings give 0."""
    if raw.dtype.is_integer:
        return tf.cast(raw, tf.int64), tf.ones_like(raw, tf.bool)
    valid = tf.strings.regex_full_match(raw, r"\s*-?[0-9]{1,18}\s*")
    value = tf.strings.to_number(tf.where(valid, raw, "0"), out_type=tf.int64)
    return value, valid


def _days_from_civil(year: tf.Tensor, month: tf.Tensor, day: tf.Tensor) -> tf.Tensor:
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm)."""
    year = year - tf.cast(month <= 2, tf.int64)
    era = tf.math.floordiv(year, 400)
    yoe = year - era * 400
    mp = tf.math.floormod(month + 9, 12)
    doy = (153 * mp + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _derive(feature: CategoricalFeature, raw: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Derived integer ids from a YYMMDDHH timestamp; returns (id, valid)."""
    stamp, valid = _parse_int(raw)
    hour = stamp % 100
    day = (stamp // 100) % 100
    month = (stamp // 10_000) % 100
    year = 2000 + stamp // 1_000_000
    valid &= (hour < 24) & (day >= 1) & (day <= 31) & (month >= 1) & (month <= 12)
    if feature.derive == "hour_of_day":
        return hour, valid
    # weekday, Monday = 0; 1970-01-01 was a Thursday.
    return tf.math.floormod(_days_from_civil(year, month, day) + 3, 7), valid


def categorical_ids(feature: CategoricalFeature, raw: tf.Tensor) -> tf.Tensor:
    """Maps raw values of one feature to local row ids in [0, feature.num_rows).

    Hashed features use `tf.strings.to_hash_bucket_fast` (missing "" is a value like any
    other). Integer-id features map `id_offset + k` to k and anything else (missing, text,
    out of range) to the single out-of-vocabulary row `num_ids`.
    """
    if feature.hash_buckets:
        return tf.strings.to_hash_bucket_fast(_as_string(raw), feature.hash_buckets)
    if feature.derive:
        value, valid = _derive(feature, raw)
    else:
        value, valid = _parse_int(raw)
        value = value - feature.id_offset
    in_range = valid & (value >= 0) & (value < feature.num_ids)
    return tf.where(in_range, value, tf.cast(feature.num_ids, tf.int64))


def dense_values(feature: DenseFeature, raw: tf.Tensor) -> tf.Tensor:
    """Transforms one dense column; missing (NaN) becomes 0 after the transform."""
    x = tf.cast(raw, tf.float32)
    missing = tf.math.is_nan(x)
    x = tf.where(missing, 0.0, x)
    if feature.clip_max is not None:
        x = tf.minimum(x, feature.clip_max)
    if feature.transform == "log1p":
        x = tf.math.log1p(tf.maximum(x, 0.0))
    return tf.where(missing, 0.0, x)


class FeatureProcessor(tf_keras.layers.Layer):
    """Raw feature dict -> (row ids [B, F] into the shared table, dense values [B, D]).

    Every categorical feature owns a contiguous block of rows of one shared embedding
    table; its block offset comes from its position in the full schema, so a processor built
    for a subset of features (the light net's serving inputs) looks up the same rows.

    Args:
        schema: the dataset schema.
        feature_names: the features to process, default all; order follows the schema.
    """

    def __init__(
        self, schema: Schema, feature_names: Sequence[str] | None = None, **kwargs
    ) -> None:
        super().__init__(**kwargs)
        names = set(schema.feature_names if feature_names is None else feature_names)
        unknown = names - set(schema.feature_names)
        if unknown:
            raise ValueError(f"Features not in schema {schema.name!r}: {sorted(unknown)}")
        offsets, total = {}, 0
        for f in schema.categorical:
            offsets[f.name] = total
            total += f.num_rows
        self.num_table_rows = total
        self.categorical = [f for f in schema.categorical if f.name in names]
        self.dense = [f for f in schema.dense if f.name in names]
        self._offsets = [offsets[f.name] for f in self.categorical]

    @property
    def input_columns(self) -> list[str]:
        cols = [f.name for f in self.dense]
        for f in self.categorical:
            if f.column not in cols:
                cols.append(f.column)
        return cols

    def call(self, features: dict[str, tf.Tensor]) -> tuple[tf.Tensor, tf.Tensor]:
        missing = [c for c in self.input_columns if c not in features]
        if missing:
            raise KeyError(f"Missing input columns {missing}; received {sorted(features)}")
        ids = [
            categorical_ids(f, tf.reshape(features[f.column], [-1])) + offset
            for f, offset in zip(self.categorical, self._offsets, strict=True)
        ]
        ids = tf.stack(ids, axis=1)
        if self.dense:
            dense = tf.stack(
                [dense_values(f, tf.reshape(features[f.name], [-1])) for f in self.dense], axis=1
            )
        else:
            dense = tf.zeros([tf.shape(ids)[0], 0], tf.float32)
        return ids, dense
