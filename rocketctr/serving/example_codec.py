"""The tf.Example codec of `predict_examples`: parse in the graph, write for checks and tests.

Features are parsed as bytes_list (categorical) and float_list (dense) by default; a
missing feature is "" or NaN, exactly like an empty field in training data. Columns stored
as another list type (TFX CsvExampleGen writes integer columns as int64_list) are declared
with `example_dtypes` at export and converted like the TFRecord reader converts them
(`rocketctr.data.raw_values`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import tensorflow as tf

from rocketctr.data.raw_values import first_values, joined_values, raw_values
from rocketctr.serving.export_error import ExportError

_EXAMPLE_DTYPES = (tf.string, tf.float32, tf.int64)


def parse_examples(
    examples: tf.Tensor,
    input_dtypes: Mapping[str, tf.DType],
    example_dtypes: Mapping[str, tf.DType],
    separators: Mapping[str, str] | None = None,
) -> dict[str, tf.Tensor]:
    """Serialized tf.Example [B] -> raw serving features, as `serving_default` takes them.

    A missing feature becomes "" (string columns) or NaN (float columns), exactly what the
    readers deliver for an empty field. A feature stored with another list type than its
    serving dtype is converted the way `rocketctr.data`'s TFRecord reader converts it:
    int64/float values of a string column become their (shortest) decimal text, so `123` is
    hashed like the field "123"; bytes of a float column are parsed as a number (bad text
    fails the request with a StringToNumber error).

    Args:
        examples: serialized tf.Example protos, shape [B].
        input_dtypes: {column: serving dtype (tf.string or tf.float32)}.
        example_dtypes: {column: list type of the column's tf.Example feature}.
        separators: {multi-valued column: its separator}: its feature's repeated values
            (or one value already joined) become one text joined by it.

    Returns:
        {column: [B]} with the serving dtypes.
    """
    # Ragged for every column: a feature may be absent, or present with an empty value list
    # (CsvExampleGen writes empty CSV fields that way); both mean "missing", as in training.
    spec = {column: tf.io.RaggedFeature(dtype) for column, dtype in example_dtypes.items()}
    parsed = tf.io.parse_example(examples, spec)
    features = {}
    for column, serving_dtype in input_dtypes.items():
        if column in (separators or {}):
            features[column] = joined_values(parsed[column], separators[column])
            continue
        lengths = parsed[column].row_lengths()
        # FixedLenFeature would refuse a second value; refuse it here too, never drop it.
        check = tf.debugging.assert_less_equal(
            lengths,
            tf.constant(1, lengths.dtype),
            message=f"tf.Example feature {column!r} has more than one value",
        )
        with tf.control_dependencies([check]):
            first, present = first_values(parsed[column])
        features[column] = raw_values(first, present, serving_dtype == tf.string)
    return features


def resolve_example_dtypes(
    schema, input_dtypes: Mapping[str, tf.DType], overrides: Mapping[str, Any] | None
) -> dict[str, tf.DType]:
    """Serving dtypes, overridden per column; schema columns that are not served (label,
    privileged) are ignored, so a TFRecord reader's inferred dtypes can be passed as is."""
    overrides = {c: tf.as_dtype(d) for c, d in (overrides or {}).items()}
    unknown = sorted(set(overrides) - set(schema.columns))
    if unknown:
        raise ExportError(
            f"example_dtypes names columns that are not in schema {schema.name!r}: {unknown}. "
            f"Serving columns: {list(input_dtypes)}"
        )
    for column, dtype in overrides.items():
        if dtype not in _EXAMPLE_DTYPES:
            raise ExportError(
                f"example_dtypes[{column!r}] must be one of string, float32, int64. "
                f"Received: {dtype.name}"
            )
    return {c: overrides.get(c, dt) for c, dt in input_dtypes.items()}


def serialize_examples(
    rows: Mapping[str, np.ndarray], example_dtypes: Mapping[str, tf.DType]
) -> list[bytes]:
    """Raw rows -> serialized tf.Example protos; "" and NaN become absent (missing) features.

    Args:
        rows: {column: [N]} raw values (bytes/str for string columns, floats for dense).
        example_dtypes: {column: tf.string | tf.float32 | tf.int64}, the feature list type.

    Returns:
        N serialized tf.Example protos.

    Raises:
        ExportError: a value the declared list type cannot carry (int64: 1.5, "abc", "007";
            float32: "abc"). Values that convert but would not score the same (text "1.50"
            read back as "1.5") are left to the parity check.
    """
    n = len(next(iter(rows.values())))
    out = []
    for i in range(n):
        feature = {}
        for column, dtype in example_dtypes.items():
            value = rows[column][i]
            if isinstance(value, bytes):
                value = value.decode()
            if value == "" or (isinstance(value, float | np.floating) and math.isnan(value)):
                continue
            if dtype == tf.string:
                feature[column] = tf.train.Feature(
                    bytes_list=tf.train.BytesList(value=[str(value).encode()])
                )
            elif dtype == tf.float32:
                feature[column] = tf.train.Feature(
                    float_list=tf.train.FloatList(value=[_as_float(value, column)])
                )
            else:
                feature[column] = tf.train.Feature(
                    int64_list=tf.train.Int64List(value=[_as_int64(value, column)])
                )
        out.append(
            tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()
        )
    return out


def _as_float(value: Any, column: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise ExportError(
            f"Column {column!r} is declared float32 in tf.Examples, but the value {value!r} "
            "is not a number."
        ) from None


def _as_int64(value: Any, column: str) -> int:
    """The int an int64 feature carries for `value`, if it represents `value` exactly."""
    try:
        number = int(value) if isinstance(value, str) else int(float(value))
    except ValueError:
        number = None
    exact = number is not None and (
        str(number) == value.strip() if isinstance(value, str) else number == float(value)
    )
    if not exact:
        raise ExportError(
            f"Column {column!r} is declared int64 in tf.Examples, but the value {value!r} is "
            "not an integer an int64 feature can carry exactly."
        )
    return number
