"""Stored values -> the raw values readers deliver, written once for every source.

Readers hand the model one value per column and row: text for a categorical source column
("" when missing), float32 for a dense one (NaN when missing). Where a value was stored as
another type, it is converted here, the same way for TFRecord files, tf.Examples sent to
the serving signature, TFX Transform outputs and catalogue files:
    number -> text column: its decimal text (`123`, a float32 in its shortest form `1.5`);
    text -> dense column: the number it spells ("" is missing);
    absent -> "" or NaN;
    several values of a multi-valued column -> one text, joined by its separator.
"""

from __future__ import annotations

import math

import tensorflow as tf


def first_values(
    values: tf.RaggedTensor | tf.SparseTensor | tf.Tensor,
) -> tuple[tf.Tensor, tf.Tensor]:
    """The first value of each row and whether the row has one.

    Args:
        values: ragged or sparse [B, (n)] (a parsed feature), or dense [B] / [B, 1].

    Returns:
        (values [B], with 0 or "" where absent; present [B] bool). Rows of more than one
        value keep their first; callers that must refuse them check the lengths first.
    """
    if isinstance(values, tf.SparseTensor):
        values = tf.RaggedTensor.from_sparse(values)
    if isinstance(values, tf.RaggedTensor):
        default = "" if values.dtype == tf.string else tf.zeros([], values.dtype)
        first = values.to_tensor(default_value=default, shape=[None, 1])[:, 0]
        return first, values.row_lengths() > 0
    first = tf.reshape(values, [-1])
    return first, tf.ones_like(first, tf.bool)


def raw_values(values: tf.Tensor, present: tf.Tensor, string: bool) -> tf.Tensor:
    """Stored values [B] -> raw values [B] as readers deliver them.

    Args:
        values: [B] string, integer or float values as stored.
        present: [B] bool, False where the value is absent (missing).
        string: True for a categorical source column (text out), False for a dense one.

    Returns:
        [B] string ("" where missing) or float32 (NaN where missing). Text that is not a
        number fails a dense column with TensorFlow's StringToNumber error; readers that
        report bad rows instead validate text before (rocketctr.data.checks.parse_number).
    """
    if string:
        if values.dtype != tf.string:
            values = tf.strings.as_string(values, shortest=values.dtype.is_floating)
        return tf.where(present, values, "")
    if values.dtype == tf.string:
        return tf.strings.to_number(tf.where(present & (values != ""), values, "nan"), tf.float32)
    return tf.where(present, tf.cast(values, tf.float32), math.nan)


def joined_values(values: tf.RaggedTensor | tf.SparseTensor, separator: str) -> tf.Tensor:
    """A multi-valued column's values [B, (n)] -> one text per row, joined by `separator`
    ("" for none); numbers become their (shortest) decimal text."""
    if isinstance(values, tf.SparseTensor):
        values = tf.RaggedTensor.from_sparse(values)
    if values.dtype != tf.string:
        values = tf.strings.as_string(values, shortest=values.dtype.is_floating)
    return tf.strings.reduce_join(values, axis=1, separator=separator)
