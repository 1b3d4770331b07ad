"""The training job: data -> co-trained model -> checkpoints, TensorBoard, metrics table.

Running the same job twice on the same model dir resumes from the last checkpoint instead
of starting over; a model dir whose saved config differs from the requested one is refused.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import tensorflow as tf
import tf_keras

from rocketctr.config.core import Config, ConfigError
from rocketctr.features import statistics as feature_stats
from rocketctr.features.schema import Schema, load_schema
from rocketctr.files import write_atomically
from rocketctr.model import precision
from rocketctr.model.cotrain import CoTrainModel, build_model
from rocketctr.runs.rundir import (
    BACKUP_DIR,
    BEST_DIR,
    CHECKPOINT_DIR,
    HISTORY_FILE,
    METRICS_FILE,
    RunFileError,
    RunPosition,
    checkpoint_step,
    hold,
    read_run_file,
    record_eval_patterns,
    set_checkpoint_aside,
)
from rocketctr.runs.selected import best_epoch, selection_monitor
from rocketctr.scoring.evaluation import run_towers, score_at_best
from rocketctr.scoring.frontier import light_within_budget
from rocketctr.scoring.metrics import format_table, tower_metrics
from rocketctr.training import distribute
from rocketctr.training.codistill import CodistillReplica
from rocketctr.training.health import DivergenceGuard, TrainingDiverged
from rocketctr.training.inputs import check_both_classes, check_inputs, make_inputs
from rocketctr.training.resume import (
    BackupSaver,
    CheckpointManager,
    EpochSaver,
    prepare_model_dir,
    resolved_config,
    restore_for_training,
    saved_states,
    stop_on_signals,
)
from rocketctr.training.selection import Selection
from rocketctr.training.tensorboard import BatchTensorBoard
from rocketctr.training.two_stage import load_teacher

log = logging.getLogger("rocketctr")


@dataclass
class TrainResult:
    model: CoTrainModel
    schema: Schema
    metrics: dict[str, dict[str, float]]
    initial_epoch: int  # > 0 when the run resumed from a checkpoint
    bad_rows: str
    is_chief: bool = True  # only the chief writes metrics and exports
    selected_epoch: int | None = None  # the epoch whose weights were kept (model selection)
    history: list[dict] = field(default_factory=list)  # HISTORY_FILE's records, all epochs
    model_dir: Path | None = None


def _read_history(path: Path, repair: bool) -> list[dict]:
    """The run's per-epoch records; the chief (`repair`) sets a damaged file aside with a
    one-line warning."""
    if not path.exists():
        return []
    try:
        return read_run_file(path)
    except RunFileError as e:
        if not repair:
            return []
        aside = path.with_name(path.name + ".damaged")
        os.replace(path, aside)
        print(f"WARNING: {e} Moved it to {aside}; the per-epoch history restarts here.")
        return []


# Embedding optimizers whose every step writes every row of the tables, not only the rows
# the batch read: tf_keras Adam decays both moments of all rows, Ftrl makes the gradient dense.
DENSE_TABLE_OPTIMIZERS = ("adam", "ftrl")
DENSE_TABLE_WARN_ROWS = 1_000_000


def warn_dense_table_updates(config: Config, table_rows: int) -> None:
    """One warning line when `train.embedding_optimizer` updates every row of a table of
    more than DENSE_TABLE_WARN_ROWS rows on every step."""
    name = config.train.embedding_optimizer.name
    if name not in DENSE_TABLE_OPTIMIZERS or table_rows <= DENSE_TABLE_WARN_ROWS:
        return
    print(
        f"WARNING: train.embedding_optimizer {name} updates all {table_rows:,} rows of the "
        "embedding table on every step, not only the rows the batch read (adam at 10M rows: "
        "4.3x slower per step than adagrad or lazy_adam, and 2.7 GB more RAM); use "
        "lazy_adam (Adam on the rows read) or adagrad."
    )


def evaluate_towers(
    model: CoTrainModel,
    dataset: tf.data.Dataset,
    user_column: str | None,
    best_dir: str | Path | None = None,
    history: list[dict] | None = None,
) -> dict[str, dict[str, float]]:
    """Exact metrics (`tower_metrics`) of each tower on a whole dataset; `user_column`
    (the schema's user id, or None) groups rows for GAUC. With `best_dir` and the run's
    `history`, each light net of several is scored at its own best epoch."""
    towers = run_towers(model)
    scores = score_at_best(model, dataset, towers, best_dir, history or [])
    users = scores.users if user_column else None
    return {t: tower_metrics(scores.labels, scores.probs(t), users) for t in towers}


def train(
    config: Config,
    train_patterns: Sequence[str],
    eval_patterns: Sequence[str],
    model_dir: str | Path,
    *,
    verbose: int | str = "auto",
    replica: CodistillReplica | None = None,
) -> TrainResult:
    """Trains (or resumes) a run and evaluates both towers on the eval data.

    The chief holds the model dir's lock throughout (`rundir.hold`): a second run on the
    same dir is refused, naming this one.

    Args:
        config: the resolved config.
        train_patterns: file globs of training data.
        eval_patterns: file globs of evaluation data.
        model_dir: where config, checkpoints, TensorBoard logs and metrics go.
        verbose: Keras verbosity (progress bars with "auto").
        replica: this process's place among codistilling replicas (see training/codistill.py).

    Returns:
        The trained model and the booster/light metrics on the eval data.

    Raises:
        RunLockedError: another process is training in `model_dir`.
    """
    config = resolved_config(config)  # a bad method knob is refused before anything is written
    strategy = distribute.make_strategy(config.train.strategy, config.train.table_shards)
    chief = distribute.is_chief(strategy)
    with hold(model_dir) if chief else contextlib.nullcontext():
        try:
            return _train(
                config,
                train_patterns,
                eval_patterns,
                Path(model_dir),
                strategy,
                chief,
                verbose,
                replica,
            )
        except TrainingDiverged as e:
            raise TrainingDiverged(f"{e} {_last_good_state(Path(model_dir))}") from None


def _last_good_state(model_dir: Path) -> str:
    """Where a diverged run can resume from, in one sentence."""
    saved = saved_states(str(model_dir / CHECKPOINT_DIR), str(model_dir / BACKUP_DIR))
    if not saved:
        return f"{model_dir} holds no trained state yet: lower the rate and train again."
    path = saved[-1]
    step = checkpoint_step(path)
    return (
        f"Its last good state, {path} (global step {step:,}), was kept: lower the rate and "
        "train into a new --model_dir, or rerun the same command to resume from it."
    )


def _train(
    config: Config,
    train_patterns: Sequence[str],
    eval_patterns: Sequence[str],
    model_dir: Path,
    strategy: tf.distribute.Strategy,
    chief: bool,
    verbose: int | str,
    replica: CodistillReplica | None,
) -> TrainResult:
    schema = load_schema(config.schema)
    t = config.train
    check_inputs(schema, train_patterns, "training", t.bad_rows)
    check_inputs(schema, eval_patterns, "evaluation", t.bad_rows)
    if chief:
        prepare_model_dir(config, model_dir)
    # Vocabularies, quantiles, moments: the run's stored pass, or a new one before training.
    schema = feature_stats.prepare(schema, model_dir, train_patterns, t.bad_rows, chief)
    tf_keras.utils.set_random_seed(t.seed)
    inputs = make_inputs(config, schema, train_patterns, eval_patterns, strategy, replica)
    with strategy.scope():
        # The light net's teacher: codistillation peers, a finished run's booster (two-stage
        # KD), or by default the co-trained booster.
        codistill = inputs.codistill
        teacher = codistill.teacher if codistill else load_teacher(config)
        if chief:
            print(precision.describe(t.mixed_precision))
        model = build_model(config, schema, teacher=teacher)
        position = RunPosition()
    one_pass, data_position = inputs.one_pass, inputs.position
    checkpoint = position.checkpoint(model)

    def worker_dir(name: str) -> str:
        return distribute.worker_dir(str(model_dir / name), strategy)

    checkpoint_dir, backup_dir = worker_dir(CHECKPOINT_DIR), worker_dir(BACKUP_DIR)

    def restore() -> str | None:
        """Restores the newest readable state and positions the data stream after it."""
        try:
            path = restore_for_training(model, position, checkpoint_dir, backup_dir)
        except RunFileError as e:
            raise ConfigError(str(e)) from None
        if t.steps_per_epoch:
            position.batches_per_epoch.assign(t.steps_per_epoch)
        data_position.move_to(position, one_pass)
        model.resume_epoch_step = int(position.epoch_step.numpy())
        return path

    restored = restore()
    initial_epoch = int(position.epoch.numpy())
    manager = CheckpointManager(
        checkpoint, checkpoint_dir, t.keep_checkpoints, "the epoch checkpoint"
    )
    history_path = model_dir / HISTORY_FILE
    history = _read_history(history_path, repair=chief)
    best_dir = worker_dir(BEST_DIR) if t.restore_best else None

    def selection_from(epoch: int) -> Selection:
        """Model selection, early stopping and decay, replaying the epochs up to `epoch`."""
        kept = [r for r in history if r["epoch"] <= epoch]  # the restored checkpoint's
        return Selection(config, kept, history_path if chief else None, best_dir)

    selection = selection_from(initial_epoch)
    if inputs.mid_epoch_backups:  # a backup every checkpoint_every_steps, and on a signal
        saver = BackupSaver(
            position,
            data_position,
            checkpoint,
            manager,
            one_pass,
            backup_dir,
            t.checkpoint_every_steps,
        )
    else:
        saver = EpochSaver(position, data_position, checkpoint, manager, one_pass)

    trains = initial_epoch < t.num_epochs and not selection.stopped_early
    if trains and selection_monitor(config)[0].endswith("_auc"):
        check_both_classes(schema, eval_patterns, config)  # else no epoch could be selected
    if chief and trains:  # a finished run keeps the eval rows it was trained with
        record_eval_patterns(model_dir, eval_patterns)  # `rocketctr export` checks on them
        warn_dense_table_updates(config, model.processor.num_table_rows)
    if trains:
        fit = functools.partial(
            model.fit,
            **inputs.fit_data,
            epochs=t.num_epochs,
            steps_per_epoch=t.steps_per_epoch,
            verbose=verbose,
        )
        # The divergence guard first: a diverged step or epoch stops before anything is
        # saved. Then selection: an epoch's record and selected weights are written before
        # its checkpoint (see rocketctr/training/selection.py).
        guard = DivergenceGuard(per_step=not distribute.is_parameter_server(strategy))
        others = [
            saver,
            BatchTensorBoard(worker_dir("logs"), update_freq=100),
            *([codistill] if codistill else []),
        ]

        def stoppable():  # under ParameterServerStrategy a signal stops the run as before
            if isinstance(saver, BackupSaver):
                return stop_on_signals(saver)
            return contextlib.nullcontext()

        while True:
            resumed_mid_epoch = int(position.epoch_step.numpy()) > 0
            try:
                with stoppable():
                    fit(
                        initial_epoch=int(position.epoch.numpy()),
                        callbacks=[guard, selection, *others],
                    )
                break
            except ValueError as e:
                # Keras cannot run an epoch with no batch left. A one-pass run resumed from
                # a backup meets one when the backup was taken at its epoch's last batch
                # (killed before it was dropped, see BackupSaver), or when the training
                # files are now shorter than the epoch it was taken in. Set it aside (never
                # delete resumable state), and go on from the state before it.
                if not (resumed_mid_epoch and "Empty logs" in str(e)):
                    raise
            aside = _set_aside_unresumable(restored, position)
            restored = restore()
            if restored is None:
                raise ConfigError(
                    f"{model_dir} has no state left to resume from: the backups that cannot "
                    f"be resumed are in {os.path.dirname(aside)} (see above). Rerun to train "
                    "from the start, or restore the training files they were taken with."
                )
            selection = selection_from(int(position.epoch.numpy()))
    elif selection.stopped_early and initial_epoch < t.num_epochs:
        # Killed after the early stop but before the selected weights were saved as final.
        print(f"The run stopped early at epoch {history[-1]['epoch']}; finishing it.")
        trains = True
    else:
        print(
            f"All {t.num_epochs} epoch(s) already trained in {model_dir}; evaluating "
            f"(its {METRICS_FILE} keeps the evaluation made when it trained)."
        )
    selected_epoch = (
        selection.finish(model, manager, position.epoch, t.num_epochs) if trains else None
    )

    metrics = evaluate_towers(model, inputs.eval_ds, schema.user_id, best_dir, selection.records)
    for tower, values in metrics.items():  # each net's own peak, the booster's too
        peak = best_epoch(selection.records, f"val_{tower}_auc")
        if peak is not None:
            values["best_epoch"] = peak["epoch"]
    bad_rows = "train: " + inputs.train_report.summary() + "\neval: " + inputs.eval_report.summary()
    if chief and trains:  # else: the finished run, maybe on other data
        write_atomically(model_dir / METRICS_FILE, json.dumps(metrics, indent=2, sort_keys=True))
    return TrainResult(
        model,
        schema,
        metrics,
        initial_epoch,
        bad_rows,
        chief,
        selected_epoch,
        selection.records,
        model_dir,
    )


def _set_aside_unresumable(backup: str, position: RunPosition) -> str:
    """Moves a backup whose epoch has no batch left to resume aside, saying why; returns
    where it went."""
    why = (
        f"taken at batch {int(position.epoch_step.numpy()):,} of epoch "
        f"{int(position.epoch.numpy()) + 1}, which the training data no longer reaches (the "
        "files changed?) or which was the epoch's last"
    )
    aside = set_checkpoint_aside(backup, f"Not resumable: {why}.")
    print(
        f"WARNING: backup {backup} cannot be resumed: {why}. Moved it to {aside}; resuming "
        "from the state before it."
    )
    return aside


def export_trained(
    result: TrainResult,
    eval_patterns: Sequence[str],
    export_base: str | Path,
    num_rows: int | None = None,
    *,
    metadata: dict | None = None,
    example_dtypes: dict | None = None,
    example_rows: tuple[dict[str, tf.Tensor], tf.Tensor] | None = None,
    force: bool = False,
) -> Path | None:
    """Exports the light net of a finished run, or says why there is nothing to export.

    The one place the CLI, the TFX trainer and the library decide and make a run's export.
    Its first `num_rows` eval rows (as many as `rocketctr export` uses) feed the parity
    check, the AUC change of a quantized export, and the warmup requests.

    Args:
        result: what `train` returned.
        eval_patterns: the eval file globs it trained with.
        export_base: the directory of numbered versions.
        num_rows: eval rows for the checks and warmup (default `serving.PARITY_ROWS`).
        metadata: more entries for the export's rocketctr.json.
        example_dtypes: see `serving.export_light`.
        example_rows: (features, labels) of those eval rows, if the caller has read them.
        force: publish even when the export gate refuses the net (see serving/gate.py).

    Returns:
        The new version's directory; None (and a line printed saying why) for a worker that
        is not the chief, a booster_only run (nothing is served), or a run that trained
        nothing new when `export_base` already holds a version.
    """
    from rocketctr import serving  # TF Serving protos load only when exporting

    config = result.model.rocket_config
    if not result.is_chief:
        return None
    if config.distill.mode == "booster_only":
        print("booster_only run: the booster is never served, so nothing is exported.")
        return None
    nothing_trained = result.initial_epoch >= config.train.num_epochs
    if nothing_trained and serving.next_version(export_base) > 1:
        print(f"Nothing new to export; the latest version is in {export_base}")
        return None
    # The eval rows' bad-row count was reported by training already.
    rows = example_rows or serving.eval_rows(
        result.schema, eval_patterns, config.train.bad_rows, num_rows or serving.PARITY_ROWS
    )
    model = result.model
    by_budget = config.export.light is None and config.export.latency_budget_ms is not None
    if by_budget and len(model.light_nets) > 1 and result.model_dir is not None:
        aucs = {name: result.metrics[name]["auc"] for name in model.light_nets}
        light_within_budget(model, result.model_dir, result.history, rows[0], aucs)
    return serving.export_light(
        result.model,
        export_base,
        example_features=rows[0],
        example_labels=rows[1],
        metadata={
            "metrics": result.metrics,
            # What `rocketctr evaluate` matches an export to its run's checkpoint by.
            "model_dir": str(result.model_dir.resolve()) if result.model_dir else None,
            "global_step": int(result.model.global_step.numpy()),
            **(metadata or {}),
        },
        example_dtypes=example_dtypes,
        force=force,
    )


def summary(result: TrainResult) -> str:
    return format_table(result.metrics) + "\n" + result.bad_rows
