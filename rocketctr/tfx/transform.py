"""TFX Transform support: a generic `preprocessing_fn`, and transformed features converted to
the light net's serving inputs."""

from __future__ import annotations

from typing import Any

import tensorflow as tf


def load_transform_output(path: str):
    import tensorflow_transform as tft

    return tft.TFTransformOutput(path)


def preprocessing_fn(inputs: dict, custom_config: dict | None = None) -> dict:
    """A generic Transform `preprocessing_fn` for CTR data (an example; bring your own).

    Strings stay strings (missing: ""); the label (custom_config["label"], default "label")
    stays as is (missing: 0); other numbers become z-scores of log1p(max(x, 0)) (missing: 0).
    Every output is dense [B]. With the derived schema, strings become hashed categorical
    features and the float outputs dense ones.
    """
    import tensorflow_transform as tft

    label = (custom_config or {}).get("label", "label")
    outputs = {}
    for name, value in inputs.items():
        string = value.dtype == tf.string
        value = _first_value(value, "" if string else tf.zeros([], value.dtype))
        if string or name == label:
            outputs[name] = value
        else:
            x = tf.math.log1p(tf.maximum(tf.cast(value, tf.float32), 0.0))
            outputs[name] = tft.scale_to_z_score(x)
    return outputs


def _first_value(value: Any, default: Any) -> tf.Tensor:
    """[B] dense from a dense [B]/[B, 1], sparse or ragged feature (missing: `default`)."""
    from rocketctr.data.raw_values import first_values

    first, present = first_values(value)
    return tf.where(present, first, default)


def _as_serving(value: Any, dtype: tf.DType) -> tf.Tensor:
    """A transformed feature -> a light `serving_default` input, converted like the
    TFRecord reader converts stored values (rocketctr.data.raw_values)."""
    from rocketctr.data.raw_values import first_values, raw_values

    first, present = first_values(value)
    return raw_values(first, present, dtype == tf.string)
