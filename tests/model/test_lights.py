"""Several light nets in one model (`model.lights`): isolation, gradient block, optimizers."""

import os

import numpy as np
import pytest
import tensorflow as tf

from rocketctr.config.core import Config, ConfigError
from rocketctr.features.schema import load_schema
from rocketctr.model.cotrain import build_model, variable_role
from rocketctr.runs.selected import light_epoch, load_light
from rocketctr.scoring.evaluation import score_at_best
from rocketctr.training.selection import Selection
from tests.helpers import random_features, random_labels, tiny_config

SCHEMA = load_schema("criteo")
LIGHTS = {
    "small": {"name": "mlp", "hidden_units": [4]},
    "wide": {
        "name": "mlp",
        "hidden_units": [16, 8],
        "optimizer": {"name": "sgd", "learning_rate": 0.5},
        "embedding_gradient_scale": 0.0,
    },
    "lr": {"name": "lr"},
}


def _config(methods=None, **distill):
    distill = {"methods": methods or {"kd": {"weight": 1.0}}, **distill}
    config = tiny_config({"lights": LIGHTS}, distill=distill)
    return config.replace({"model.booster.num_cross_layers": 2})


def _scope(variable) -> str:
    """The top scope of a variable (or of its name) under the model's."""
    parts = getattr(variable, "name", variable).split("/")
    return parts[1] if parts[0] == "rocketctr" else parts[0]


def _gradients(model, loss_of):
    features, labels = random_features(SCHEMA, 16), random_labels(16)
    with tf.GradientTape() as tape:
        loss = loss_of(model.compute_losses(features, labels, training=True))
    variables = model.trainable_variables
    grads = tape.gradient(loss, variables)
    return {v.name: g for v, g in zip(variables, grads, strict=True)}


def _nonzero(grad) -> bool:
    if grad is None:
        return False
    values = grad.values if isinstance(grad, tf.IndexedSlices) else grad
    return bool(tf.reduce_any(values != 0))


def test_each_light_net_has_its_own_scope_metrics_and_roles():
    model = build_model(_config(), SCHEMA)
    assert list(model.light_nets) == ["small", "wide", "lr"]
    scopes = {_scope(v) for v in model.trainable_variables}
    assert {"light_small", "light_wide", "light_lr", "booster", "shared_embedding"} <= scopes
    assert {variable_role(v.name) for v in model.trainable_variables} == {
        "shared_embedding",
        "booster",
        "light",
    }
    outputs = model(random_features(SCHEMA, 8), training=False)
    assert sorted(outputs) == ["booster_logits", "lr_logits", "small_logits", "wide_logits"]
    names = [m.name for m in model.metrics]
    for light in LIGHTS:
        assert {f"{light}_bce", f"{light}_auc", f"{light}_logit_std", f"{light}_kd"} <= set(names)
    assert "light_auc" not in names and names.count("booster_bce") == 1


@pytest.mark.parametrize("light", list(LIGHTS))
def test_a_light_nets_loss_never_reaches_another_light_net(light):
    model = build_model(_config(), SCHEMA)
    grads = _gradients(model, lambda losses: losses[f"{light}_bce"] + losses[f"{light}_kd"])
    own = [n for n in grads if _scope(n) == f"light_{light}"]
    assert own and any(_nonzero(grads[n]) for n in own)
    others = [n for n in grads if _scope(n).startswith("light_") and n not in own]
    assert others and not any(_nonzero(grads[n]) for n in others)


@pytest.mark.parametrize(
    "methods",
    [
        {"kd": {"weight": 1.0, "temperature": 2.0}},
        {"logit_mse": {"weight": 1.0}},
        {"hidden": {"weight": 1.0}},
    ],
)
def test_no_light_nets_hint_reaches_a_booster_variable(methods):
    lights = {k: v for k, v in LIGHTS.items() if k != "lr"} if "hidden" in methods else LIGHTS
    config = _config(methods).replace({"model.lights": lights})
    model = build_model(config, SCHEMA)
    hints = [n for net in model.light_nets.values() for n in net.loss_names]
    assert len(hints) == len(lights)
    grads = _gradients(
        model, lambda losses: losses["hint_weight"] * tf.add_n([losses[n] for n in hints])
    )
    booster = [n for n in grads if _scope(n) == "booster"]
    assert len(booster) >= 6
    assert not any(_nonzero(grads[n]) for n in booster)
    assert any(_nonzero(grads[n]) for n in grads if _scope(n) == "light_small")


def test_the_booster_loss_counts_once_and_the_total_adds_every_net():
    model = build_model(_config(), SCHEMA)
    features, labels = random_features(SCHEMA, 16), random_labels(16)
    losses = model.compute_losses(features, labels, training=False)
    expected = losses["booster_bce"] + sum(
        losses[f"{n}_bce"] + losses["hint_weight"] * losses[f"{n}_kd"] for n in LIGHTS
    )
    np.testing.assert_allclose(float(losses["loss"]), float(expected), rtol=1e-6)


def test_a_light_nets_own_optimizer_and_gradient_scale():
    config = _config().replace({"train.dense_optimizer": {"name": "sgd", "learning_rate": 1e-9}})
    model = build_model(config, SCHEMA)
    wide = model.light_nets["wide"]
    assert wide.optimizer is not None and wide.gradient_scale == 0.0
    assert model.light_nets["small"].optimizer is None
    assert model.light_nets["small"].gradient_scale == 1.0
    assert {id(v) for v in model.light_variables(wide)} == {
        id(v) for v in wide.tower.trainable_variables
    }
    # scale 0: the wide net reads the shared rows but does not move them
    grads = _gradients(model, lambda losses: losses["wide_bce"] + losses["wide_kd"])
    shared = [g for n, g in grads.items() if _scope(n) == "shared_embedding"]
    assert shared and not any(_nonzero(g) for g in shared)
    before = {v.name: v.numpy().copy() for v in model.trainable_variables}
    model.train_on_batch(random_features(SCHEMA, 32), random_labels(32))
    change = {}
    for v in model.trainable_variables:
        delta = float(np.abs(v.numpy() - before[v.name]).max())
        change[_scope(v)] = max(change.get(_scope(v), 0.0), delta)
    assert change["light_wide"] > 1e-3  # its own SGD at 0.5
    assert change["light_small"] < 1e-6  # the dense optimizer: SGD at 1e-9
    assert int(wide.optimizer.iterations) == 1 == int(model.global_step)


def test_select_light_switches_the_served_net():
    model = build_model(_config(), SCHEMA)
    features = random_features(SCHEMA, 8)
    outputs = model(features, training=False)
    assert model.lead.name == "small"  # export.light unset: the first one
    for name in LIGHTS:
        model.select_light(name)
        np.testing.assert_allclose(
            model.light_logits(features).numpy(), outputs[f"{name}_logits"].numpy(), atol=1e-6
        )
    with pytest.raises(ConfigError, match="No light net 'big'"):
        model.select_light("big")
    assert build_model(_config().replace({"export.light": "wide"}), SCHEMA).lead.name == "wide"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"model.lights": {"booster": {"name": "mlp"}}}, "a light net's name must be"),
        ({"model.lights": {"Big": {"name": "mlp"}}}, "a light net's name must be"),
        ({"model.light.hidden_units": [64]}, "sets both model.light and model.lights"),
        ({"export.light": "big"}, "export.light names 'big'; the light nets are"),
        ({"train.selection_metric": "booster_auc"}, "each is selected on its own metric"),
        ({"distill.codistill_replicas": 2}, "Codistillation trains one light net"),
        ({"model.separate_light_embeddings": True}, "an ablation of one light net"),
        ({"model.lights.wide.embedding_gradient_scale": 2.0}, "must be null or in"),
        ({"model.lights.wide.hidden_units": [0]}, "must list positive layer widths"),
    ],
)
def test_invalid_light_net_configs_are_refused_naming_the_key(overrides, message):
    with pytest.raises(ConfigError, match=message):
        _config().replace(overrides)


def test_a_config_of_one_light_net_keeps_its_names():
    light, booster = {"name": "mlp", "hidden_units": [4]}, {"name": "dcn", "hidden_units": [8]}
    config = Config.from_dict({"model": {"light": light, "booster": booster}})
    model = build_model(config, SCHEMA)
    assert list(model.light_nets) == ["light"]
    assert {_scope(v) for v in model.trainable_variables} == {
        "shared_embedding",
        "booster",
        "light",
    }
    assert "light_auc" in [m.name for m in model.metrics] and "kd" in model._trackers
    assert Config.from_dict(config.to_dict()) == config


def test_a_checkpoint_of_one_light_net_keeps_the_object_names_runs_had(tmp_path):
    """Checkpoints restore by object path: these are the paths of runs before model.lights."""
    light, booster = {"name": "mlp", "hidden_units": [4]}, {"name": "dcn", "hidden_units": [8]}
    config = Config.from_dict(
        {
            "model": {"light": light, "booster": booster},
            "train": {"light_optimizer": {"name": "adam", "learning_rate": 0.1}},
        }
    )
    model = build_model(config, SCHEMA)
    path = tf.train.Checkpoint(model=model).write(str(tmp_path / "ckpt"))
    paths = {"/".join(k.split("/")[:2]) for k, _ in tf.train.list_variables(path)}
    assert paths - {"_CHECKPOINTABLE_OBJECT_GRAPH", "model/_aucs", "model/_trackers"} == {
        "model/booster",
        "model/dense_optimizer",
        "model/embedding",
        "model/embedding_optimizer",
        "model/light",
        "model/light_optimizer",
    }


def _stamp(model, epoch: int) -> None:
    """Sets every light net's first kernel and the shared table to the epoch number."""
    for net in model.light_nets.values():
        kernel = net.tower.trainable_weights[0]
        kernel.assign(tf.fill(kernel.shape, float(epoch)))
    model.embedding.table.assign(tf.fill(model.embedding.table.shape, float(epoch)))


def _stamps(model) -> dict[str, tuple[float, float]]:
    return {
        name: (
            float(net.tower.trainable_weights[0].numpy().flat[0]),
            float(model.embedding.table.numpy().flat[0]),
        )
        for name, net in model.light_nets.items()
    }


def test_each_light_net_keeps_its_own_best_epoch_and_the_run_stops_when_none_improves(
    tmp_path, capsys
):
    config = _config().replace({"train.early_stopping_patience": 2, "export.light": "wide"})
    model = build_model(config, SCHEMA)
    aucs = {  # per epoch; small peaks at 2, wide at 4, lr at 3; none improves after 4
        "small": [0.60, 0.70, 0.65, 0.66, 0.64, 0.69, 0.75],
        "wide": [0.61, 0.62, 0.63, 0.72, 0.70, 0.71, 0.80],
        "lr": [0.55, 0.56, 0.58, 0.57, 0.57, 0.57, 0.90],
    }
    history: list[dict] = []
    selection = Selection(config, history, tmp_path / "history.json", str(tmp_path / "best"))
    selection.set_model(model)
    selection.set_params({"epochs": 10})
    for epoch in range(7):
        if model.stop_training:
            break
        _stamp(model, epoch + 1)
        selection.on_epoch_begin(epoch)
        logs = {f"val_{n}_auc": v[epoch] for n, v in aucs.items()}
        logs.update({f"val_{n}_logit_std": 0.5 for n in aucs})
        selection.on_epoch_end(epoch, logs)
    # epochs 5 and 6 improve none of them: stopped after 6
    assert [r["epoch"] for r in history] == [1, 2, 3, 4, 5, 6]
    assert history[-1]["stop"] == "early_stopping"
    assert "No light net has improved for 2 epoch(s) since epoch 4: stopping early" in (
        capsys.readouterr().out
    )
    # Each keeps only its selected epoch's weights (the ones they replaced went as the next
    # epochs started): the whole model's (wide is exported) and each light net's own.
    assert sorted(os.listdir(tmp_path / "best")) == [
        "ckpt-4.data-00000-of-00001",
        "ckpt-4.index",
        "lr",
        "small",
        "wide",
    ]
    for name, epoch in {"small": 2, "wide": 4, "lr": 3}.items():
        assert sorted(os.listdir(tmp_path / "best" / name)) == [
            f"ckpt-{epoch}.data-00000-of-00001",
            f"ckpt-{epoch}.index",
        ]
    for name, epoch in {"small": 2, "wide": 4, "lr": 3}.items():
        assert light_epoch(history, config, name) == epoch
        assert load_light(model, tmp_path / "best", history, name) == epoch
        assert model.lead.name == name
        kernel, table = _stamps(model)[name]
        assert kernel == epoch
        assert table == epoch or name == "lr"  # LR reads no embedding table
    # Scoring with another net selected: the booster as the checkpoint's net (wide) has it,
    # each light net at its own best epoch, and the selected net selected again after.
    features, labels = random_features(SCHEMA, 32), random_labels(32)
    dataset = tf.data.Dataset.from_tensors((features, labels))
    expected = {}
    for name in ("wide", "small", "lr"):
        load_light(model, tmp_path / "best", history, name)
        expected[name] = model(features)[f"{name}_logits"].numpy()
        if name == "wide":
            expected["booster"] = model(features)["booster_logits"].numpy()
    towers = ["booster", "small", "wide", "lr"]
    scores = score_at_best(model, dataset, towers, tmp_path / "best", history)
    for tower in towers:
        np.testing.assert_allclose(scores.logits[tower], expected[tower], atol=1e-6)
    assert model.lead.name == "lr"
    load_light(model, tmp_path / "best", history, "small")  # its table is another epoch's
    assert not np.array_equal(model(features)["booster_logits"].numpy(), expected["booster"])
    # a resumed run replays the record to the same state
    again = Selection(config, list(history), None, str(tmp_path / "best"))
    assert {n: t.best for n, t in again.lights.items()} == {"small": 2, "wide": 4, "lr": 3}
    assert again.best == 4 and again.monitor == "val_wide_auc" and again.stopped_early


def test_a_dead_light_net_is_left_out_and_the_others_train_on(tmp_path, capsys):
    config = _config().replace({"train.early_stopping_patience": 1})
    model = build_model(config, SCHEMA)
    selection = Selection(config, [], None, str(tmp_path / "best"))
    selection.set_model(model)
    selection.set_params({"epochs": 10})
    for epoch, small in enumerate([0.6, 0.7, 0.8]):
        selection.on_epoch_begin(epoch)
        selection.on_epoch_end(
            epoch,
            {
                "val_small_auc": small,
                "val_small_logit_std": 0.3,
                "val_wide_auc": 0.5,
                "val_wide_logit_std": 0.0,
                "val_lr_auc": 0.6,
                "val_lr_logit_std": 0.3,
            },
        )
    out = capsys.readouterr().out
    assert (
        "The light net wide (mlp [16, 8]; model.lights.wide.optimizer: sgd 0.5) after "
        "epoch 1 is dead" in out
    )
    assert "model selection leaves it out and the other light nets train on" in out
    assert not model.stop_training  # small still improves
    assert selection.lights["wide"].dead and not selection.lights["small"].dead


def test_each_light_nets_export_holds_its_own_variables_and_scores_like_it(tmp_path):
    from rocketctr import serving
    from rocketctr.serving.verification import loaded_variables

    model = build_model(_config(), SCHEMA)
    model.train_on_batch(random_features(SCHEMA, 64, seed=1), random_labels(64, seed=1))
    rows = random_features(SCHEMA, 200, seed=3)
    for name, net in model.light_nets.items():
        model.select_light(name)
        # Untrained nets rank at chance on random rows: the gate would refuse them.
        path = serving.export_light(model, tmp_path / name, example_features=rows, force=True)
        loaded = tf.saved_model.load(str(path))
        scopes = {_scope(v) for v in loaded_variables(loaded)}
        assert f"light_{name}" in scopes
        assert not {s for s in scopes if s.startswith("light_")} - {f"light_{name}"}
        assert "booster" not in scopes
        info = serving.read_export_info(path)
        assert info["light"] == name and info["config"]["export"]["light"] == name
        assert info["verification"]["max_abs_diff"] <= 1e-5
        served = loaded.signatures["serving_default"](
            **{c: rows[c] for c in model.light_processor.input_dtypes}
        )["probabilities"].numpy()
        expected = tf.sigmoid(model(rows, training=False)[f"{name}_logits"]).numpy()
        np.testing.assert_allclose(served.reshape(-1), expected.reshape(-1), atol=1e-5)
        params = sum(int(np.prod(v.shape)) for v in net.tower.variables)
        assert info["parameters"]["light"]["tower"] == params


def test_a_resume_with_other_light_nets_names_each_added_or_removed_net():
    from rocketctr.training.resume import _config_changes, _flatten

    saved = _flatten(_config().to_dict())
    other = {
        "model.lights": {**LIGHTS, "big": {"name": "mlp"}},
        "model.lights.small.hidden_units": [8],
    }
    wanted = _flatten(_config().replace(other).to_dict())
    keys = sorted(k for k in set(saved) | set(wanted) if saved.get(k) != wanted.get(k))
    assert _config_changes(saved, wanted, keys) == [
        "model.lights.big: added",
        "model.lights.small.hidden_units: [4] -> [8]",
    ]
    assert _config_changes(wanted, saved, keys) == [
        "model.lights.big: removed",
        "model.lights.small.hidden_units: [8] -> [4]",
    ]


def test_a_frozen_two_stage_teacher_teaches_every_light_net():
    from rocketctr.distill.teacher import RunTeacher

    teacher_model = build_model(_config(), SCHEMA)
    teacher_model.trainable = False
    student = build_model(_config(mode="light_only"), SCHEMA, teacher=RunTeacher(teacher_model))
    assert not student.has_booster and list(student.light_nets) == list(LIGHTS)
    features, labels = random_features(SCHEMA, 16), random_labels(16)
    with tf.GradientTape() as tape:
        losses = student.compute_losses(features, labels, training=True)
        hint = tf.add_n([losses[f"{name}_kd"] for name in LIGHTS])
    grads = tape.gradient(hint, student.trainable_variables)
    for name in LIGHTS:
        own = [
            g
            for v, g in zip(student.trainable_variables, grads, strict=True)
            if _scope(v) == f"light_{name}"
        ]
        assert own and any(_nonzero(g) for g in own), name
    assert float(losses["booster_bce"]) == 0.0
