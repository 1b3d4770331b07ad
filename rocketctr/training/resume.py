"""Saving a run as it trains, and resuming a killed run exactly where it was saved.

A run saves its whole state (model, optimizer slots, `RunPosition`) at every epoch end
(`checkpoints/`, three kept, read by export and evaluation) and every
`train.checkpoint_every_steps` global steps within an epoch (`backup/`, two kept, removed
when the run ends normally). Running the same command again restores the newest state
that reads back whole, backup or epoch checkpoint, and continues from it:

- The training stream replays the resumed epoch's order (the shuffle of pass p is a
  function of `(seed, p)` alone, see `make_dataset`) and skips the batches already
  trained: they are read and parsed again, not trained. With a fixed `steps_per_epoch`
  the stream is one sequence over all epochs, so every batch trained before is skipped.
- Keras counts the resumed epoch's batches on from the backup's, so every epoch ends with
  as many batches as an uninterrupted run's, and the global step continues from the backup.

So a kill costs the steps since the last backup and the time to re-read the data trained
so far in the epoch; no batch is lost or trained twice.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import tensorflow as tf
import tf_keras
from tensorflow.python.ops.resource_variable_ops import ResourceVariable

from rocketctr.config.core import Config, ConfigError, save_config
from rocketctr.distill.base import resolve_methods
from rocketctr.features.schema import load_schema
from rocketctr.files import naming_disk_full, variable_bytes
from rocketctr.runs.feature_format import has_trained_state, prepare_run_format
from rocketctr.runs.rundir import (
    CONFIG_FILE,
    RunFileError,
    RunPosition,
    checkpoint_paths,
    checkpoint_step,
    drop_checkpoint,
    prepare_run_schema,
    read_run_file,
    remove_temp_dirs,
    repair_index,
    restore_newest,
)
from rocketctr.training.health import check_state

BACKUPS_KEPT = 2  # a damaged newest backup falls back to the one before
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class CheckpointManager(tf.train.CheckpointManager):
    """A `tf.train.CheckpointManager` whose `save`, on a full disk, removes the temporary it
    half-wrote and raises `DiskFullError` naming the checkpoint and the space it needs (its
    variables' bytes); the checkpoints saved before are left as they were.

    Args:
        checkpoint, directory, max_to_keep: as for `tf.train.CheckpointManager`.
        what: what a checkpoint of this manager is, for the message ("the epoch checkpoint").
    """

    def __init__(
        self, checkpoint: tf.train.Checkpoint, directory: str, max_to_keep: int, what: str
    ) -> None:
        super().__init__(checkpoint, directory, max_to_keep)
        self.saved, self.what = checkpoint, what

    def save(self, checkpoint_number=None, **kwargs) -> str:
        name = "ckpt" if checkpoint_number is None else f"ckpt-{checkpoint_number}"
        with naming_disk_full(
            os.path.join(self.directory, name),
            self.what,
            lambda: variable_bytes(self.saved),
            cleanup=lambda: remove_temp_dirs(self.directory),
        ):
            return super().save(checkpoint_number=checkpoint_number, **kwargs)


def write_checkpoint(checkpoint: tf.train.Checkpoint, path: str, what: str) -> str:
    """`checkpoint.write(path)`, a full disk met as by `CheckpointManager.save`."""
    with naming_disk_full(
        path,
        what,
        lambda: variable_bytes(checkpoint),
        cleanup=lambda: remove_temp_dirs(os.path.dirname(path)),
    ):
        return checkpoint.write(path)


class TrainingStopped(RuntimeError):
    """A signal stopped training after a step whose state was saved; one-line message."""


class DataPosition:
    """Where the next iteration over the training data starts; read when one starts.

    Attributes:
        first_pass: the pass (epoch) whose shuffle order the iteration starts with.
        skip: batches at the iteration's start that were trained before (resume only).
    """

    def __init__(self) -> None:
        # Host-side like the bad-row counters: never mirrored by a tf.distribute scope.
        with tf.init_scope():
            self.first_pass = ResourceVariable(0, dtype=tf.int64, trainable=False)
            self.skip = ResourceVariable(0, dtype=tf.int64, trainable=False)

    def move_to(self, position: RunPosition, one_pass: bool) -> None:
        """Positions the stream at `position`: its epoch, after its trained batches."""
        epoch, step = int(position.epoch.numpy()), int(position.epoch_step.numpy())
        if one_pass:  # Keras starts one iteration per epoch
            self.first_pass.assign(epoch)
            self.skip.assign(step)
        else:  # one iteration over all epochs
            self.first_pass.assign(0)
            self.skip.assign(epoch * int(position.batches_per_epoch.numpy()) + step)


def skip_trained(dataset: tf.data.Dataset, skip: tf.Variable) -> tf.data.Dataset:
    """`dataset` without its first `skip` batches, `skip` read as each batch passes.

    (A `flat_map` around `dataset.skip` would read `skip` once per iteration too, but
    costs a sixth of the pipeline's throughput.) `skip` changes only between iterations.
    """
    return (
        dataset.enumerate()
        .filter(lambda index, batch: index >= skip.read_value())
        .map(lambda index, batch: batch)
    )


def saved_states(checkpoint_dir: str, backup_dir: str) -> list[str]:
    """A run's epoch checkpoints and backups, oldest first by global step; at a tie the
    epoch checkpoint is the newer (its epoch is complete)."""
    candidates = sorted(
        [(checkpoint_step(p), 1, p) for p in checkpoint_paths(checkpoint_dir)]
        + [(checkpoint_step(p), 0, p) for p in checkpoint_paths(backup_dir)]
    )
    return [p for _, _, p in candidates]


def restore_for_training(
    model: tf.Module, position: RunPosition, checkpoint_dir: str, backup_dir: str
) -> str | None:
    """Restores the newest readable state of a run, from its backups or epoch checkpoints.

    A damaged `checkpoint` index file is rebuilt from the files on disk first, so intact
    checkpoints are never overwritten by a run that believes it starts afresh.

    Returns:
        The restored path, or None for a fresh run.
    """
    for directory in (checkpoint_dir, backup_dir):
        for path in remove_temp_dirs(directory):
            print(f"Removed {path}, left by a save that did not finish.")
        repair_index(directory)
    path = restore_newest(model, position, saved_states(checkpoint_dir, backup_dir))
    if path is not None:
        kind = "backup" if path.startswith(backup_dir.rstrip("/") + "/") else "checkpoint"
        step = checkpoint_step(path)
        print(f"Resuming from {kind} {path} ({position.describe()}, global step {step:,}).")
    return path


class EpochSaver(tf_keras.callbacks.Callback):
    """Saves a checkpoint at each epoch end and moves the training stream to the next epoch.

    Args:
        position: the run's position, saved with the model.
        data: the training stream's position.
        checkpoint: what a checkpoint saves (model and `position`).
        checkpoints: the epoch checkpoints' manager.
        one_pass: epochs are one pass over the data, not a fixed `steps_per_epoch`.
    """

    def __init__(
        self,
        position: RunPosition,
        data: DataPosition,
        checkpoint: tf.train.Checkpoint,
        checkpoints: tf.train.CheckpointManager,
        one_pass: bool,
    ) -> None:
        super().__init__()
        self.position, self.data, self.checkpoint = position, data, checkpoint
        self.checkpoints, self.one_pass = checkpoints, one_pass

    def on_epoch_end(self, epoch, logs=None) -> None:
        self.position.epoch.assign(epoch + 1)
        self.position.epoch_step.assign(0)
        self.checkpoints.save(checkpoint_number=int(self.model.global_step.numpy()))
        self.data.move_to(self.position, self.one_pass)


class BackupSaver(EpochSaver):
    """An `EpochSaver` that also saves a backup every `every_steps` global steps (never, with
    0), and when asked to stop (`stop_signal`, set by `stop_on_signals`): after the current
    step it saves a backup and raises `TrainingStopped`.

    No backup is kept at an epoch's last batch: resumed, that epoch would have no batch
    left, which Keras cannot run. With one-pass epochs the last batch is known only when
    the data runs out, so a backup taken there is removed as the epoch ends (validation
    and the epoch checkpoint follow); the previous backup or checkpoint then resumes.
    (Batch-level callbacks are refused under ParameterServerStrategy: it runs steps
    asynchronously, so there is no one step's state to back up; use `EpochSaver` there.)

    Args:
        backup_dir: where backups go.
        every_steps: backup cadence in global steps.
        (the others as for `EpochSaver`)
    """

    def __init__(
        self, position, data, checkpoint, checkpoints, one_pass, backup_dir: str, every_steps: int
    ) -> None:
        super().__init__(position, data, checkpoint, checkpoints, one_pass)
        # The batch hook never reads `logs`: without this, Keras copies every batch's logs
        # to numpy for it (benchmarks/batch_hooks.py times the hook).
        self._supports_tf_logs = True
        self.backup_dir, self.every_steps = backup_dir, every_steps
        self.backups = self._backup_manager()
        self.step = self.batches = self.epoch_length = 0
        self.last_backup: tuple[int, str] | None = None  # (batches of its epoch, path)
        self.stop_signal: str | None = None  # a signal's name: stop after this step

    def _backup_manager(self) -> tf.train.CheckpointManager:
        return CheckpointManager(
            self.checkpoint, self.backup_dir, BACKUPS_KEPT, "the mid-epoch backup"
        )

    def on_train_begin(self, logs=None) -> None:
        self.step = int(self.model.global_step.numpy())
        self.epoch_length = int(self.position.batches_per_epoch.numpy())

    def on_epoch_begin(self, epoch, logs=None) -> None:
        self.batches, self.last_backup = int(self.position.epoch_step.numpy()), None

    def on_train_batch_end(self, batch, logs=None) -> None:
        self.step += 1
        self.batches = batch + 1  # Keras numbers a resumed epoch's batches on from the backup
        due = self.every_steps > 0 and self.step % self.every_steps == 0
        if due and (self.epoch_length == 0 or self.batches < self.epoch_length):
            self._save_backup()
        if self.stop_signal is not None:
            saved = self.last_backup is not None and self.last_backup[0] == self.batches
            path = self.last_backup[1] if saved else self._save_backup()
            raise TrainingStopped(
                f"Stopped by {self.stop_signal} at global step {self.step:,}, after saving "
                f"{path}: rerun the same command to resume from it."
            )

    def _save_backup(self) -> str:
        check_state(self.model, f"the backup at global step {self.step:,}")
        self.position.epoch_step.assign(self.batches)
        path = self.backups.save(checkpoint_number=self.step)
        self.last_backup = (self.batches, path)
        return path

    def on_test_begin(self, logs=None) -> None:
        self._drop_backup_at_epoch_end()  # validation runs after the epoch's last batch

    def on_epoch_end(self, epoch, logs=None) -> None:
        self._drop_backup_at_epoch_end()
        self.epoch_length = self.batches
        self.position.batches_per_epoch.assign(self.batches)
        super().on_epoch_end(epoch, logs)

    def on_train_end(self, logs=None) -> None:
        # Reached only when fit returns normally (an exception skips it): the epoch
        # checkpoints now hold everything, and a stale backup must not resume a later run.
        # Under multi_worker the chief's directory holds the others': one may be gone.
        with contextlib.suppress(tf.errors.NotFoundError):
            tf.io.gfile.rmtree(self.backup_dir)

    def _drop_backup_at_epoch_end(self) -> None:
        if self.last_backup is None or self.last_backup[0] != self.batches:
            return
        drop_checkpoint(self.last_backup[1])
        self.backups = self._backup_manager()  # re-read: the manager would list it still
        self.last_backup = None


@contextlib.contextmanager
def stop_on_signals(saver: BackupSaver) -> Iterator[None]:
    """While training, SIGTERM (what schedulers send before SIGKILL) and SIGINT (Ctrl-C) ask
    `saver` to save a backup after the current step and stop; a second signal acts at once
    (SIGTERM terminates, SIGINT interrupts). Outside the main thread, signals are left as
    they are."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.getsignal(s) for s in STOP_SIGNALS}

    def on_signal(signum, frame) -> None:
        saver.stop_signal = signal.Signals(signum).name
        print(
            f"\n{saver.stop_signal}: saving a backup after this step, then stopping "
            "(send it again to stop at once).",
            flush=True,
        )
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)

    for s in STOP_SIGNALS:
        signal.signal(s, on_signal)
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


# Fields that may change between runs on one model dir: they do not change what the
# checkpoint means (e.g. raise num_epochs to train longer).
# (`schema` names the schema file; what the file says is compared on its own, see
# rundir.prepare_run_schema.)
RESUMABLE_KEYS = frozenset(
    {
        "train.num_epochs",
        "train.bad_rows",
        "train.checkpoint_every_steps",
        "train.strategy",
        "train.table_shards",
        "train.mixed_precision",  # the towers' compute; every variable stays float32
        "train.keep_checkpoints",
        "schema",
        "export.embedding_dtype",
        "export.min_auc",
        "export.max_auc_drop",
        "export.latency_budget_ms",
        "export.latency_batch",
    }
)


def _flatten(data: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in data.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


# Sections of named entries (light nets, distillation methods): an entry only one config
# has is named once, not knob by knob.
_NAMED_ENTRY = re.compile(r"(model\.lights|distill\.methods)\.[^.]+")


def _config_changes(saved: dict, wanted: dict, keys: list[str]) -> list[str]:
    """'key: old -> new' of each key that differs, an entry only one side has as one item."""
    changes = []
    for key in keys:
        entry = _NAMED_ENTRY.match(key)
        if entry:
            side = [k for k in saved if k.startswith(entry[0] + ".")]
            other = [k for k in wanted if k.startswith(entry[0] + ".")]
            if not side or not other:
                item = f"{entry[0]}: {'added' if not side else 'removed'}"
                changes += [] if item in changes else [item]
                continue
        changes.append(f"{key}: {saved.get(key)!r} -> {wanted.get(key)!r}")
    return changes


def resolved_config(config: Config) -> Config:
    """The config with every distillation method's knobs checked and complete."""
    return dataclasses.replace(config, distill=resolve_methods(config.distill))


def prepare_model_dir(config: Config, model_dir: Path) -> None:
    """Creates the model dir and records config and schema; refuses conflicting ones."""
    model_dir.mkdir(parents=True, exist_ok=True)
    prepare_run_format(model_dir, config.schema, ConfigError)  # refuses an old hashing
    path = model_dir / CONFIG_FILE
    # A dir whose run never trained (a failed start) holds nothing to protect.
    started = has_trained_state(model_dir)
    if path.exists() and started:
        try:
            saved_data = read_run_file(path)
        except RunFileError as e:
            raise ConfigError(
                f"{e} It records the config this run was trained with: restore it, or delete "
                "it to resume with the config given now (the checkpoints must match it)."
            ) from None
        # Fields added since that run take their defaults, which is what it used. If a field
        # was removed since, compare the raw keys, which names it.
        with contextlib.suppress(ConfigError):
            saved_data = resolved_config(Config.from_dict(saved_data)).to_dict()
        saved = _flatten(saved_data)
        wanted = _flatten(config.to_dict())
        diff = sorted(
            k
            for k in set(saved) | set(wanted)
            if saved.get(k) != wanted.get(k) and k not in RESUMABLE_KEYS
        )
        if diff:
            details = ", ".join(_config_changes(saved, wanted, diff))
            raise ConfigError(
                f"{model_dir} holds a run with a different config ({details}). Use a new "
                "--model_dir, or the same config to resume."
            )
    try:
        prepare_run_schema(model_dir, load_schema(config.schema), compare=started)
    except RunFileError as e:
        raise ConfigError(str(e)) from None
    save_config(config, path)
