"""The layout of a training run's model dir, and restoring a model from it.

Kept apart from `rocketctr.training.train` (which pulls in the data readers) so that export,
evaluation and the two-stage teacher can read a run without it.

Restoring never trusts one file: checkpoints are listed from the files on disk (a damaged
`checkpoint` index must not hide intact checkpoints, or a run would restart from step 0
over them), and a checkpoint that does not read back whole is reported in one line and the
next older one is used.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import json
import os
import re
import shlex
import socket
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import tensorflow as tf
import yaml

from rocketctr.config.core import Config, ConfigError
from rocketctr.features import statistics as feature_stats
from rocketctr.features.schema import Schema, SchemaError, load_schema, parse_schema
from rocketctr.files import write_atomically
from rocketctr.model.cotrain import CoTrainModel, build_model
from rocketctr.runs.feature_format import check_run_format
from rocketctr.runs.layout import (  # noqa: F401  (a run dir's names, used through rundir too)
    BACKUP_DIR,
    BEST_DIR,
    CHECKPOINT_DIR,
    CONFIG_FILE,
    EVAL_DATA_FILE,
    HISTORY_FILE,
    LOCK_FILE,
    METRICS_FILE,
    SCHEMA_FILE,
)

# Schema keys about reading files, not about what the model is: a run may resume on the same
# features from files of another layout (Parquet instead of TSV, another column order).
_READING_KEYS = frozenset({"name", "format", "columns", "label", "header", "delimiter", "user_id"})

_CHECKPOINT_NUMBER = re.compile(r"-(\d+)$")


class RunFileError(ValueError):
    """A file of a model dir that is missing, empty or unreadable; the message names it."""


class RunLockedError(RuntimeError):
    """The model dir is held by another process; the message names that process."""


_held_locks: dict[Path, int] = {}  # model dir -> open lock file descriptor, in this process


@contextlib.contextmanager
def hold(model_dir: str | Path) -> Iterator[None]:
    """Holds the model dir's exclusive lock (`LOCK_FILE`) for the block.

    Two runs in one dir would overwrite each other's checkpoints, backups and exports, so
    the second is refused at once, naming the first. The lock is an flock(2) on the lock
    file: the kernel releases it when the holder exits, however it exits, so a killed run
    never leaves a stale lock behind. Re-entrant within a process (the CLI holds it around
    `train`, which holds it too).

    Raises:
        RunLockedError: another process holds the lock; the message says which one.
    """
    key = Path(model_dir).resolve()
    if key in _held_locks:
        yield
        return
    key.mkdir(parents=True, exist_ok=True)
    path = key / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 4096, 0).decode(errors="replace").strip()
        os.close(fd)
        raise RunLockedError(
            f"{model_dir} is in use by {holder or 'another process'} ({path} is locked). "
            "Wait for that run to end or stop it, or use another --model_dir."
        ) from None
    except OSError as e:  # a filesystem without flock: say so, and go on unguarded
        print(f"WARNING: cannot lock {path} ({e.strerror}); nothing stops a second run here.")
        os.close(fd)
        yield
        return
    started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    holder = (
        f"process {os.getpid()} on {socket.gethostname()}, started {started}: "
        f"{shlex.join(sys.argv)[:500]}"
    )
    os.ftruncate(fd, 0)
    os.pwrite(fd, (holder + "\n").encode(), 0)
    _held_locks[key] = fd
    try:
        yield
    finally:
        del _held_locks[key]
        os.ftruncate(fd, 0)
        os.close(fd)  # releases the lock


class RunPosition:
    """How far a run has trained; saved with every checkpoint and backup.

    Attributes:
        epoch: epochs completed.
        epoch_step: batches of epoch `epoch` (0-based: the one in progress) already
            trained; 0 in end-of-epoch checkpoints.
        batches_per_epoch: batches in one epoch, 0 until known (one-pass epochs learn it
            when the first epoch ends).
    """

    def __init__(self) -> None:
        def counter(name: str) -> tf.Variable:
            return tf.Variable(0, dtype=tf.int64, trainable=False, name=name)

        self.epoch = counter("completed_epochs")
        self.epoch_step = counter("epoch_step")
        self.batches_per_epoch = counter("batches_per_epoch")

    def checkpoint(self, model: tf.Module, path: str | None = None) -> tf.train.Checkpoint:
        """What a checkpoint holds; for reading `path`, only the counters it has.

        Checkpoints written before a counter existed leave it at 0, which is what it
        means for them (an epoch-end state, epoch length unknown).
        """
        counters = {"epoch_step": self.epoch_step, "batches_per_epoch": self.batches_per_epoch}
        if path is not None:
            saved = tf.train.load_checkpoint(path).get_variable_to_shape_map()
            counters = {
                k: v for k, v in counters.items() if f"{k}/.ATTRIBUTES/VARIABLE_VALUE" in saved
            }
            for variable in self.epoch_step, self.batches_per_epoch:
                variable.assign(0)
        return tf.train.Checkpoint(model=model, epoch=self.epoch, **counters)

    def describe(self) -> str:
        epoch, step = int(self.epoch.numpy()), int(self.epoch_step.numpy())
        if step == 0:
            return f"after {epoch} epoch(s)"
        return f"at batch {step:,} of epoch {epoch + 1}"


def checkpoint_step(path: str) -> int | None:
    """The N of a checkpoint prefix `.../ckpt-N` (the global step it was saved at)."""
    match = _CHECKPOINT_NUMBER.search(path)
    return int(match.group(1)) if match else None


def checkpoint_paths(directory: str | Path) -> list[str]:
    """The checkpoint prefixes (`.../ckpt-N`) in `directory`, oldest first by N.

    Listed from the `*.index` files on disk, whatever the `checkpoint` index file says.
    """
    prefixes = []
    for index_file in tf.io.gfile.glob(os.path.join(str(directory), "*.index")):
        prefix = index_file[: -len(".index")]
        step = checkpoint_step(prefix)
        if step is not None:
            prefixes.append((step, prefix))
    return [prefix for _, prefix in sorted(prefixes)]


_TEMP_NAME = re.compile(r"ckpt-\d+_temp(_[0-9a-f]+)?")  # TF's directory for a save under way


def remove_temp_dirs(directory: str | Path) -> list[str]:
    """Removes the `ckpt-N_temp/` directories a writer killed (or out of disk) mid-save
    left in `directory`: by name only, never a checkpoint. Returns what was removed."""
    if not tf.io.gfile.isdir(str(directory)):
        return []
    removed = []
    for name in tf.io.gfile.listdir(str(directory)):
        path = os.path.join(str(directory), name.rstrip("/"))
        if _TEMP_NAME.fullmatch(name.rstrip("/")) and tf.io.gfile.isdir(path):
            tf.io.gfile.rmtree(path)
            removed.append(path)
    return removed


def repair_index(directory: str | Path) -> None:
    """Rewrites the `checkpoint` index file from the files on disk if it disagrees with them.

    `tf.train.CheckpointManager` reads only the index; with a damaged one it would start
    from nothing and, saving, overwrite the index that named the intact checkpoints.
    """
    paths = checkpoint_paths(directory)
    if not paths:
        return
    index = os.path.join(str(directory), "checkpoint")
    try:
        state = tf.train.get_checkpoint_state(str(directory))
    except Exception:  # noqa: BLE001  (an unreadable index is what this repairs)
        state = None
    listed = [os.path.basename(p) for p in state.all_model_checkpoint_paths] if state else []
    if [os.path.basename(p) for p in paths] == listed:
        return
    if tf.io.gfile.exists(index):
        print(
            f"WARNING: {index} does not list the checkpoints on disk (damaged?); rebuilt it "
            f"from {len(paths)} checkpoint file(s), newest {os.path.basename(paths[-1])}."
        )
    tf.compat.v1.train.update_checkpoint_state(
        str(directory), paths[-1], all_model_checkpoint_paths=paths
    )


def drop_checkpoint(path: str) -> None:
    """Deletes one checkpoint's files and rewrites its directory's index without it."""
    for name in tf.io.gfile.glob(path + ".*"):
        tf.io.gfile.remove(name)
    directory = os.path.dirname(path)
    remaining = checkpoint_paths(directory)
    if remaining:
        tf.compat.v1.train.update_checkpoint_state(
            directory, remaining[-1], all_model_checkpoint_paths=remaining
        )
    elif tf.io.gfile.exists(os.path.join(directory, "checkpoint")):
        tf.io.gfile.remove(os.path.join(directory, "checkpoint"))


def set_checkpoint_aside(path: str, reason: str) -> str:
    """Moves one checkpoint's files into `<its dir>.set_aside/` (never read by a resume), with
    a file saying why; returns the new prefix. Resumable state is never deleted."""
    directory = os.path.dirname(path)
    aside = directory.rstrip("/") + ".set_aside"
    tf.io.gfile.makedirs(aside)
    target = os.path.join(aside, os.path.basename(path))
    for name in tf.io.gfile.glob(path + ".*"):
        tf.io.gfile.rename(name, target + name[len(path) :], overwrite=True)
    with tf.io.gfile.GFile(target + ".why.txt", "w") as f:
        f.write(reason + "\n")
    drop_checkpoint(path)  # its files are gone: only the index is rewritten
    return target


def restore_newest(model: tf.Module, position: RunPosition, paths: Sequence[str]) -> str | None:
    """Restores the newest of `paths` that reads back whole; says in one line which it skipped.

    Args:
        model: the model to restore; every one of its variables must be in the checkpoint.
        position: restored with it.
        paths: checkpoint prefixes, oldest first.

    Returns:
        The restored path, or None when `paths` is empty.

    Raises:
        RunFileError: no path reads back, naming each with its error.
    """
    failures = []
    for path in reversed(paths):
        try:
            checkpoint = position.checkpoint(model, path)
            # expect_partial: values of the checkpoint no object asks for (the save counter)
            # are fine; every object here must be matched.
            checkpoint.restore(path).expect_partial().assert_existing_objects_matched()
            return path
        except Exception as e:  # noqa: BLE001  (any read failure: try the previous one)
            reason = str(e).strip().splitlines()[0][:160] if str(e).strip() else ""
            failures.append(f"{path} ({type(e).__name__}: {reason})")
            print(
                f"WARNING: checkpoint {path} is damaged or partial ({type(e).__name__}); "
                "trying the previous one."
            )
    if failures:
        raise RunFileError(
            "No checkpoint reads back whole: " + "; ".join(failures) + ". Move the model dir "
            "away to start over."
        )
    return None


def read_run_file(path: Path, kind: str = "auto") -> Any:
    """Parses a YAML or JSON file of a model dir; a damaged one is a RunFileError naming it.

    Args:
        path: the file, which must exist.
        kind: "yaml", "json", or "auto" (by suffix).
    """
    kind = kind if kind != "auto" else ("json" if path.suffix == ".json" else "yaml")
    text = path.read_text(encoding="utf-8", errors="replace")
    try:
        data = json.loads(text) if kind == "json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as e:
        first_line = str(e).strip().splitlines()[0]
        raise RunFileError(f"{path} is not valid {kind.upper()} ({first_line}).") from e
    expected = list if path.name == HISTORY_FILE else dict
    if not isinstance(data, expected):
        what = "empty" if data is None else f"a {type(data).__name__}, not a {expected.__name__}"
        raise RunFileError(f"{path} is {what}: the file is damaged.")
    return data


def record_eval_patterns(model_dir: Path, patterns: Sequence[str]) -> None:
    """Writes the eval globs a run scores, so that `rocketctr export` checks on the same rows.

    Relative local paths are made absolute; URIs (gs://...) are kept as given.
    """
    absolute = [p if "://" in p else os.path.abspath(p) for p in map(str, patterns)]
    write_atomically(model_dir / EVAL_DATA_FILE, json.dumps({"eval_patterns": absolute}, indent=2))


def read_eval_patterns(model_dir: Path) -> list[str]:
    """The eval globs recorded by the run's last `train`; [] when none were recorded."""
    path = model_dir / EVAL_DATA_FILE
    if not path.exists():
        return []
    patterns = read_run_file(path).get("eval_patterns")
    if not isinstance(patterns, list) or not all(isinstance(p, str) for p in patterns):
        raise RunFileError(f"{path}: 'eval_patterns' must be a list of file globs.")
    return patterns


def load_run_config(model_dir: Path) -> Config:
    """The config a run was trained with, from its config.yaml."""
    path = model_dir / CONFIG_FILE
    if not path.exists():
        raise RunFileError(f"{model_dir} is not a training run: {path} does not exist.")
    data = read_run_file(path)
    try:
        return Config.from_dict(data)
    except ConfigError as e:
        raise RunFileError(f"{path} does not hold a rocketctr config: {e}") from e


def _model_keys(schema: Schema) -> dict[str, Any]:
    """What a schema says about the model, flattened: "categorical.C1.hash_buckets": 1000."""
    keys: dict[str, Any] = {}
    for key, value in schema.to_dict().items():
        if key in _READING_KEYS:
            continue
        if key in ("dense", "categorical"):
            # Table offsets follow the order of the categorical features.
            keys[f"order of {key} features"] = [entry["name"] for entry in value]
            for entry in value:
                keys.update({f"{key}.{entry['name']}.{k}": v for k, v in entry.items()})
        else:
            keys[key] = value
    return keys


def _shown(keys: dict[str, Any], key: str) -> str:
    return repr(keys[key]) if key in keys else "(absent)"


def run_schema(model_dir: str | Path, config: Config) -> Schema:
    """The schema a run was trained with: its `SCHEMA_FILE`, or for older runs the config's,
    resolved with the run's statistics pass (vocabularies, quantiles, moments) if it has
    such features."""
    path = Path(model_dir) / SCHEMA_FILE
    schema = _read_schema(path) if path.exists() else load_schema(config.schema)
    try:
        return feature_stats.resolve(schema, model_dir)
    except feature_stats.FeatureStatsError as e:
        raise RunFileError(str(e)) from None


def _read_schema(path: Path) -> Schema:
    try:
        return parse_schema(read_run_file(path), source=str(path))
    except SchemaError as e:
        raise RunFileError(f"{path} does not hold a schema: {e}") from None


def prepare_run_schema(model_dir: str | Path, schema: Schema, compare: bool = True) -> None:
    """Records the schema of a run that starts; refuses one that resumes with another.

    Args:
        model_dir: the run dir.
        schema: the schema given now.
        compare: False for a dir whose run never trained: its record is replaced.

    Raises:
        RunFileError: the recorded schema is damaged, or differs from `schema` in what the
            model is made of (features, their buckets, ids, transforms, order, privileged and
            tower sides); the message names every differing key.
    """
    path = Path(model_dir) / SCHEMA_FILE
    if path.exists() and compare:
        old, new = _model_keys(_read_schema(path)), _model_keys(schema)
        diff = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))
        if diff:
            details = "; ".join(f"{k}: {_shown(old, k)} -> {_shown(new, k)}" for k in diff)
            raise RunFileError(
                f"{model_dir} was trained with another schema than {schema.source or schema.name}"
                f" now gives ({details}). Its checkpoints hold the embedding rows and weights of "
                f"the schema recorded in {path}: train with that schema again, or use a new "
                "--model_dir."
            )
    write_atomically(path, yaml.safe_dump(schema.to_dict(), sort_keys=False))


def restore_run(
    model_dir: str | Path,
    error: type[Exception] = ValueError,
    light: str | None = None,
    train: bool = True,
) -> tuple[CoTrainModel, Config, str, int]:
    """Builds a run's model from its config and restores its newest readable checkpoint.

    Args:
        model_dir: a `rocketctr train` model dir.
        error: the exception raised when the dir holds no usable config or checkpoint.
        light: the light net to select (`CoTrainModel.select_light`), by default the
            run's `export.light`; in a run of several, the weights it serves from are
            those of its own best epoch (rocketctr/training/selection.py).
        train: False for scoring only (`build_model`): no optimizer slots are built or
            read, and the distillation methods' weights are not built.

    Returns:
        (model, config, checkpoint path, completed epochs).
    """
    model_dir = Path(model_dir)
    try:
        config = load_run_config(model_dir)
        schema = run_schema(model_dir, config)
        check_run_format(model_dir, schema, error)  # refuses an old hashing
        checkpoint_dir = model_dir / CHECKPOINT_DIR
        paths = checkpoint_paths(checkpoint_dir)
        if not paths:
            raise RunFileError(f"No checkpoint in {checkpoint_dir}; the run has not trained yet.")
        model = build_model(config, schema, train=train)
        position = RunPosition()
        # Every model variable must come from the checkpoint: never use initial weights.
        path = restore_newest(model, position, paths)
        if model.has_light:
            from rocketctr.runs.selected import load_light

            history_path = model_dir / HISTORY_FILE
            history = read_run_file(history_path) if history_path.exists() else []
            try:
                load_light(model, model_dir / BEST_DIR, history, light or config.export_light)
            except ConfigError as e:  # no such light net
                raise RunFileError(f"{model_dir}: {e}") from None
    except RunFileError as e:
        raise error(str(e)) from e
    return model, config, path, int(position.epoch.numpy())
