"""Scoring a finished run on labelled rows (`rocketctr evaluate`), without writing to it.

Both towers are scored with the run's selected weights: a run's newest checkpoint holds the
epoch model selection kept (rocketctr/training/selection.py). The light tower is scored through the
run's export of that checkpoint when one exists (what TF Serving would answer), and every
row is checked against the checkpoint's light net: a float32 export must agree within the
export's parity tolerance, a quantized one within its AUC tolerance.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from rocketctr.config.core import SINGLE_LIGHT, ConfigError
from rocketctr.data import BadRowReport, make_dataset
from rocketctr.model.cotrain import CoTrainModel
from rocketctr.runs.rundir import (
    BEST_DIR,
    HISTORY_FILE,
    RunFileError,
    read_run_file,
    restore_run,
)
from rocketctr.runs.selected import (
    booster_epoch,
    light_epoch,
    light_monitors,
    load_booster,
    load_light,
    selected_epoch,
    selection_monitor,
)
from rocketctr.scoring.metrics import calibration_buckets, sigmoid, tower_metrics

TOWERS = ("booster", "light")
DEFAULT_EXPORT = "export"  # <model_dir>/export, where `rocketctr train` exports


@dataclass
class Scores:
    """What a model gave each row of a dataset, in the dataset's order."""

    labels: np.ndarray  # float 0/1 [N]
    users: np.ndarray | None  # the schema's user id column [N], when it has one
    logits: dict[str, np.ndarray]  # tower -> [N]
    export_probs: np.ndarray | None = None  # the light export's probabilities [N]

    def probs(self, tower: str) -> np.ndarray:
        return sigmoid(self.logits[tower])


def run_towers(model: CoTrainModel, tower: str = "both") -> list[str]:
    """The towers `tower` names in this run: "both", every one (the booster, each booster
    of an ensemble, "booster_<name>", and each light net); "light", the selected light net
    (`CoTrainModel.select_light`); "booster" (an ensemble's mixture). A tower the run does
    not have is refused."""
    if tower not in TOWERS + ("both",):
        raise ConfigError(f"--tower must be one of light, booster, both. Received: {tower!r}")
    boosters = ["booster", *model.booster_members] if model.has_booster else []
    present = [*boosters, *model.light_nets]
    if tower == "both":
        return present
    if not getattr(model, f"has_{tower}"):
        mode = model.rocket_config.distill.mode
        other = "booster" if tower == "light" else "light"
        raise ConfigError(
            f"The run has no {tower} net (distill.mode {mode!r}): use --tower {other}."
        )
    return [model.lead.name] if tower == "light" else [tower]


def score_at_best(
    model: CoTrainModel,
    dataset: tf.data.Dataset,
    towers: Sequence[str],
    best_dir: str | Path | None,
    history: list[dict],
    export: Any = None,
) -> Scores:
    """`score`, with each light net of several at its own best epoch (`best/<name>/`), and
    the booster at its own (`best/booster/`, frozen in a copy: `load_booster`).

    The run's checkpoint holds its `export.light`'s best epoch, so the booster and that net
    are scored in one pass with its weights; every other light net of `towers` is scored in
    a pass of its own after its best weights are loaded, and the selected net's (`export`
    is its) are loaded back at the end.
    """
    if best_dir is not None and "booster" in towers:
        load_booster(model, best_dir, history)
    lead = model.lead.name if model.has_light else None
    home = model.rocket_config.export_light if model.has_light else None
    others = [t for t in towers if t in model.light_nets and t != home]
    if best_dir is None or len(model.light_nets) < 2 or (not others and lead == home):
        return score(model, dataset, towers, export)
    load_light(model, best_dir, history, home)
    first = [t for t in towers if t not in others]
    scores = score(model, dataset, first, export if lead == home else None)
    for name in others:
        load_light(model, best_dir, history, name)
        scored = score(model, dataset, [name], export if name == lead else None)
        scores.logits[name] = scored.logits[name]
        if name == lead:  # the selected net's export, on the same rows in the same order
            scores.export_probs = scored.export_probs
    load_light(model, best_dir, history, lead)
    return Scores(
        scores.labels, scores.users, {t: scores.logits[t] for t in towers}, scores.export_probs
    )


# One compiled forward pass per model: a new tf.function per call would trace again each
# time (and TF warns of frequent retracing once a process has scored a few times).
_PREDICT: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _predict_function(model: CoTrainModel):
    if model not in _PREDICT:
        ref = weakref.ref(model)  # the cache must not keep the model alive
        _PREDICT[model] = tf.function(lambda x: ref()(x, training=False), reduce_retracing=True)
    return _PREDICT[model]


def score(
    model: CoTrainModel,
    dataset: tf.data.Dataset,
    towers: Sequence[str],
    export: Any = None,
) -> Scores:
    """Scores every row of `dataset` with `towers` (and the loaded light `export`)."""
    predict = _predict_function(model)
    serving_columns = list(model.light_processor.input_dtypes) if export is not None else []
    user_column = model.schema.user_id
    labels, users, logits, served = [], [], {t: [] for t in towers}, []
    for features, y in dataset:
        out = predict(features)
        for tower in towers:
            logits[tower].append(out[f"{tower}_logits"].numpy())
        if export is not None:
            inputs = {c: features[c] for c in serving_columns}
            served.append(export.signatures["serving_default"](**inputs)["probabilities"].numpy())
        labels.append(y.numpy())
        if user_column:
            users.append(features[user_column].numpy())
    if not labels:
        raise ValueError("The data has no rows.")
    return Scores(
        labels=np.concatenate(labels),
        users=np.concatenate(users) if user_column else None,
        logits={t: np.concatenate(v) for t, v in logits.items()},
        export_probs=np.concatenate(served) if export is not None else None,
    )


def find_export(
    export_base: Path, model_dir: Path, global_step: int, light: str = SINGLE_LIGHT
) -> Path | None:
    """The newest version under `export_base` exported from `model_dir` at `global_step`
    with light net `light` (its `rocketctr.json` says so), or None."""
    from rocketctr.serving import read_export_info, versions

    for path in reversed(versions(export_base)):
        try:
            info = read_export_info(path)
        except (OSError, ValueError):
            continue
        metadata = info.get("metadata", {})
        same_run = Path(metadata.get("model_dir", "")).resolve() == model_dir.resolve()
        same_net = info.get("light", SINGLE_LIGHT) == light
        if same_run and same_net and metadata.get("global_step") == global_step:
            return path
    return None


def check_export_parity(
    scores: Scores, export_path: Path, embedding_dtype: str, light: str = SINGLE_LIGHT
) -> dict[str, Any]:
    """How the export's probabilities compare with the checkpoint's light net, row by row.

    Raises:
        ExportError: a float32 export differs by more than PARITY_ATOL on some row, or a
            quantized one moves the AUC beyond its tolerance.
    """
    from rocketctr.serving import PARITY_ATOL, ExportError
    from rocketctr.serving.quality import quality_change

    checkpoint_probs = scores.probs(light)
    diff = np.abs(scores.export_probs - checkpoint_probs)
    parity = {
        "export": str(export_path),
        "embedding_dtype": embedding_dtype,
        "rows": int(diff.size),
        "max_abs_diff": float(diff.max()),
    }
    if embedding_dtype == "float32":
        if parity["max_abs_diff"] > PARITY_ATOL:
            raise ExportError(
                f"The export {export_path} does not score like the checkpoint it was exported "
                f"from: max |Δp| = {parity['max_abs_diff']:.3g} at row {int(diff.argmax())} "
                f"(tolerance {PARITY_ATOL}). Export the run again."
            )
    else:
        change = quality_change(
            scores.labels, checkpoint_probs, scores.export_probs, embedding_dtype
        )
        parity["auc_change"] = change["auc_change"]
    return parity


def evaluate_run(
    model_dir: str | Path,
    patterns: Sequence[str],
    *,
    tower: str = "both",
    bad_rows: str | None = None,
    export_base: str | Path | None = None,
    light: str | None = None,
) -> dict[str, Any]:
    """Scores a finished run's towers on labelled rows; writes nothing into the run.

    Args:
        model_dir: a `rocketctr train` model dir.
        patterns: file globs in the run's schema.
        tower: "light" (the selected light net), "booster" or "both" (every tower the run
            has: each light net, at its own best epoch, and the booster).
        bad_rows: the bad-row policy; None takes the run's.
        export_base: where the run's exports are; default `<model_dir>/export`. The newest
            version exported from the restored checkpoint scores the light tower.
        light: the light net "light" means, by default the run's `export.light`.

    Returns:
        A JSON-able dict: model_dir, checkpoint, global_step, completed_epochs, kept_epoch
        (the epoch whose weights were scored, None when they are not the selected ones),
        selection_metric, data, bad_rows (the summary),
        towers ({tower: metrics (`tower_metrics`) + "calibration" buckets + "scored_with"}),
        and export_parity (None when the light net was scored from the checkpoint).
    """
    model_dir = Path(model_dir)
    model, config, checkpoint, completed = restore_run(
        model_dir, error=ConfigError, light=light, train=False
    )
    towers = run_towers(model, tower)
    lead = model.lead.name if model.has_light else None
    global_step = int(model.global_step.numpy())
    export_path = None
    if lead in towers:
        base = Path(export_base) if export_base else model_dir / DEFAULT_EXPORT
        export_path = find_export(base, model_dir, global_step, lead)
    export = tf.saved_model.load(str(export_path)) if export_path else None
    report = BadRowReport()
    dataset = make_dataset(
        model.schema,
        patterns,
        config.train.batch_size,
        bad_rows=bad_rows or config.train.bad_rows,
        report=report,
    )
    history = run_history(model_dir)
    scores = score_at_best(model, dataset, towers, model_dir / BEST_DIR, history, export)
    parity = None
    if export_path is not None:
        from rocketctr.serving import read_export_info

        dtype = read_export_info(export_path)["embedding_table"]["dtype"]
        parity = check_export_parity(scores, export_path, dtype, lead)
    results = {}
    for name in towers:
        probs = scores.probs(name)
        scored_with = f"checkpoint {checkpoint}"
        epoch = light_epoch(history, config, name) if name != lead else None
        if epoch is not None:
            scored_with += f", light net {name} at its best epoch {epoch}"
        if name == "booster" and model.frozen_booster is not None:
            scored_with += f", the booster at its best epoch {booster_epoch(history, config)}"
        if name == lead and parity is not None:
            probs, scored_with = scores.export_probs, f"export {export_path}"
        results[name] = {
            **tower_metrics(scores.labels, probs, scores.users),
            "calibration": calibration_buckets(scores.labels, probs),
            "scored_with": scored_with,
        }
    return {
        "model_dir": str(model_dir),
        "checkpoint": checkpoint,
        "global_step": global_step,
        "completed_epochs": completed,
        "kept_epoch": kept_epoch(model_dir, config, completed, lead),
        "selection_metric": light_monitors(config).get(lead) or selection_monitor(config)[0],
        "data": list(patterns),
        "bad_rows": report.summary(),
        "towers": results,
        "export_parity": parity,
        "light": lead,  # the light net "light" means (a run's export.light, or --light)
    }


def run_history(model_dir: Path, unreadable: str | None = None) -> list[dict]:
    """A run's history.json, or [] when it has none or it is unreadable (then, with
    `unreadable`, a warning line: the file's problem and this consequence)."""
    path = model_dir / HISTORY_FILE
    if not path.exists():
        return []
    try:
        return read_run_file(path)
    except (RunFileError, OSError) as e:
        if unreadable:
            print(f"WARNING: {e} {unreadable}")
        return []


def kept_epoch(
    model_dir: Path, config, completed_epochs: int, light: str | None = None
) -> int | None:
    """The epoch whose weights a finished run keeps for light net `light` (by default the
    exported one; model selection saved them last), or None while the run has not finished
    or its history is unreadable."""
    history = run_history(model_dir)
    finished = bool(history) and "stop" in history[-1]
    if not finished or completed_epochs < config.train.num_epochs:
        return None
    return light_epoch(history, config, light) or selected_epoch(history, config)


def describe_scored(evaluation: dict[str, Any]) -> str:
    """One line naming the weights `evaluate_run` scored: the kept epoch and its checkpoint."""
    checkpoint, step = evaluation["checkpoint"], evaluation["global_step"]
    epoch = evaluation["kept_epoch"]
    if epoch is None:
        return (
            f"Scored {checkpoint} (global step {step:,}, after epoch "
            f"{evaluation['completed_epochs']}): not the weights model selection keeps (the "
            "run has not finished, or its final checkpoint did not read back)"
        )
    return (
        f"Scored the weights of epoch {epoch}, kept by model selection "
        f"({evaluation['selection_metric']}): {checkpoint} (global step {step:,})"
    )


def metrics_only(evaluation: dict[str, Any]) -> dict[str, dict[str, float]]:
    """{tower: its scalar metrics}, for `metrics.format_table`."""
    return {
        tower: {k: v for k, v in values.items() if not isinstance(v, (list, str))}
        for tower, values in evaluation["towers"].items()
    }
