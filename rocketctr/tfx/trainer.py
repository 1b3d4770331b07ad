"""`run_fn` for the TFX Trainer: train a booster + light pair, push only the light net.

Use it from any TFX pipeline without a module file:

    Trainer(run_fn="rocketctr.tfx.trainer.run_fn", examples=example_gen.outputs["examples"],
            schema=schema_gen.outputs["schema"], train_args=TrainArgs(num_steps=1000),
            custom_config={"schema": "criteo_tfx", "config": "criteo"})

What `run_fn` reads (`fn_args`):
    train_files / eval_files: globs of (GZIP) TFRecord tf.Example files, as ExampleGen and
        Transform write them. Integer columns (int64_list) are read like the TFRecord reader
        reads them: as their decimal text for categorical features, as numbers for dense ones.
    custom_config:
        "schema": a `data_schemas/` name or a schema YAML path (format tfrecord), e.g.
            "criteo_tfx". Without it the feature layout is derived from the TFMD schema
            (`fn_args.schema_path`, or the Transform output's schema): BYTES and INT
            features become hashed categorical features (`hash_buckets`, default 10000),
            FLOAT features dense ones; "label" (required then) names the label,
            "dense" lists INT features to read as dense numbers instead, "privileged"
            lists booster-only features.
        "config": a preset name or a config YAML path (default "default");
        "overrides": {"train.batch_size": 512, ...}, dotted config keys.
        "force": publish the light net even when the export gate refuses it (default
            false). The gate (rocketctr/serving/gate.py) is the Evaluator's blessing built
            into the trainer: non-finite or constant scores, AUC <= 0.51 and AUC below
            `export.min_auc` (a TFMA value_threshold) are refused before anything reaches
            serving_model_dir. Its change threshold (`export.max_auc_drop`, a TFMA
            change_threshold) has no baseline here: serving_model_dir is fresh each run, so
            the pipeline's Evaluator compares with the blessed model.
    train_steps: when set, the total number of training steps (one epoch of that many
        steps over the repeated, shuffled training files); otherwise the config's epochs.
        eval_steps is ignored: both towers are evaluated exactly on the whole eval split.
    model_run_dir: the rocketctr model dir (config.yaml, checkpoints/, TensorBoard logs/,
        metrics.json). A local (or mounted) path.
    serving_model_dir: receives the light-only SavedModel itself (no version subdirectory,
        as TFX's Evaluator and Pusher expect): the light export of `serving.export_light`
        (verified: light variables only, scores equal to the in-memory light net),
        re-signed: `serving_default` (raw features by name, unchanged) and
        `predict_examples` (serialized tf.Example, each column parsed with the
        int64/bytes/float kind of the training data; an absent feature or an empty value
        list, as CsvExampleGen writes empty CSV fields, is missing), then verified again.
        Point TFMA at it with `ModelSpec(signature_name="predict_examples",
        prediction_key="probabilities", label_key=<label>)`.
    transform_graph_path (or the deprecated transform_output): optional; see below.

Transform support (optional). When the Trainer gets a `transform_graph`, `examples` must be
Transform's `transformed_examples`: the model trains on the transformed features (their
layout from the "schema" YAML, or derived from the transformed schema as above). The pushed
SavedModel then takes *raw* serialized tf.Examples: both `serving_default` and
`predict_examples` (input `examples`) parse the raw features, apply the Transform graph
(`TFTransformOutput.transform_features_layer()`) and call the verified light export's
`serving_default`; outputs are `probabilities` and `logits` as without Transform.
Supported transformed outputs: dense or sparse/ragged tensors with at most one value per
row, of dtype string, int64 or float32. `preprocessing_fn` below is a generic example.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import tensorflow as tf
import yaml

from rocketctr.config.core import Config, ConfigError, load_config

log = logging.getLogger("rocketctr")

DEFAULT_CONFIG = "default"
DEFAULT_HASH_BUCKETS = 10_000
DERIVED_SCHEMA_FILE = "tfx_schema.yaml"  # written to model_run_dir when derived from TFMD
EXPORT_FILE = "tfx_export.json"  # in model_run_dir: where the light net went, and its check
_CUSTOM_CONFIG_KEYS = {
    "schema", "config", "overrides", "label", "hash_buckets", "dense", "privileged", "force",
}  # fmt: skip
# TFMD FeatureType values (tensorflow_metadata schema.proto): BYTES=1, INT=2, FLOAT=3.
_TFMD_BYTES, _TFMD_INT, _TFMD_FLOAT = 1, 2, 3
_TFMD_DTYPES = {_TFMD_BYTES: tf.string, _TFMD_INT: tf.int64, _TFMD_FLOAT: tf.float32}


# ------------------------------------------------------------------------------- run_fn
def run_fn(fn_args: Any) -> None:
    """TFX Trainer entry point: trains, evaluates, and writes the light net to serving_model_dir.

    Args:
        fn_args: `tfx.components.FnArgs` (see the module docstring for the fields read).
    """
    from rocketctr import serving
    from rocketctr.training.train import export_trained, summary, train

    custom = dict(fn_args.custom_config or {})
    unknown = sorted(set(custom) - _CUSTOM_CONFIG_KEYS)
    if unknown:
        raise ConfigError(
            f"Unknown custom_config key(s) {unknown}. Known keys: {sorted(_CUSTOM_CONFIG_KEYS)}"
        )
    run_dir = Path(fn_args.model_run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    transform_dir = getattr(fn_args, "transform_graph_path", None) or getattr(
        fn_args, "transform_output", None
    )
    tft_output = _load_transform_output(transform_dir) if transform_dir else None
    tfmd = None
    if tft_output is not None:
        tfmd = tft_output.transformed_metadata.schema
    elif fn_args.schema_path:
        tfmd = read_tfmd_schema(fn_args.schema_path)

    schema_ref = resolve_schema(custom, tfmd, run_dir)
    config = resolve_config(custom, schema_ref, fn_args.train_steps)
    result = train(config, fn_args.train_files, fn_args.eval_files, run_dir, verbose=2)
    print(summary(result))
    if not result.is_chief:  # multi-worker: only the chief exports
        return

    schema = result.schema
    example_dtypes = training_example_dtypes(schema, fn_args.train_files, tfmd)
    rows = serving.eval_rows(schema, fn_args.eval_files, config.train.bad_rows)
    with tempfile.TemporaryDirectory(prefix="rocketctr-export-") as tmp:
        version_dir = export_trained(
            result, fn_args.eval_files, tmp, example_dtypes=example_dtypes, example_rows=rows,
            metadata={"tfx": {"transform_graph": transform_dir}},
            force=bool(custom.get("force", False)),
        )  # fmt: skip
        if version_dir is None:
            raise ConfigError("Nothing to export: TFX's Pusher needs the light net.")
        final = Path(tmp) / "tfx"
        save_for_tfx(version_dir, final, example_dtypes, tft_output, schema.label)
        if tft_output is None:
            verify_for_tfx(final, result.model, rows[0], example_dtypes)
        copy_tree(final, fn_args.serving_model_dir)
    record = {
        "serving_model_dir": str(fn_args.serving_model_dir),
        "schema": schema.source,
        "example_dtypes": {c: tf.as_dtype(d).name for c, d in example_dtypes.items()},
        "transform_graph": transform_dir,
        "metrics": result.metrics,
    }
    (run_dir / EXPORT_FILE).write_text(json.dumps(record, indent=2, sort_keys=True))
    log.info("Light net written to %s", fn_args.serving_model_dir)


# ----------------------------------------------------------------------------- schemas
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
        tfmd_schema, custom["label"], hash_buckets=custom.get("hash_buckets", DEFAULT_HASH_BUCKETS),
        dense=custom.get("dense", ()), privileged=custom.get("privileged", ()),
    )  # fmt: skip
    path = run_dir / DERIVED_SCHEMA_FILE
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    parse_schema(data, source=str(path))  # fail here, naming the file, if it is invalid
    return str(path.resolve())


def resolve_config(custom: Mapping[str, Any], schema_ref: str, train_steps: int | None) -> Config:
    """custom_config["config"] + {"schema": schema_ref} + custom_config["overrides"], and
    `train_steps` (when set) as one epoch of that many steps."""
    config = load_config(str(custom.get("config") or DEFAULT_CONFIG))
    overrides = dict(custom.get("overrides") or {})
    if not isinstance(custom.get("overrides") or {}, Mapping):
        raise ConfigError(
            f"custom_config['overrides'] must be a mapping. Received: {custom['overrides']!r}"
        )
    overrides["schema"] = schema_ref
    if train_steps:
        overrides.update({"train.steps_per_epoch": int(train_steps), "train.num_epochs": 1})
    return config.replace(overrides)


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


# ----------------------------------------------------------------------------- Transform
def _load_transform_output(path: str):
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


# ------------------------------------------------------------------------------- files
def copy_tree(source: str | Path, destination: str | Path) -> None:
    """Copies a directory's contents into `destination` (local or any tf.io.gfile scheme)."""
    source, destination = str(source), str(destination)
    tf.io.gfile.makedirs(destination)
    for directory, _, files in tf.io.gfile.walk(source):
        relative = directory[len(source) :].lstrip("/")
        target = f"{destination}/{relative}" if relative else destination
        tf.io.gfile.makedirs(target)
        for name in files:
            tf.io.gfile.copy(f"{directory}/{name}", f"{target}/{name}", overwrite=True)
