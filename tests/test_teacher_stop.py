"""The teacher stops at its peak (`distill.teacher_patience`): the booster stops training and
teaches from a frozen copy of its best epoch; the booster a run keeps is its own best."""

import json

import numpy as np
import pytest
import tensorflow as tf

from rocketctr.config.core import Config, ConfigError, load_config
from rocketctr.features.schema import load_schema
from rocketctr.model.cotrain import build_model
from rocketctr.runs.selected import booster_epoch, load_booster
from rocketctr.scoring.evaluation import score_at_best
from rocketctr.serving import export_light
from rocketctr.serving.verification import loaded_variables
from rocketctr.training.selection import Selection
from tests.helpers import random_features, random_labels

SCHEMA = load_schema("criteo")
TINY = {
    "embedding_dim": 4,
    # Batch norm: its moving statistics are weights that do not train.
    "booster": {"name": "dcn", "hidden_units": [8], "num_cross_layers": 1, "batch_norm": True},
    "light": {"name": "mlp", "hidden_units": [4]},
}


def _model(patience=2, **distill):
    config = Config.from_dict(
        {"model": TINY, "distill": {"teacher_patience": patience, **distill},
         "train": {"light_optimizer": {"name": "sgd", "learning_rate": 0.5}}}
    )  # fmt: skip
    return config, build_model(config, SCHEMA)


def _kernel(model):
    """The booster's first kernel, by name (a frozen model lists its weights in another
    order)."""
    return min((v for v in model.booster.weights if v.name.endswith("kernel:0")),
               key=lambda v: v.name)  # fmt: skip


def _epochs(selection, model, sequence, first_epoch=0):
    """Feeds (light AUC, booster AUC) pairs as epochs' validation results; before each sets
    the booster's first kernel and the table's first row to the epoch number, so which
    epoch's weights a booster holds can be read back."""
    selection.set_model(model)
    selection.set_params({"epochs": 20})
    selection.on_train_begin()
    for epoch, (light, booster) in enumerate(sequence, start=first_epoch):
        if model.frozen_booster is None:
            _kernel(model).assign(tf.fill(_kernel(model).shape, float(epoch + 1)))
        table = model.embedding.trainable_weights[0]
        table[0].assign(tf.fill(table.shape[1:], float(epoch + 1)))
        selection.on_epoch_begin(epoch)
        selection.on_epoch_end(epoch, {"val_light_auc": light, "val_booster_auc": booster})


SEQUENCE = [(0.60, 0.70), (0.61, 0.74), (0.62, 0.73), (0.63, 0.735), (0.64, 0.75), (0.65, 0.70)]


def test_the_booster_stops_at_its_peak_and_teaches_from_it_unchanged(tmp_path, capsys):
    config, model = _model(patience=2)
    history = []
    selection = Selection(config, history, tmp_path / "history.json", str(tmp_path / "best"))
    _epochs(selection, model, SEQUENCE[:4])
    # The booster peaked at epoch 2; two epochs without improvement: it stops after epoch 4.
    assert [r.get("teacher_stopped") for r in history] == [None, None, None, 2]
    assert "the booster stops training and teaches from that epoch's weights" in (
        capsys.readouterr().out
    )
    assert json.loads((tmp_path / "history.json").read_text())[-1]["teacher_stopped"] == 2
    assert (tmp_path / "best" / "booster" / "ckpt-2.index").exists()
    frozen = model.frozen_booster
    assert frozen is not None and not frozen.trainable_weights
    # Its tower and its table rows are those of epoch 2, the model's own tower too.
    assert float(_kernel(frozen).numpy().flat[0]) == 2.0 == float(_kernel(model).numpy().flat[0])
    assert float(frozen.embedding.weights[0][0, 0]) == 2.0
    # No booster variable trains any more, and the light net's pull on the shared rows is
    # no longer scaled down.
    trained = {id(v) for _, group in model.optimizer_groups() for v in group}
    assert not trained & {id(v) for v in model.booster.trainable_variables}
    assert not model.booster_trains

    features, labels = random_features(SCHEMA, 64), random_labels(64)
    teacher = model(features, training=False)["booster_logits"].numpy()
    table = model.embedding.trainable_weights[0].numpy().copy()
    kernel = _kernel(model).numpy().copy()
    for _ in range(3):
        model.train_step((features, labels))
    assert not np.allclose(model.embedding.trainable_weights[0].numpy(), table)  # rows train
    np.testing.assert_array_equal(_kernel(model).numpy(), kernel)
    # What it teaches does not change from step to step.
    np.testing.assert_array_equal(model(features, training=False)["booster_logits"], teacher)
    losses = model.compute_losses(features, labels, training=True)
    np.testing.assert_array_equal(losses["booster_logits"], teacher)

    # The booster's validation metrics now are the frozen copy's: the run goes on, the
    # booster is no more watched, and epoch 5's better value is not a new booster epoch.
    _epochs(selection, model, SEQUENCE[4:], first_epoch=4)
    assert selection.teacher_epoch == 2 and booster_epoch(history, config) == 2


def test_a_resumed_run_freezes_the_same_teacher_before_its_first_step(tmp_path):
    config, model = _model(patience=2)
    history = []
    selection = Selection(config, history, tmp_path / "history.json", str(tmp_path / "best"))
    _epochs(selection, model, SEQUENCE[:5])
    _, resumed = _model(patience=2)
    kept = json.loads((tmp_path / "history.json").read_text())[:4]  # killed in epoch 5
    selection = Selection(config, kept, tmp_path / "history.json", str(tmp_path / "best"))
    assert selection.teacher_epoch == 2 and resumed.frozen_booster is None
    selection.set_model(resumed)
    selection.on_train_begin()
    assert float(_kernel(resumed.frozen_booster).numpy().flat[0]) == 2.0
    features = random_features(SCHEMA, 16)
    np.testing.assert_array_equal(
        resumed(features)["booster_logits"], model(features)["booster_logits"]
    )


def test_a_run_without_its_teachers_weights_is_refused_on_resume(tmp_path):
    config, model = _model(patience=1)
    history = []
    selection = Selection(config, history, None, str(tmp_path / "best"))
    _epochs(selection, model, SEQUENCE[:3])
    assert history[-1]["teacher_stopped"] == 2
    for path in (tmp_path / "best" / "booster").iterdir():
        path.unlink()
    selection = Selection(config, history, None, str(tmp_path / "best"))
    selection.set_model(build_model(config, SCHEMA))
    with pytest.raises(ConfigError, match="the weights of its epoch 2, which are not in"):
        selection.on_train_begin()


def test_the_kept_booster_is_scored_at_its_own_best_epoch(tmp_path):
    """Without teacher_patience too: the booster is kept at its own best epoch, not the
    light net's, and evaluation scores it there."""
    config, model = _model(patience=0)
    history = []
    best = tmp_path / "best"
    selection = Selection(config, history, None, str(best))
    _epochs(selection, model, SEQUENCE[:4])
    assert model.frozen_booster is None  # no teacher patience: it trained throughout
    assert booster_epoch(history, config) == 2
    assert sorted(p.name for p in (best / "booster").iterdir())[-1] == "ckpt-2.index"
    dataset = tf.data.Dataset.from_tensors((random_features(SCHEMA, 32), random_labels(32)))
    at_four = score_at_best(model, dataset, ["booster", "light"], None, history)
    assert load_booster(model, best, history) == 2
    assert float(_kernel(model.frozen_booster).numpy().flat[0]) == 2.0
    at_best = score_at_best(model, dataset, ["booster", "light"], best, history)
    np.testing.assert_array_equal(at_best.logits["light"], at_four.logits["light"])
    assert not np.allclose(at_best.logits["booster"], at_four.logits["booster"])


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"distill.codistill_replicas": 2}, "codistillation peers teach here"),
        ({"train.restore_best": False}, "it needs train.restore_best"),
        ({"train.selection_metric": "booster_auc"}, "a light-net train.selection_metric"),
        ({"distill.teacher_patience": -1}, "must be >= 0"),
    ],
)
def test_teacher_patience_is_refused_where_it_cannot_hold(overrides, message):
    data = {"distill": {"teacher_patience": 2}}
    with pytest.raises(ConfigError, match=message):
        Config.from_dict(data).replace(overrides)


@pytest.mark.parametrize("mode", ["light_only", "booster_only"])
def test_teacher_patience_is_inert_in_a_presets_baselines(mode, tmp_path):
    """`--config frappe --set distill.mode=light_only` (the preset's own baseline) trains."""
    config = load_config("frappe").replace({"distill.mode": mode, "model.light": TINY["light"],
                                            "model.booster": TINY["booster"]})  # fmt: skip
    assert config.distill.teacher_patience == 2
    selection = Selection(config, [], None, str(tmp_path / "best"))
    model = build_model(config.replace({"schema": "criteo"}), SCHEMA)
    tower = "light" if mode == "light_only" else "booster"
    aucs = [0.7, 0.72, 0.71, 0.70, 0.69]
    selection.set_model(model)
    selection.set_params({"epochs": 10})
    selection.on_train_begin()
    for epoch, auc in enumerate(aucs):
        selection.on_epoch_begin(epoch)
        selection.on_epoch_end(epoch, {f"val_{tower}_auc": auc, "val_booster_auc": auc})
    assert model.frozen_booster is None and selection.teacher_epoch is None


def test_light_distill_selects_the_epoch_of_the_lowest_weighted_distillation_loss(tmp_path):
    config = Config.from_dict(
        {"model": TINY, "train": {"selection_metric": "light_distill"},
         "distill": {"methods": {"kd": {"weight": 1.0}, "logit_mse": {"weight": 0.5}}}}
    )  # fmt: skip
    model = build_model(config, SCHEMA)
    history = []
    selection = Selection(config, history, None, str(tmp_path / "best"))
    selection.set_model(model)
    selection.set_params({"epochs": 10})
    # Σ weight · loss: 0.60, 0.45, 0.50, while kd alone is lowest at epoch 3.
    for epoch, (kd, mse) in enumerate([(0.4, 0.4), (0.3, 0.3), (0.2, 0.6)]):
        selection.on_epoch_begin(epoch)
        selection.on_epoch_end(epoch, {"val_light_auc": 0.7, "val_kd": kd, "val_logit_mse": mse})
    np.testing.assert_allclose([r["val_light_distill"] for r in history], [0.6, 0.45, 0.5])
    assert selection.monitor == "val_light_distill" and selection.best == 2


@pytest.mark.parametrize(
    "distill, message",
    [
        ({"mode": "light_only"}, "the run needs a teacher \\(distill.mode 'light_only', without"),
        ({"mode": "booster_only"}, "the run needs a teacher \\(distill.mode 'booster_only'\\)"),
    ],
)
def test_light_distill_is_refused_without_a_teacher(distill, message):
    config = Config.from_dict({"distill": distill, "train": {"selection_metric": "light_distill"}})
    with pytest.raises(ConfigError, match=message):
        Selection(config, [], None, None)


def test_the_export_of_a_run_whose_teacher_froze_holds_the_light_path_only(tmp_path):
    config, model = _model(patience=1)
    selection = Selection(config, [], None, str(tmp_path / "best"))
    _epochs(selection, model, SEQUENCE[:3])
    assert model.frozen_booster is not None
    path = export_light(model, tmp_path / "export", force=True)  # verified: light path only
    loaded = tf.saved_model.load(str(path))
    names = [v.name for v in loaded_variables(loaded)]
    assert names and not [n for n in names if "booster" in n]


def test_the_report_marks_where_the_teacher_froze(tmp_path):
    from rocketctr.scoring.report import _teacher_note, curves_plot

    config, model = _model(patience=2)
    history = []
    selection = Selection(config, history, None, str(tmp_path / "best"))
    _epochs(selection, model, SEQUENCE[:5])
    assert _teacher_note(history) == (
        " The booster stopped training after epoch 4 and taught from its best epoch, 2, "
        "frozen, from then on."
    )
    assert _teacher_note(history[:3]) == ""
    unmarked = [{k: v for k, v in r.items() if k != "teacher_stopped"} for r in history]
    with_stop, without = curves_plot(history, 5), curves_plot(unmarked, 5)
    assert with_stop.startswith("<img") and without.startswith("<img") and with_stop != without
