"""A run's data: the training stream and eval rows `model.fit` reads (parameter-server
workers build their own), and the checks of the files before any model is built."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import tensorflow as tf
import tf_keras

from rocketctr.config.core import Config, ConfigError
from rocketctr.data import BadRowError, BadRowReport, make_dataset
from rocketctr.features.file_layout import check_layout
from rocketctr.features.schema import Schema
from rocketctr.training import distribute
from rocketctr.training.codistill import Codistillation, CodistillReplica, for_replica
from rocketctr.training.resume import DataPosition, skip_trained


@dataclass
class Inputs:
    """A run's data, as `make_inputs` builds it.

    Attributes:
        fit_data: model.fit's `x` and `validation_data`.
        eval_ds: the eval rows, for the final evaluation.
        position: where the training stream stands (resume moves it).
        one_pass: epochs are passes over the files (no train.steps_per_epoch).
        mid_epoch_backups: whether backups can be taken within an epoch.
        codistill: this replica's codistillation callback (its `teacher` too), or None.
        train_report, eval_report: the bad rows read.
    """

    fit_data: dict
    eval_ds: tf.data.Dataset
    position: DataPosition
    one_pass: bool
    mid_epoch_backups: bool
    codistill: Codistillation | None
    train_report: BadRowReport
    eval_report: BadRowReport


def make_inputs(
    config: Config,
    schema: Schema,
    train_patterns: Sequence[str],
    eval_patterns: Sequence[str],
    strategy: tf.distribute.Strategy,
    replica: CodistillReplica | None,
) -> Inputs:
    """The training stream (shuffled, this replica's share, resumable) and the eval rows."""
    t = config.train
    train_report, eval_report = BadRowReport(), BadRowReport()
    one_pass = t.steps_per_epoch is None
    position = DataPosition()

    def train_dataset(
        report: BadRowReport | None = None, first_pass: tf.Variable | None = None
    ) -> tf.data.Dataset:
        return make_dataset(
            schema,
            train_patterns,
            t.batch_size,
            bad_rows=t.bad_rows,
            shuffle=True,
            shuffle_buffer_rows=t.shuffle_buffer_rows,
            seed=t.seed,
            num_epochs=1 if one_pass else None,
            first_pass=first_pass,
            report=report,
        )

    train_ds = train_dataset(train_report, position.first_pass)
    train_ds, codistill = for_replica(config, schema, replica, train_ds)
    train_ds = skip_trained(train_ds, position.skip)
    eval_ds = make_dataset(
        schema, eval_patterns, t.batch_size, bad_rows=t.bad_rows, report=eval_report
    )
    if strategy.num_replicas_in_sync > 1:
        # Batches are global; Keras splits them across replicas. Workers each read all files
        # and keep their share of rows (files are few and large in CTR data).
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = (
            tf.data.experimental.AutoShardPolicy.DATA
        )
        train_ds, eval_ds = train_ds.with_options(options), eval_ds.with_options(options)
    fit_data, mid_epoch_backups = _fit_inputs(strategy, train_ds, eval_ds, train_dataset, t)
    return Inputs(
        fit_data,
        eval_ds,
        position,
        one_pass,
        mid_epoch_backups,
        codistill,
        train_report,
        eval_report,
    )


def _fit_inputs(
    strategy: tf.distribute.Strategy, train_ds, eval_ds, make_train_ds, t
) -> tuple[dict, bool]:
    """model.fit's data arguments, and whether mid-epoch backups can be taken.

    Under ParameterServerStrategy the chief only coordinates: each worker builds its own
    pipeline through a DatasetCreator and keeps every N-th batch (N workers); an epoch needs a
    fixed `steps_per_epoch`; workers run steps asynchronously, so state is saved at epoch
    ends only; validation runs on the chief after fit (`evaluate_towers`).
    """
    if not distribute.is_parameter_server(strategy):
        return {"x": train_ds, "validation_data": eval_ds}, True
    if t.steps_per_epoch is None or t.bad_rows != "error":
        raise ConfigError(
            "train.strategy parameter_server needs train.steps_per_epoch (workers stream "
            "without end) and train.bad_rows 'error' (skip counters live on the chief). "
            f"Received: steps_per_epoch={t.steps_per_epoch}, bad_rows={t.bad_rows!r}"
        )

    def dataset_fn(context: tf.distribute.InputContext) -> tf.data.Dataset:
        return make_train_ds().shard(context.num_input_pipelines, context.input_pipeline_id)

    creator = tf_keras.utils.experimental.DatasetCreator(dataset_fn)
    return {"x": creator, "validation_data": None}, False


def check_inputs(schema: Schema, patterns: Sequence[str], what: str, bad_rows: str) -> None:
    """Checks the layout of `patterns` (`check_layout`) and reads up to their first usable
    row, before any model is built.

    A file that does not match the schema (another delimiter, a header, an encoding, a bad
    label) fails here, in a second rather than after the model is built; under
    bad_rows="error" so does a malformed row of the first chunk; inputs without one usable
    row fail under either policy.

    Raises:
        LayoutError: a file whose first lines do not have the schema's layout.
        BadRowError: no usable row; the message names the files and what was read.
        tf.errors.InvalidArgumentError: a malformed row under "error", naming file:line.
    """
    check_layout(schema, patterns, bad_rows)
    report = BadRowReport()
    for _ in make_dataset(schema, patterns, 1, bad_rows=bad_rows, report=report).take(1):
        return
    read, skipped = report.rows_read(), report.skipped()
    files = ", ".join(list(read)[:3]) + (f" and {len(read) - 3} more" if len(read) > 3 else "")
    if sum(skipped.values()):
        raise BadRowError(f"No {what} rows: {report.summary()}")
    raise BadRowError(
        f"No {what} rows: {files} {'holds' if len(read) == 1 else 'hold'} no data row."
    )


def check_both_classes(schema: Schema, patterns: Sequence[str], config: Config) -> None:
    """Refuses, before training, eval rows of one class: no AUC can select on them (one
    pass over the labels; its rows are not counted in the run's bad-row report).

    Raises:
        ConfigError: naming the files, their rows and the way out.
    """
    t = config.train
    eval_ds = make_dataset(
        schema, patterns, t.batch_size, bad_rows=t.bad_rows, report=BadRowReport()
    )
    rows, positives = eval_ds.map(lambda *batch: tf.reshape(batch[1], [-1])).reduce(
        (tf.constant(0, tf.int64), tf.constant(0.0, tf.float64)),
        lambda acc, y: (
            acc[0] + tf.size(y, out_type=tf.int64),
            acc[1] + tf.reduce_sum(tf.cast(y, tf.float64)),
        ),
    )
    rows, positives = int(rows), float(positives)
    if 0 < positives < rows:
        return
    kind = "positive" if positives else "negative"
    raise ConfigError(
        f"The eval data {list(patterns)} hold one class only ({rows:,} rows, all {kind}): no "
        f"AUC can be measured on them, so train.selection_metric {t.selection_metric!r} "
        "cannot select an epoch. Give eval rows of both classes, or select on light_bce."
    )
