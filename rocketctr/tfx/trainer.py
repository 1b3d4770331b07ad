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
row, of dtype string, int64 or float32. `rocketctr.tfx.transform.preprocessing_fn` is a
generic example (also importable from here, the path pipelines name).
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import tensorflow as tf

from rocketctr.config.core import Config, ConfigError, load_config
from rocketctr.files import copy_tree
from rocketctr.tfx.schemas import read_tfmd_schema, resolve_schema, training_example_dtypes
from rocketctr.tfx.signatures import save_for_tfx, verify_for_tfx

# `rocketctr.tfx.trainer.preprocessing_fn` is the path pipelines name (Transform's module).
from rocketctr.tfx.transform import load_transform_output, preprocessing_fn  # noqa: F401

log = logging.getLogger("rocketctr")

DEFAULT_CONFIG = "default"
EXPORT_FILE = "tfx_export.json"  # in model_run_dir: where the light net went, and its check
_CUSTOM_CONFIG_KEYS = {
    "schema",
    "config",
    "overrides",
    "label",
    "hash_buckets",
    "dense",
    "privileged",
    "force",
}


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
    tft_output = load_transform_output(transform_dir) if transform_dir else None
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
            result,
            fn_args.eval_files,
            tmp,
            example_dtypes=example_dtypes,
            example_rows=rows,
            metadata={"tfx": {"transform_graph": transform_dir}},
            force=bool(custom.get("force", False)),
        )
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
