"""A TFX pipeline around rocketctr: CSV -> ... -> Trainer (booster + light) -> Evaluator -> Pusher.

    CsvExampleGen -> StatisticsGen -> SchemaGen -> [Transform] -> Trainer -> Evaluator -> Pusher

The Trainer runs `rocketctr.tfx.trainer.run_fn` and hands on the light net only; the
Evaluator computes AUC of that light net with TFMA and blesses it only if AUC > `min_auc`;
the Pusher copies a blessed model to a filesystem directory TF Serving can watch.

    python pipelines/tfx_pipeline.py --data_root data/csv --pipeline_root runs/tfx/root \
        --serving_model_dir runs/tfx/serving --train_steps 200

`create_pipeline` builds the same pipeline for any orchestrator (see pipelines/README.md).
"""

from __future__ import annotations

import os

# Keras 2 (tf_keras) before TFX touches tf.keras; see STYLE.md.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

from typing import Any

import tensorflow_model_analysis as tfma
from absl import app, flags
from tfx import v1 as tfx

RUN_FN = "rocketctr.tfx.trainer.run_fn"
PREPROCESSING_FN = "rocketctr.tfx.transform.preprocessing_fn"


def create_pipeline(
    pipeline_name: str,
    pipeline_root: str,
    data_root: str,
    module_file: str | None,
    serving_model_dir: str,
    metadata_path: str | None,
    schema: str | None,
    config: str,
    train_steps: int | None,
    eval_steps: int | None,
    enable_transform: bool = False,
    min_auc: float = 0.5,
    *,
    label: str = "label",
    overrides: dict[str, Any] | None = None,
    enable_cache: bool = False,
    beam_pipeline_args: list[str] | None = None,
) -> tfx.dsl.Pipeline:
    """Builds the pipeline.

    Args:
        pipeline_name: the pipeline's name in ML Metadata.
        pipeline_root: where components write their artifacts.
        data_root: a directory of CSV files with a header row (CsvExampleGen splits them
            2:1 into train and eval by a hash of each row).
        module_file: a Python file defining `run_fn` (and `preprocessing_fn` for Transform);
            None uses `rocketctr.tfx.trainer` from the installed package.
        serving_model_dir: the directory the Pusher pushes blessed models to.
        metadata_path: a SQLite ML Metadata file; None leaves the metadata connection to
            the orchestrator (Kubeflow and Vertex provide their own).
        schema: a rocketctr schema name or YAML path (format tfrecord) for the Trainer;
            None derives the layout from SchemaGen's schema (see rocketctr.tfx.trainer).
        config: a rocketctr preset name or config YAML path.
        train_steps: total training steps; None trains the config's epochs.
        eval_steps: passed to the Trainer's EvalArgs (rocketctr evaluates the whole split).
        enable_transform: put a Transform component (`preprocessing_fn`) before the Trainer;
            the Trainer then trains on transformed examples and the export applies the
            Transform graph to raw examples.
        min_auc: the Evaluator blesses the model only if its AUC on the eval split is above.
        label: the label column, for the Evaluator and the derived schema.
        overrides: dotted rocketctr config overrides, e.g. {"train.batch_size": 256}.
        enable_cache: reuse the outputs of components whose inputs did not change.
        beam_pipeline_args: Beam options for the Beam-based components.

    Returns:
        The `tfx.dsl.Pipeline`.
    """
    example_gen = tfx.components.CsvExampleGen(input_base=data_root)
    statistics_gen = tfx.components.StatisticsGen(examples=example_gen.outputs["examples"])
    schema_gen = tfx.components.SchemaGen(
        statistics=statistics_gen.outputs["statistics"], infer_feature_shape=False
    )
    components: list[Any] = [example_gen, statistics_gen, schema_gen]

    custom_config: dict[str, Any] = {"config": config, "label": label}
    if schema:
        custom_config["schema"] = schema
    if overrides:
        custom_config["overrides"] = dict(overrides)
    code = {"module_file": module_file} if module_file else {"run_fn": RUN_FN}
    trainer_inputs: dict[str, Any] = {
        "examples": example_gen.outputs["examples"],
        "schema": schema_gen.outputs["schema"],
    }
    if enable_transform:
        transform_code = (
            {"module_file": module_file} if module_file else {"preprocessing_fn": PREPROCESSING_FN}
        )
        transform = tfx.components.Transform(
            examples=example_gen.outputs["examples"],
            schema=schema_gen.outputs["schema"],
            custom_config={"label": label},
            **transform_code,
        )
        components.append(transform)
        trainer_inputs = {
            "examples": transform.outputs["transformed_examples"],
            "transform_graph": transform.outputs["transform_graph"],
        }
    trainer = tfx.components.Trainer(
        **trainer_inputs,
        **code,
        train_args=tfx.proto.TrainArgs(num_steps=train_steps or 0),
        eval_args=tfx.proto.EvalArgs(num_steps=eval_steps or 0),
        custom_config=custom_config,
    )

    eval_config = tfma.EvalConfig(
        model_specs=[
            # The export's serialized-tf.Example signature; it returns a dict, so name the
            # output that holds the click probability.
            tfma.ModelSpec(
                signature_name="predict_examples",
                prediction_key="probabilities",
                label_key=label,
            )
        ],
        slicing_specs=[tfma.SlicingSpec()],
        metrics_specs=[
            tfma.MetricsSpec(
                metrics=[
                    tfma.MetricConfig(class_name="ExampleCount"),
                    tfma.MetricConfig(class_name="BinaryCrossentropy"),
                    tfma.MetricConfig(
                        class_name="AUC",
                        threshold=tfma.MetricThreshold(
                            value_threshold=tfma.GenericValueThreshold(
                                lower_bound={"value": min_auc}
                            )
                        ),
                    ),
                ]
            )
        ],
    )
    evaluator = tfx.components.Evaluator(
        examples=example_gen.outputs["examples"],
        model=trainer.outputs["model"],
        eval_config=eval_config,
    )
    pusher = tfx.components.Pusher(
        model=trainer.outputs["model"],
        model_blessing=evaluator.outputs["blessing"],
        push_destination=tfx.proto.PushDestination(
            filesystem=tfx.proto.PushDestination.Filesystem(base_directory=serving_model_dir)
        ),
    )
    components += [trainer, evaluator, pusher]
    return tfx.dsl.Pipeline(
        pipeline_name=pipeline_name,
        pipeline_root=pipeline_root,
        components=components,
        enable_cache=enable_cache,
        metadata_connection_config=(
            tfx.orchestration.metadata.sqlite_metadata_connection_config(metadata_path)
            if metadata_path
            else None
        ),
        beam_pipeline_args=beam_pipeline_args or ["--direct_num_workers=1"],
    )


FLAGS = flags.FLAGS


def define_flags() -> None:
    """Defines the command-line flags (only when run as a script, so importing
    `create_pipeline` into another absl program defines nothing)."""
    flags.DEFINE_string("pipeline_name", "rocketctr", "Pipeline name in ML Metadata.")
    flags.DEFINE_string("data_root", None, "Directory of CSV files with a header row.")
    flags.DEFINE_string("pipeline_root", None, "Where components write their artifacts.")
    flags.DEFINE_string("serving_model_dir", None, "Where the Pusher pushes blessed models.")
    flags.DEFINE_string(
        "metadata_path", None, "SQLite ML Metadata file (default: <root>/metadata.db)."
    )
    flags.DEFINE_string("module_file", None, "Optional module file with run_fn/preprocessing_fn.")
    flags.DEFINE_string("schema", "criteo_tfx", "rocketctr schema name/YAML; '' derives it.")
    flags.DEFINE_string("config", "criteo", "rocketctr preset name or config YAML.")
    flags.DEFINE_string("label", "label", "Label column.")
    flags.DEFINE_integer(
        "train_steps", None, "Total training steps (default: the config's epochs)."
    )
    flags.DEFINE_integer("eval_steps", None, "Eval steps (rocketctr evaluates the whole split).")
    flags.DEFINE_bool("enable_transform", False, "Add a Transform component before the Trainer.")
    flags.DEFINE_float("min_auc", 0.5, "Bless (and push) only a model with AUC above this.")
    flags.DEFINE_bool("enable_cache", False, "Reuse outputs of unchanged components.")


def main(argv: list[str]) -> None:
    del argv
    root = FLAGS.pipeline_root
    pipeline = create_pipeline(
        pipeline_name=FLAGS.pipeline_name,
        pipeline_root=root,
        data_root=FLAGS.data_root,
        module_file=FLAGS.module_file,
        serving_model_dir=FLAGS.serving_model_dir,
        metadata_path=FLAGS.metadata_path or os.path.join(root, "metadata.db"),
        schema=FLAGS.schema or None,
        config=FLAGS.config,
        train_steps=FLAGS.train_steps,
        eval_steps=FLAGS.eval_steps,
        enable_transform=FLAGS.enable_transform,
        min_auc=FLAGS.min_auc,
        label=FLAGS.label,
        enable_cache=FLAGS.enable_cache,
    )
    tfx.orchestration.LocalDagRunner().run(pipeline)


if __name__ == "__main__":
    define_flags()
    flags.mark_flags_as_required(["data_root", "pipeline_root", "serving_model_dir"])
    app.run(main)
