"""A training run as the exporter reads it: its latest checkpoint and its eval rows."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import tensorflow as tf

from rocketctr.features.schema import Schema
from rocketctr.model.cotrain import CoTrainModel
from rocketctr.runs.rundir import (
    EVAL_DATA_FILE,
    METRICS_FILE,
    RunFileError,
    read_eval_patterns,
    read_run_file,
    restore_run,
)
from rocketctr.serving.example_rows import PARITY_ROWS
from rocketctr.serving.export_error import ExportError


def restore_model(
    model_dir: str | Path, light: str | None = None
) -> tuple[CoTrainModel, dict[str, Any]]:
    """Builds the scoring-only model of a training run and restores its latest checkpoint.

    No optimizer slot is built or read (an export holds none): with Adagrad or Adam on the
    tables, they are one or two more tables' worth of memory.

    Args:
        model_dir: a `rocketctr train` model dir (config.yaml, checkpoints/, metrics.json).
        light: the light net to select, by default the run's `export.light` (see
            `rundir.restore_run`).

    Returns:
        (model, info): info holds the checkpoint path, global step, completed epochs, the
        model dir and, when metrics.json exists, its metrics.

    Raises:
        ExportError: `model_dir` has no config.yaml or no checkpoint.
    """
    model_dir = Path(model_dir)
    model, _, latest, epochs = restore_run(model_dir, ExportError, light, train=False)
    info: dict[str, Any] = {
        "checkpoint": latest,
        "global_step": int(model.global_step.numpy()),
        "completed_epochs": epochs,
        "model_dir": str(model_dir.resolve()),
    }
    metrics_path = model_dir / METRICS_FILE
    if metrics_path.exists():
        try:
            info["metrics"] = read_run_file(metrics_path)
        except RunFileError as e:  # informational only: the export does not depend on it
            print(f"WARNING: {e} The export's metadata will have no metrics.")
    return model, info


def eval_rows(
    schema: Schema, patterns: Sequence[str], bad_rows: str, num_rows: int = PARITY_ROWS
) -> tuple[dict[str, tf.Tensor], tf.Tensor]:
    """The first `num_rows` eval rows, read like training reads its eval data.

    Returns:
        (features {column: [N]}, labels [N]).
    """
    from rocketctr.data import BadRowReport, make_dataset  # the readers load only here

    dataset = make_dataset(schema, patterns, num_rows, bad_rows=bad_rows, report=BadRowReport())
    return next(iter(dataset))


def run_eval_rows(
    model_dir: str | Path, model: CoTrainModel
) -> tuple[dict[str, tf.Tensor], tf.Tensor, list[str]] | None:
    """The eval rows a run recorded (`eval_data.json`), or None when it recorded none.

    Raises:
        ExportError: the recorded eval files cannot be read (the message names them).
    """
    try:
        patterns = read_eval_patterns(Path(model_dir))
    except RunFileError as e:
        raise ExportError(str(e)) from None
    if not patterns:
        return None
    try:
        features, labels = eval_rows(model.schema, patterns, model.rocket_config.train.bad_rows)
    except (tf.errors.OpError, ValueError, OSError) as e:
        message = getattr(e, "message", None) or str(e)
        raise ExportError(
            f"The run's eval data {patterns} (recorded in {Path(model_dir) / EVAL_DATA_FILE}) "
            f"cannot be read: {message.strip().splitlines()[0]}"
        ) from None
    return features, labels, patterns
