"""Model selection: which epoch a run ships, when it stops, and its record of every epoch.

One callback, `Selection`, makes every epoch-level decision on the validation
`train.selection_metric` (the shipped tower's, by default):
- the record of the run (`history.json`): each epoch's seconds, losses and both towers'
  validation metrics, written whole at every epoch end and continued on resume;
- the selected epoch, the best so far: its weights are written to `best/` when it is
  reached, so a run killed after it and resumed still ships it;
- early stopping after `early_stopping_patience` epochs without improvement, and learning
  rate decay (every optimizer) after `lr_plateau_patience`;
- a light net that stopped learning (rocketctr/training/health.py): a warning line, and a dead one
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

from rocketctr.config.core import Config, ConfigError, TrainConfig
from rocketctr.files import write_atomically
from rocketctr.runs.rundir import remove_temp_dirs
from rocketctr.runs.selected import (
    BOOSTER,
    EARLY_STOPPING,
    LIGHT_DEAD,
    NUM_EPOCHS,
    best_epoch,
    booster_monitor,
    distill_losses,
    light_monitors,
    selection_monitor,
    weights_checkpoint,
)
from rocketctr.training.health import light_health, light_is_dead
from rocketctr.training.resume import write_checkpoint


class _Track:
    """The best epoch so far of one monitored metric, and the epochs since."""

    def __init__(self, monitor: str, mode: str) -> None:
        self.monitor, self.sign = monitor, 1.0 if mode == "max" else -1.0
        self.best_value, self.best = -float("inf"), None  # best: the selected 1-based epoch
        self.previous_best: int | None = None  # the one before (a resume may fall back to it)
        self.wait = self.lr_wait = 0  # epochs since the best, and since the best or a decay
        self.lr_scale = 1.0  # product of the decays so far
        self.dead = False  # a light net whose validation output went constant

    @property
    def value(self) -> float:
        return self.sign * self.best_value

    def reset(self) -> None:
        self.best_value, self.best, self.wait, self.lr_wait = -float("inf"), None, 0, 0

    def observe(self, record: dict, lr_factor: float, lr_patience: int) -> tuple[bool, bool]:
        """Updates the state with one epoch's record: (improved, decay now)."""
        value = record.get(self.monitor)
        if value is None:  # not validated (parameter-server runs validate after training)
            return False, False
        if self.sign * value > self.best_value:
            self.previous_best = self.best
            self.best_value, self.best = self.sign * value, record["epoch"]
            self.wait = self.lr_wait = 0
            return True, False
        self.wait, self.lr_wait = self.wait + 1, self.lr_wait + 1
        decay = lr_factor != 1.0 and self.lr_wait >= lr_patience
        if decay:
            self.lr_wait, self.lr_scale = 0, self.lr_scale * lr_factor
        return False, decay


class Selection(tf_keras.callbacks.Callback):
    """Records every epoch, selects the best, stops early and decays learning rates.

    With several light nets (`model.lights`), each is also selected on its own metric: the
    weights it serves from (its tower and the table it reads) are kept at its own best
    epoch in `best/<name>/`; its own optimizer decays on its own plateaus (the shared ones
    follow the exported net's); early stopping waits until no live light net improves.

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
        self.patience = t.early_stopping_patience
        self.lr_factor, self.lr_patience = t.lr_plateau_factor, t.lr_plateau_patience
        self.config = config
        self.records, self.history_path, self.best_dir = history, history_path, best_dir
        self.track = _Track(self.monitor, mode)  # the exported net's: the run's checkpoint
        self.lights = {name: _Track(m, mode) for name, m in light_monitors(config).items()}
        monitor = booster_monitor(config)
        self.booster = _Track(monitor, mode) if monitor else None
        # The booster stops at its peak only where it is kept apart (co_train).
        self.teacher_patience = config.distill.teacher_patience if self.booster else 0
        self.teacher_epoch: int | None = None  # the booster epoch the teacher froze at
        self.start = time.perf_counter()
        for directory in self._best_dirs():
            remove_temp_dirs(directory)  # a best/ write that did not finish
        for record in history:
            self._observe(record)
        for name, track in [(None, self.track), *self.lights.items(), *self._booster_item()]:
            if (
                track.best is not None
                and best_dir is not None
                and not tf.io.gfile.exists(self._best_path(track.best, name) + ".index")
            ):
                print(
                    f"WARNING: the weights of epoch {track.best}, selected by "
                    f"{track.monitor}, are not in {os.path.dirname(self._best_path(1, name))};"
                    " selection starts again from this epoch."
                )
                track.reset()

    # The state of the exported net's selection, as before several light nets.
    best = property(lambda self: self.track.best)
    best_value = property(lambda self: self.track.best_value)
    lr_scale = property(lambda self: self.track.lr_scale)

    @property
    def stopped_early(self) -> bool:
        """The run stopped before train.num_epochs (early stopping, or a dead light net)."""
        return bool(self.records) and self.records[-1].get("stop") in (EARLY_STOPPING, LIGHT_DEAD)

    def _booster_item(self) -> list[tuple[str, _Track]]:
        return [(BOOSTER, self.booster)] if self.booster else []

    def _best_dirs(self) -> list[str]:
        if self.best_dir is None:
            return []
        names = [*self.lights, *([BOOSTER] if self.booster else [])]
        return [self.best_dir] + [os.path.join(self.best_dir, name) for name in names]

    def _best_path(self, epoch: int, light: str | None = None) -> str:
        """Where the selected weights of `epoch` go: the whole model's, or (`light`) those a
        light net of several serves from, or (BOOSTER) the booster's."""
        return os.path.join(self.best_dir, *([light] if light else []), f"ckpt-{epoch}")

    def _observe(self, record: dict) -> tuple[bool, list, bool, dict[str, bool]]:
        """Updates the state with one epoch's record: (the exported net improved, the
        optimizers to decay now, stop now, {light net of several, or BOOSTER: improved})."""
        improved, decay = self.track.observe(record, self.lr_factor, self.lr_patience)
        decays = [None] if decay else []  # None: the shared optimizers
        improved_lights = {}
        for name, track in self.lights.items():
            improved_lights[name], light_decay = track.observe(
                record, self.lr_factor, self.lr_patience
            )
            if light_decay:
                decays.append(name)
            track.dead = track.dead or light_is_dead(record, name)
        if self.booster and self.teacher_epoch is None:  # a frozen teacher is no more watched
            improved_lights[BOOSTER] = self.booster.observe(record, 1.0, 1)[0]
            self.teacher_epoch = record.get("teacher_stopped")
        waiting = [t for t in self.lights.values() if not t.dead] or [self.track]
        stop = self.patience > 0 and all(t.wait >= self.patience for t in waiting)
        if record.get(self.monitor) is None:
            stop = False
        return improved, decays, stop, improved_lights

    def on_epoch_begin(self, epoch, logs=None) -> None:
        self._drop_replaced_bests()
        self.start = time.perf_counter()

    def _drop_replaced_bests(self) -> None:
        """Keeps in best/ only each net's selected epoch. The one it replaced stays until the
        checkpoint of the epoch that replaced it is saved (a run killed before that resumes
        from the checkpoint before, which selected it), so: at the next epoch's start, and
        once training has ended. On a large table each copy is the table's bytes."""
        for name, track in [(None, self.track), *self.lights.items(), *self._booster_item()]:
            if self.best_dir is None or track.best is None:
                continue
            directory = os.path.join(self.best_dir, *([name] if name else []))
            if tf.io.gfile.isdir(directory):
                self._drop_old_bests(directory, keep=(track.best,))

    def on_epoch_end(self, epoch, logs=None) -> None:
        record = {"epoch": epoch + 1, "seconds": time.perf_counter() - self.start}
        record.update({k: float(v) for k, v in (logs or {}).items()})
        if self.monitor.endswith("_distill"):
            record.update(distill_losses(self.config, record))
        improved, decays, stop, improved_lights = self._observe(record)
        stops_teacher = (
            self.teacher_patience > 0
            and self.teacher_epoch is None
            and self.booster.best is not None
            and self.booster.wait >= self.teacher_patience
            and self.best_dir is not None
        )
        if stops_teacher:
            self.teacher_epoch = record["teacher_stopped"] = self.booster.best
        record["lr_scale"] = self.track.lr_scale
        record.update({f"{name}_lr_scale": t.lr_scale for name, t in self.lights.items()})
        self._decay(decays)
        dead = False
        for name in self.model.light_nets:
            warning, light_dead = light_health(self.config, record, name)
            if warning:
                print("\n" + warning)
            dead = dead or light_dead
        if self.lights:  # several light nets: the run goes on while one lives
            dead = all(t.dead for t in self.lights.values())
        if dead:
            record["stop"] = LIGHT_DEAD
            self.model.stop_training = True
        elif stop:
            record["stop"] = EARLY_STOPPING
            self.model.stop_training = True
            if self.lights:
                last_best = max(t.best or 0 for t in self.lights.values())
                what = f"No light net has improved for {self.patience} epoch(s) since epoch"
            else:
                last_best, what = self.best, f"{self.monitor} has not improved for "
                what += f"{self.patience} epoch(s) since epoch"
            print(f"\n{what} {last_best}: stopping early.")
        elif epoch + 1 >= self.params["epochs"]:
            record["stop"] = NUM_EPOCHS
        self.records[:] = [r for r in self.records if r["epoch"] <= epoch] + [record]
        if self.history_path is not None:
            write_atomically(self.history_path, json.dumps(self.records, indent=1))
        if self.best_dir is None:
            return
        if improved:
            path = self._best_path(epoch + 1)
            write_checkpoint(weights_checkpoint(self.model), path, "the selected epoch's weights")
            self._drop_old_bests(self.best_dir, keep=(epoch + 1, self.track.previous_best))
        for name, net_improved in improved_lights.items():
            if not net_improved:
                continue
            if name == BOOSTER:
                weights, what = self.model.booster_checkpoint(), "the booster's best weights"
            else:
                net = self.model.light_nets[name]
                weights = tf.train.Checkpoint(weights=self.model.light_weights(net))
                what = f"the selected epoch's weights of light net {name}"
            write_checkpoint(weights, self._best_path(epoch + 1, name), what)
            track = self.booster if name == BOOSTER else self.lights[name]
            keep = (epoch + 1, track.previous_best)
            self._drop_old_bests(os.path.join(self.best_dir, name), keep)
        if stops_teacher:
            self._freeze_teacher(announce=True)

    def on_train_begin(self, logs=None) -> None:
        if self.teacher_epoch is not None and self.model.frozen_booster is None:
            self._freeze_teacher(announce=False)  # a resumed run, after the switch

    def _freeze_teacher(self, announce: bool) -> None:
        """Freezes the booster at `teacher_epoch`, from best/booster/."""
        path = self._best_path(self.teacher_epoch, BOOSTER)
        if not tf.io.gfile.exists(path + ".index"):
            raise ConfigError(
                f"The booster stopped training and teaches from the weights of its epoch "
                f"{self.teacher_epoch}, which are not in {os.path.dirname(path)}: this run "
                "cannot go on as it began. Train it again into a new --model_dir."
            )
        if announce:
            print(
                f"\n{self.booster.monitor} has not improved for {self.teacher_patience} "
                f"epoch(s) since epoch {self.teacher_epoch}: the booster stops training and "
                "teaches from that epoch's weights, frozen."
            )
        self.model.freeze_booster(path)

    def _decay(self, decays: list[str | None]) -> None:
        """Multiplies learning rates by lr_factor: None, the shared optimizers (and those of
        light nets without a track of their own); a name, that light net's own optimizer."""
        if not decays:
            return
        nets = self.model.light_nets
        own = {name: net.optimizer for name, net in nets.items() if net.optimizer}
        for which in decays:
            if which is None:
                optimizers = [
                    o
                    for o in self.model.all_optimizers
                    if o not in [own[n] for n in self.lights if n in own]
                ]
                print(
                    f"\n{self.monitor} has not improved for {self.lr_patience} epoch(s): "
                    f"learning rates x{self.lr_factor}"
                )
            else:
                optimizers = [own[which]] if which in own else []
            for optimizer in optimizers:
                optimizer.learning_rate = float(optimizer.learning_rate) * self.lr_factor

    @staticmethod
    def _drop_old_bests(directory: str, keep: tuple[int | None, ...]) -> None:
        """Removes the best/ files of other epochs (a dead writer's `ckpt-N_temp/` went
        when this run started)."""
        kept = {f"ckpt-{e}" for e in keep if e is not None}
        for name in tf.io.gfile.listdir(directory):
            if name.startswith("ckpt-") and name.split(".")[0] not in kept:
                tf.io.gfile.remove(os.path.join(directory, name))

    def finish(
        self, model, manager: tf.train.CheckpointManager, epoch: tf.Variable, num_epochs: int
    ) -> int | None:
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
        value = self.track.value
        message = f"Selected epoch {self.best} of {last} by {self.monitor} = {value:.4f}"
        lead = f"val_{self.config.export_light}_auc"
        for other in ("val_booster_auc", lead):
            record = best_epoch(self.records, other) if other != self.monitor else None
            if record is not None:
                message += f" ({other}: best {record[other]:.4f} at epoch {record['epoch']})"
        print(message)
        for name, track in self.lights.items():
            if track.best is not None and name != self.config.export_light:
                print(
                    f"  light net {name}: epoch {track.best} by {track.monitor} = {track.value:.4f}"
                )
        validated = sum(self.monitor in r for r in self.records)
        if self.best == last and not self.stopped_early and validated > 1:
            print(
                f"WARNING: {self.monitor} was still improving at the last epoch ({last}): "
                "the nets are likely under-trained; raise train.num_epochs."
            )
        start = time.perf_counter()
        if self.best != last:
            step = model.global_step.numpy()
            weights_checkpoint(model).read(self._best_path(self.best)).assert_consumed()
            model.global_step.assign(step)
        if self.stopped_early:
            epoch.assign(num_epochs)
        if self.best != last or self.stopped_early:
            # A whole checkpoint (every table and its optimizer slots): on large tables this
            # is the pause between the last epoch and the final evaluation, so say it.
            path = manager.save(checkpoint_number=int(model.global_step.numpy()))
            size = sum(tf.io.gfile.stat(f).length for f in tf.io.gfile.glob(path + ".*"))
            print(
                f"Saved epoch {self.best}'s weights as the run's last checkpoint, which export "
                f"and evaluate read ({size / 2**30:.2f} GiB in "
                f"{time.perf_counter() - start:.1f} s)."
            )
        self._drop_replaced_bests()
        return self.best
