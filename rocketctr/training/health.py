"""Training health: a diverged run stops at once saving nothing, a dead light net is flagged.

Divergence is told apart from a merely bad model (which the export gate refuses, see
serving/gate.py) by numbers no working CTR model reaches:
- a non-finite loss, or a tower's mean cross-entropy above `MAX_BCE` nats per example
  (its predictions are saturated far beyond float precision: every row scores 0 or 1);
- a non-finite weight or optimizer slot, checked before every state the run writes (epoch
  checkpoint, best/ weights, mid-epoch backup).

The guard runs first among the callbacks, so a diverged step is never followed by a save:
the run's last good state stays on disk and a rerun resumes from it. `train` raises
`TrainingDiverged`; the CLI prints its one line and exits with code 3.

A light net that stopped learning (`light_health`, called by model selection at each epoch
end) draws one warning line: a dead net, whose validation logits are constant (ReLUs that
never fire: it gets no gradient and does not recover), stops the run at once instead of
spending early stopping's patience; a net at chance (AUC <= `AUC_FLOOR`) whose output still
varies trains on. The export gate refuses both if they are what would ship.
"""

from __future__ import annotations

import math

import tensorflow as tf
import tf_keras

# Mean binary cross-entropy (nats per example) beyond which a tower has diverged: its
# average row is scored e^-100 for its own label. A net at chance scores 0.69.
MAX_BCE = 100.0
_WATCHED = ("loss", "light_bce", "booster_bce")
AUC_FLOOR = 0.51  # an AUC at or below this ranks no better than chance
DEAD_LOGIT_STD = 1e-6  # validation logits whose std is at or below this are constant


class TrainingDiverged(RuntimeError):
    """Training diverged; nothing non-finite was saved. The message is one line."""


def _hint(config) -> str:
    t = config.train
    rates = [f"train.dense_optimizer {t.dense_optimizer.name} {t.dense_optimizer.learning_rate:g}"]
    if t.light_optimizer:
        o = t.light_optimizer
        rates.append(f"train.light_optimizer {o.name} {o.learning_rate:g}")
    for name, light in config.model.lights.items():
        if light.optimizer:
            o = light.optimizer
            rates.append(f"model.lights.{name}.optimizer {o.name} {o.learning_rate:g}")
    e = t.embedding_optimizer
    rates.append(f"train.embedding_optimizer {e.name} {e.learning_rate:g}")
    return (
        "Usually a learning rate too high (" + ", ".join(rates) + ") or large unclipped dense "
        "values (give them a transform or clip in the schema). Nothing non-finite was saved."
    )


def _light_dense_optimizer(config, light: str | None = None):
    """(config key, OptimizerConfig) of the optimizer of a light net's dense layers (by
    default the exported one's)."""
    light = light or config.export_light
    own = config.model.light_nets()[light].optimizer
    if own:
        return f"model.lights.{light}.optimizer", own
    t = config.train
    if t.light_optimizer:
        return "train.light_optimizer", t.light_optimizer
    return "train.dense_optimizer", t.dense_optimizer


def light_optimizer(config, light: str | None = None) -> str:
    """A light net's dense optimizer, as its config key and value ("train.x: adam 0.1")."""
    key, opt = _light_dense_optimizer(config, light)
    return f"{key}: {opt.name} {opt.learning_rate:g}"


def lower_rate_hint(config, light: str | None = None) -> str:
    """What to try for a light net killed by its learning rate: the key, a tenth of it."""
    key, opt = _light_dense_optimizer(config, light)
    return f"lower it, e.g. --set {key}.learning_rate={opt.learning_rate / 10:g}"


def describe_light(config, light: str) -> str:
    """'The light net (mlp [32]; train.light_optimizer: adam 0.1)', or with its name."""
    tower = config.model.light_nets()[light]
    units = getattr(tower, "hidden_units", ())  # a tower without an MLP (lr, fm) has none
    net = f"{tower.name} {list(units)}" if units else tower.name
    named = "" if not config.model.lights else f" {light}"
    return f"The light net{named} ({net}; {light_optimizer(config, light)})"


def light_is_dead(record: dict, light: str) -> bool:
    """Whether a light net's validation logits in an epoch's record are constant."""
    std = record.get(f"val_{light}_logit_std")
    return std is not None and std <= DEAD_LOGIT_STD


def light_health(config, record: dict, light: str = "light") -> tuple[str | None, bool]:
    """Whether a light net still learns, from one epoch's validation record.

    Args:
        config: the run's config (names the net and its optimizer in the warning).
        record: the epoch's history record (`val_<light>_auc`, `val_<light>_logit_std`).
        light: the light net's name.

    Returns:
        (a one-line warning or None, whether the net is dead).
    """
    value, std = record.get(f"val_{light}_auc"), record.get(f"val_{light}_logit_std")
    if value is None or std is None:
        return None, False
    where = f"{describe_light(config, light)} after epoch {record['epoch']}"
    if light_is_dead(record, light):
        consequence = (
            "model selection leaves it out and the other light nets train on"
            if len(config.model.light_nets()) > 1
            else "the run stops now instead of spending early stopping's patience on it"
        )
        return (
            f"WARNING: {where} is dead: its validation logits are constant (std {std:.2g}), "
            f"AUC {value:.4f}. A dead net (ReLUs that never fire) gets no gradient and does "
            f"not recover, so {consequence}. Usually its learning rate is too high for its size: "
            f"{lower_rate_hint(config, light)}.",
            True,
        )
    if value <= AUC_FLOOR:
        return (
            f"WARNING: {where} ranks no better than chance: validation AUC {value:.4f} "
            f"(<= {AUC_FLOOR}). Its output still varies, so training goes on; if it stays "
            "there, check its learning rate and the labels (the export gate refuses it).",
            False,
        )
    return None, False


def nonfinite_variables(variables: list[tf.Variable]) -> list[str]:
    """The names of the floating-point variables holding a NaN or an infinity."""
    floats = [v for v in variables if v.dtype.is_floating]
    if not floats:
        return []
    finite = _all_finite(floats)
    if bool(finite):
        return []
    return [v.name for v in floats if not bool(tf.reduce_all(tf.math.is_finite(v)))]


@tf.function(reduce_retracing=True)
def _all_finite(variables) -> tf.Tensor:
    return tf.reduce_all([tf.reduce_all(tf.math.is_finite(v)) for v in variables])


def check_state(model, where: str) -> None:
    """Refuses to let `where` save a model whose weights or optimizer slots are not finite.

    Raises:
        TrainingDiverged: naming the step and up to three of the variables.
    """
    variables = list(model.weights)
    for optimizer in model.all_optimizers:
        variables += list(optimizer.variables)
    bad = nonfinite_variables(variables)
    if bad:
        more = f" and {len(bad) - 3} more" if len(bad) > 3 else ""
        raise TrainingDiverged(
            f"Training diverged at global step {int(model.global_step.numpy()):,}: "
            f"{', '.join(bad[:3])}{more} hold non-finite values, so {where} was not "
            f"written. {_hint(model.rocket_config)}"
        )


class DivergenceGuard(tf_keras.callbacks.Callback):
    """Stops training at the first step whose loss is non-finite or beyond `MAX_BCE`, and at
    an epoch end whose weights are not finite (before the epoch's record and checkpoint).

    Place it first among the callbacks: Keras calls them in order, and one raising stops
    the others (the savers) from running for that step.

    Args:
        per_step: check every step's loss; False under ParameterServerStrategy, whose
            workers run steps asynchronously (the epoch-end check of the weights remains).
    """

    def __init__(self, per_step: bool = True) -> None:
        super().__init__()
        self.per_step = per_step
        self._supports_tf_logs = True  # reads three scalars, not every log as numpy

    def on_train_batch_end(self, batch, logs=None) -> None:
        if not self.per_step:
            return
        for name in _WATCHED:
            if logs and name in logs:
                value = float(logs[name])
                limit = MAX_BCE if name != "loss" else math.inf
                if not math.isfinite(value) or value > limit:
                    self._stop(name, value)

    def _stop(self, name: str, value: float) -> None:
        what = "the loss" if name == "loss" else f"the {name.split('_')[0]} net's cross-entropy"
        beyond = "" if not math.isfinite(value) else f" (beyond {MAX_BCE:g}: saturated scores)"
        raise TrainingDiverged(
            f"Training diverged at global step {int(self.model.global_step.numpy()):,}: "
            f"{what} (the epoch's running mean) is {value:.4g}{beyond}. "
            f"{_hint(self.model.rocket_config)}"
        )

    def on_epoch_end(self, epoch, logs=None) -> None:
        check_state(self.model, f"epoch {epoch + 1}'s checkpoint")
