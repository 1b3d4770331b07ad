"""The verified light export re-signed for TFX: `predict_examples` on serialized tf.Examples
(raw, or through the Transform graph), checked again on examples written the way
CsvExampleGen writes them."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import tensorflow as tf

from rocketctr.tfx.transform import _as_serving


class _TfxModule(tf.Module):
    """The verified light export, re-signed for TFX's tf.Examples (and optionally Transform).

    `predict_examples` parses with `serving.parse_examples`: CsvExampleGen writes an empty
    CSV field as a feature with an *empty* value list, and no value means missing ("" /
    NaN), exactly as the TFRecord reader reads it at training time. Only the loaded light
    export's variables are tracked, so nothing else can be saved.
    """

    def __init__(
        self,
        light_dir: Path,
        example_dtypes: Mapping[str, tf.DType],
        tft_output: Any = None,
        label: str | None = None,
    ):
        super().__init__(name="rocketctr_tfx_export")
        self.light = tf.saved_model.load(str(light_dir))
        serve = self.light.signatures["serving_default"]
        input_dtypes = {c: s.dtype for c, s in serve.structured_input_signature[1].items()}
        if tft_output is not None:
            self.tft_layer = tft_output.transform_features_layer()
            raw_spec = dict(tft_output.raw_feature_spec())
            raw_spec.pop(label, None)

            def light_inputs(examples):
                transformed = self.tft_layer(tf.io.parse_example(examples, raw_spec))
                missing = sorted(set(input_dtypes) - set(transformed))
                if missing:
                    raise ValueError(f"The Transform graph does not output light inputs {missing}")
                return {c: _as_serving(transformed[c], dt) for c, dt in input_dtypes.items()}
        else:
            from rocketctr import serving

            parse_dtypes = {c: tf.as_dtype(example_dtypes[c]) for c in input_dtypes}
            from rocketctr.features.schema import parse_schema

            # Multi-valued columns: their repeated values are joined, as the export does.
            definition = serving.read_export_info(light_dir)["schema"]["definition"]
            separators = parse_schema(definition).separators

            def light_inputs(examples):
                # Absent and empty-list features are missing, as in training.
                return serving.parse_examples(examples, input_dtypes, parse_dtypes, separators)

        def predict(examples):
            return self.light.signatures["serving_default"](**light_inputs(examples))

        self.predict_examples = tf.function(
            predict, input_signature=[tf.TensorSpec([None], tf.string, name="examples")]
        )
        if tft_output is not None:
            # Raw features by name would bypass the Transform graph: serve examples only.
            self.serve = self.predict_examples
        else:
            specs = {c: tf.TensorSpec([None], dt, name=c) for c, dt in input_dtypes.items()}
            self.serve = tf.function(lambda features: serve(**features), input_signature=[specs])


def save_for_tfx(
    light_dir: Path,
    out_dir: Path,
    example_dtypes: Mapping[str, tf.DType],
    tft_output: Any = None,
    label: str | None = None,
) -> None:
    """Saves the light export with TFX-ready signatures (see `_TfxModule`) to `out_dir`.

    The light export's `assets.extra/rocketctr.json` comes along; its TF Serving warmup
    requests too, unless Transform changed what `serving_default` takes.
    """
    from rocketctr import serving

    module = _TfxModule(Path(light_dir), example_dtypes, tft_output, label)
    signatures = {"serving_default": module.serve, "predict_examples": module.predict_examples}
    tf.saved_model.save(module, str(out_dir), signatures=signatures)
    extra = Path(light_dir) / serving.ASSETS_EXTRA
    (Path(out_dir) / serving.ASSETS_EXTRA).mkdir()
    for name in [serving.METADATA_FILE] + ([serving.WARMUP_FILE] if tft_output is None else []):
        if (extra / name).exists():
            tf.io.gfile.copy(str(extra / name), str(Path(out_dir) / serving.ASSETS_EXTRA / name))


def verify_for_tfx(
    saved_model_dir: Path,
    model: Any,
    features: Mapping[str, tf.Tensor],
    example_dtypes: Mapping[str, tf.DType],
) -> None:
    """rocketctr's export checks on the TFX SavedModel, plus parity on examples written the
    way CsvExampleGen writes them (missing values as empty value lists).

    Raises:
        serving.ExportError: a check failed.
    """
    from rocketctr import serving

    input_dtypes = serving.serving_input_dtypes(model)
    rows = {c: features[c].numpy() for c in input_dtypes}
    example_dtypes = {c: tf.as_dtype(example_dtypes.get(c, dt)) for c, dt in input_dtypes.items()}
    serving.verify_export(saved_model_dir, model, rows, example_dtypes)  # (report, scores)
    examples = serialize_like_csv_example_gen(rows, example_dtypes)
    loaded = tf.saved_model.load(str(saved_model_dir))
    scored = loaded.signatures["predict_examples"](examples=tf.constant(examples))
    expected = tf.sigmoid(model.light_logits(features)).numpy()
    diff = abs(scored["probabilities"].numpy() - expected)
    if not (diff <= serving.PARITY_ATOL).all():
        raise serving.ExportError(
            f"predict_examples on examples with empty value lists differs from the light net: "
            f"max |dp| = {diff.max()} (tolerance {serving.PARITY_ATOL})."
        )


def serialize_like_csv_example_gen(
    rows: Mapping[str, Any], example_dtypes: Mapping[str, tf.DType]
) -> list[bytes]:
    """Like `serving.serialize_examples`, but a missing value is an empty value list."""
    from rocketctr import serving

    kinds = {tf.string: "bytes_list", tf.float32: "float_list", tf.int64: "int64_list"}
    out = []
    for example in serving.serialize_examples(rows, example_dtypes):
        proto = tf.train.Example.FromString(example)
        for column, dtype in example_dtypes.items():
            if column in rows and column not in proto.features.feature:
                getattr(proto.features.feature[column], kinds[tf.as_dtype(dtype)]).SetInParent()
        out.append(proto.SerializeToString())
    return out
