"""Which epoch a run ships: its selected epochs, read from its record, and their weights.

A run's record (`history.json`) holds every epoch's validation metrics. From it and the run's
config follow the epoch selected for the shipped net, each light net's own best epoch (a run
with several) and the booster's (`best/booster/`), and where it stopped teaching. Training
writes these (`rocketctr.training.selection`); evaluate, predict, the frontier, the report and
export read them here.
"""

from __future__ import annotations

import os
from pathlib import Path

import tensorflow as tf

from rocketctr.config.core import Config, ConfigError
from rocketctr.distill.base import resolve_methods

# history's "stop" values; LIGHT_DEAD: the light net's validation output went constant
EARLY_STOPPING, NUM_EPOCHS, LIGHT_DEAD = "early_stopping", "num_epochs", "light_dead"


def best_epoch(history: list[dict], monitor: str, mode: str = "max") -> dict | None:
    """The record of `history` with the best `monitor` value, or None if it was never logged."""
    logged = [r for r in history if monitor in r]
    if not logged:
        return None
    pick = max if mode == "max" else min
    return pick(logged, key=lambda r: r[monitor])


def selected_epoch(history: list[dict], config: Config) -> int | None:
    """The epoch whose weights a finished run keeps: the best by the selection metric, or
    the last one (`train.restore_best: false`, or nothing validated); None without history."""
    if not history:
        return None
    monitor, mode = selection_monitor(config)
    chosen = best_epoch(history, monitor, mode) if config.train.restore_best else None
    return chosen["epoch"] if chosen else history[-1]["epoch"]


def light_epoch(history: list[dict], config: Config, light: str) -> int | None:
    """The epoch at which a light net of several was kept (`best/<light>/`); None for a
    run of one light net, or when selection is off or nothing was validated."""
    monitor = light_monitors(config).get(light)
    if monitor is None or not config.train.restore_best:
        return None
    chosen = best_epoch(history, monitor, selection_monitor(config)[1])
    return chosen["epoch"] if chosen else None


def load_light(model, best_dir: str | Path, history: list[dict], light: str) -> int | None:
    """Makes `light` the model's selected light net and, in a run of several, loads the
    weights it serves from (its tower, the table it reads) as of its own best epoch.

    Returns:
        That epoch, or None: one light net, selection off, nothing validated, or (said in
        a warning) its best/ weights are missing; the model's weights then stay as they are.
    """
    net = model.select_light(light)
    epoch = light_epoch(history, model.rocket_config, light)
    if epoch is None:
        return None
    path = os.path.join(str(best_dir), light, f"ckpt-{epoch}")
    if not tf.io.gfile.exists(path + ".index"):
        print(
            f"WARNING: the weights of light net {light} at its best epoch {epoch} are not "
            f"in {os.path.dirname(path)}; using the checkpoint's."
        )
        return None
    tf.train.Checkpoint(weights=model.light_weights(net)).read(path).assert_consumed()
    return epoch


BOOSTER = "booster"  # best/booster/: the booster's own best epoch, in a run with light nets


def booster_monitor(config: Config) -> str | None:
    """The validation metric that keeps the booster at its own best epoch (`best/booster/`)
    in a run that also has light nets and selects on one of them; None otherwise."""
    if config.distill.mode != "co_train" or not config.train.restore_best:
        return None
    if selection_monitor(config)[0].startswith("val_booster_"):
        return None  # the run's own selection keeps the booster's best epoch
    kind = config.train.selection_metric.split("_")[1]
    return f"val_booster_{'auc' if kind == 'auc' else 'bce'}"


def teacher_stop(history: list[dict]) -> dict | None:
    """The record of the epoch after which the booster stopped training and taught from
    a frozen copy of its best epoch, `record["teacher_stopped"]` (`distill.teacher_patience`);
    None if it never stopped."""
    return next((r for r in history if "teacher_stopped" in r), None)


def booster_epoch(history: list[dict], config: Config) -> int | None:
    """The epoch at which the booster of a run with light nets was kept (`best/booster/`);
    None when it is not kept apart (`booster_monitor`) or nothing was validated."""
    monitor = booster_monitor(config)
    if monitor is None:
        return None
    stop = teacher_stop(history)  # after it, its metrics are its frozen copy's
    if stop is not None:
        return stop["teacher_stopped"]
    record = best_epoch(history, monitor, selection_monitor(config)[1])
    return record["epoch"] if record else None


def load_booster(
    model, best_dir: str | Path, history: list[dict], always: bool = False
) -> int | None:
    """Makes the model's booster that of its own best epoch, frozen (`freeze_booster`),
    when the model holds the weights of another epoch (`always`: also when it holds the
    same one, so that loading other rows into the shared table leaves the booster as kept).

    Returns:
        The booster's epoch, or None: not kept apart, already the model's, or (said in a
        warning) its best/ weights are missing.
    """
    config = model.rocket_config
    epoch = booster_epoch(history, config)
    if model.frozen_booster is not None:  # stopped in this process (teacher_patience)
        return epoch
    if epoch is None or (epoch == selected_epoch(history, config) and not always):
        return None
    path = os.path.join(str(best_dir), BOOSTER, f"ckpt-{epoch}")
    if not tf.io.gfile.exists(os.path.dirname(path)):  # a run from before best/booster/
        return None
    if not tf.io.gfile.exists(path + ".index"):
        print(
            f"WARNING: the booster's weights at its best epoch {epoch} are not in "
            f"{os.path.dirname(path)}; using the checkpoint's."
        )
        return None
    model.freeze_booster(path)
    return epoch


def selection_monitor(config: Config) -> tuple[str, str]:
    """The validation metric that selects the shipped epoch, and "max" or "min".

    A light-net metric is the exported light net's (`val_light_auc` with one light net,
    `val_<export.light>_auc` with several), and falls back to the booster's in
    booster_only runs (and vice versa).
    """
    metric = config.train.selection_metric
    tower, kind = metric.split("_")
    mode = config.distill.mode
    if kind == "distill" and not distills(config):
        raise ConfigError(
            "train.selection_metric 'light_distill' selects on the light net's distillation "
            f"loss: the run needs a teacher (distill.mode {mode!r}"
            + (", without distill.teacher_dir)." if mode == "light_only" else ").")
        )
    if (tower == "light" and mode == "booster_only") or (
        tower == "booster" and mode == "light_only"
    ):
        tower = "booster" if tower == "light" else "light"
    if tower == "light":
        tower = config.export_light
    return f"val_{tower}_{kind}", "max" if kind == "auc" else "min"


def distills(config: Config) -> bool:
    """The run's light nets learn from a teacher: the co-trained booster, a finished run's
    (distill.teacher_dir) or codistillation peers."""
    d = config.distill
    return d.mode == "co_train" or d.teacher_dir is not None or d.codistill_replicas > 1


def distill_losses(config: Config, record: dict) -> dict[str, float]:
    """{"val_<light net>_distill": Σ_m weight_m · val loss_m} of each light net, from the
    epoch's record of its methods' validation losses (`light_distill` selects on it)."""
    methods = resolve_methods(config.distill).methods  # each with its weight
    nets = config.model.light_nets()
    out = {}
    for name in nets:
        prefix = "" if not config.model.lights else f"{name}_"
        values = [
            (m["weight"], record.get(f"val_{prefix}{method}")) for method, m in methods.items()
        ]
        if values and all(v is not None for _, v in values):
            out[f"val_{name}_distill"] = sum(w * v for w, v in values)
    return out


def light_monitors(config: Config) -> dict[str, str]:
    """{light net: the validation metric that selects its epoch} of a run with several
    light nets (each kept at its own best epoch, in `best/<name>/`); {} otherwise."""
    nets = config.model.light_nets()
    if len(nets) < 2 or config.distill.mode == "booster_only":
        return {}
    kind = config.train.selection_metric.split("_")[1]
    return {name: f"val_{name}_{kind}" for name in nets}


def weights_checkpoint(model) -> tf.train.Checkpoint:
    """The model's weights alone (no optimizer state), in `get_weights` order."""
    return tf.train.Checkpoint(weights=list(model.weights))
