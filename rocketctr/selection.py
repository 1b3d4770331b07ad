"""Model selection: which epoch a run ships, when it stops, and its record of every epoch.

One callback, `Selection`, makes every epoch-level decision on the validation
`train.selection_metric` (the shipped tower's, by default):
- the record of the run (`history.json`): each epoch's seconds, losses and both towers'
  validation metrics, written whole at every epoch end and continued on resume;
- the selected epoch, the best so far: its weights are written to `best/` when it is
  reached, so a run killed after it and resumed still ships it;
- early stopping after `early_stopping_patience` epochs without improvement, and learning
  rate decay (every optimizer) after `lr_plateau_patience`;
- a light net that stopped learning (rocketctr/health.py): a warning line, and a dead one
  (constant validation logits) stops the run at once;
- why training ended, in the last epoch's record (`"stop"`): "early_stopping",
  "light_dead" or "num_epochs".

Its state is a function of the record: a resumed run replays the records of the epochs
its checkpoint holds, so it decays, stops and selects as the run would have uninterrupted.
It runs before the epoch checkpoint is saved (history, then the selected weights, then the
checkpoint), so whatever a kill interrupts, the record of a restored epoch is on disk and
the selected epoch's weights are in `best/` (which keeps two, the previous best too).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import tensorflow as tf
import tf_keras

from rocketctr.config import Config, ConfigError, TrainConfig
from rocketctr.files import write_atomically
from rocketctr.health import light_health
from rocketctr.resume import write_checkpoint
from rocketctr.rundir import remove_temp_dirs

SELECTION_METRICS = ("light_auc", "light_bce", "booster_auc", "booster_bce")
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


def selection_monitor(config: Config) -> tuple[str, str]:
    """The validation metric that selects the shipped epoch, and "max" or "min".

    A light-net metric falls back to the booster's in booster_only runs (and vice versa).
    """
    metric = config.train.selection_metric
    if metric not in SELECTION_METRICS:
        raise ConfigError(
            f"train.selection_metric must be one of {list(SELECTION_METRICS)}. Received: {metric!r}"
        )
    tower, kind = metric.split("_")
    mode = config.distill.mode
    if (tower == "light" and mode == "booster_only") or (
        tower == "booster" and mode == "light_only"
    ):
        tower = "booster" if tower == "light" else "light"
    return f"val_{tower}_{kind}", "max" if kind == "auc" else "min"


class Selection(tf_keras.callbacks.Callback):
    """Records every epoch, selects the best, stops early and decays learning rates.

    Args:
        config: the run's config (its `train` section and selection metric).
        history: the records of the epochs the restored checkpoint holds (replayed here);
            extended in place as epochs end.
        history_path: where the record is written; None on workers that are not the chief.
        best_dir: where the selected epoch's weights go; None to keep the last epoch's
            (`train.restore_best: false`).
    """

    def __init__(
        self,
        config: Config,
        history: list[dict],
        history_path: Path | None,
        best_dir: str | None,
    ):
        super().__init__()
        t: TrainConfig = config.train
        self.monitor, mode = selection_monitor(config)
        self.sign = 1.0 if mode == "max" else -1.0
        self.patience = t.early_stopping_patience
        self.lr_factor, self.lr_patience = t.lr_plateau_factor, t.lr_plateau_patience
        self.config = config
        self.records, self.history_path, self.best_dir = history, history_path, best_dir
        self.best_value, self.best = -float("inf"), None  # best: the selected 1-based epoch
        self.previous_best: int | None = None  # the one before (a resume may fall back to it)
        self.wait = self.lr_wait = 0  # epochs since the best, and since the best or a decay
        self.lr_scale = 1.0  # product of the decays so far
        self.start = time.perf_counter()
        if best_dir is not None:
            remove_temp_dirs(best_dir)  # a best/ write that did not finish
        for record in history:
            self._observe(record)
        if (
            self.best is not None
            and best_dir is not None
            and not tf.io.gfile.exists(self._best_path(self.best) + ".index")
        ):
            print(f"WARNING: the weights of epoch {self.best}, selected by {self.monitor}, are "
                  f"not in {best_dir}; selection starts again from this epoch.")  # fmt: skip
            self.best_value, self.best, self.wait, self.lr_wait = -float("inf"), None, 0, 0

    @property
    def stopped_early(self) -> bool:
        """The run stopped before train.num_epochs (early stopping, or a dead light net)."""
        return bool(self.records) and self.records[-1].get("stop") in (EARLY_STOPPING, LIGHT_DEAD)

    def _best_path(self, epoch: int) -> str:
        return os.path.join(self.best_dir, f"ckpt-{epoch}")

    def _observe(self, record: dict) -> tuple[bool, bool, bool]:
        """Updates the state with one epoch's record: (improved, decay now, stop now)."""
        value = record.get(self.monitor)
        if value is None:  # not validated (parameter-server runs validate after training)
            return False, False, False
        if self.sign * value > self.best_value:
            self.previous_best = self.best
            self.best_value, self.best = self.sign * value, record["epoch"]
            self.wait = self.lr_wait = 0
            return True, False, False
        self.wait, self.lr_wait = self.wait + 1, self.lr_wait + 1
        decay = self.lr_factor != 1.0 and self.lr_wait >= self.lr_patience
        if decay:
            self.lr_wait, self.lr_scale = 0, self.lr_scale * self.lr_factor
        return False, decay, self.patience > 0 and self.wait >= self.patience

    def on_epoch_begin(self, epoch, logs=None) -> None:
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None) -> None:
        record = {"epoch": epoch + 1, "seconds": time.perf_counter() - self.start}
        record.update({k: float(v) for k, v in (logs or {}).items()})
        improved, decay, stop = self._observe(record)
        record["lr_scale"] = self.lr_scale
        if decay:
            for optimizer in self.model.all_optimizers:
                optimizer.learning_rate = float(optimizer.learning_rate) * self.lr_factor
            print(f"\n{self.monitor} has not improved for {self.lr_patience} epoch(s): learning "
                  f"rates x{self.lr_factor}")  # fmt: skip
        warning, dead = light_health(self.config, record)
        if warning:
            print("\n" + warning)
        if dead:
            record["stop"] = LIGHT_DEAD
            self.model.stop_training = True
        elif stop:
            record["stop"] = EARLY_STOPPING
            self.model.stop_training = True
            print(f"\n{self.monitor} has not improved for {self.patience} epoch(s) since epoch "
                  f"{self.best}: stopping early.")  # fmt: skip
        elif epoch + 1 >= self.params["epochs"]:
            record["stop"] = NUM_EPOCHS
        self.records[:] = [r for r in self.records if r["epoch"] <= epoch] + [record]
        if self.history_path is not None:
            write_atomically(self.history_path, json.dumps(self.records, indent=1))
        if improved and self.best_dir is not None:
            path = self._best_path(epoch + 1)
            write_checkpoint(_weights(self.model), path, "the selected epoch's weights")
            self._drop_old_bests(keep=(epoch + 1, self.previous_best))

    def _drop_old_bests(self, keep: tuple[int | None, ...]) -> None:
        """Removes the best/ files of other epochs (a dead writer's `ckpt-N_temp/` went
        when this run started)."""
        kept = {os.path.basename(self._best_path(e)) for e in keep if e is not None}
        for name in tf.io.gfile.listdir(self.best_dir):
            if name.startswith("ckpt-") and name.split(".")[0] not in kept:
                tf.io.gfile.remove(os.path.join(self.best_dir, name))

    def finish(self, model, manager: tf.train.CheckpointManager, epoch: tf.Variable,
               num_epochs: int) -> int | None:  # fmt: skip
        """Makes the selected weights the run's last checkpoint once training has ended.

        Args:
            model: the trained model (also when this process ran no epoch).
            manager: the epoch checkpoints' manager.
            epoch: the run's completed-epochs counter; set to `num_epochs` when the run
                stopped early, so the same command run again does not train on.

        Returns:
            The 1-based selected epoch, or None when selection is off or nothing was
            validated.
        """
        if self.best is None or self.best_dir is None:
            return None
        last = self.records[-1]["epoch"]
        value = self.sign * self.best_value
        message = f"Selected epoch {self.best} of {last} by {self.monitor} = {value:.4f}"
        for other in ("val_booster_auc", "val_light_auc"):
            record = best_epoch(self.records, other) if other != self.monitor else None
            if record is not None:
                message += f" ({other}: best {record[other]:.4f} at epoch {record['epoch']})"
        print(message)
        validated = sum(self.monitor in r for r in self.records)
        if self.best == last and not self.stopped_early and validated > 1:
            print(f"WARNING: {self.monitor} was still improving at the last epoch ({last}): "
                  "the nets are likely under-trained; raise train.num_epochs.")  # fmt: skip
        if self.best != last:
            step = model.global_step.numpy()
            _weights(model).read(self._best_path(self.best)).assert_consumed()
            model.global_step.assign(step)
        if self.stopped_early:
            epoch.assign(num_epochs)
        if self.best != last or self.stopped_early:
            manager.save(checkpoint_number=int(model.global_step.numpy()))
        return self.best


def _weights(model) -> tf.train.Checkpoint:
    """The model's weights alone (no optimizer state), in `get_weights` order."""
    return tf.train.Checkpoint(weights=list(model.weights))
