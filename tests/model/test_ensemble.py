"""A teacher ensemble (`model.boosters`): several boosters on the shared tables, each
trained on the labels alone, teach through their mean or gated mixture."""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from rocketctr.config.core import Config, ConfigError
from rocketctr.distill.teacher import RunTeacher
from rocketctr.features.schema import load_schema
from rocketctr.model.cotrain import build_model, variable_role
from rocketctr.serving import export_light
from rocketctr.serving.verification import loaded_variables
from rocketctr.training.selection import Selection
from tests.helpers import random_features, random_labels, tiny_config

SCHEMA = load_schema("criteo")
DCN = {"name": "dcn", "hidden_units": [8], "num_cross_layers": 1, "batch_norm": True}
XDEEPFM = {"name": "xdeepfm", "hidden_units": [8], "cin_layer_sizes": [4]}
BOOSTERS = {"dcn": DCN, "xdeepfm": XDEEPFM}


def _config(mixture="mean", boosters=BOOSTERS, **sections):
    return tiny_config({"boosters": boosters, "booster_mixture": mixture}, **sections)


def _by_name(variables):
    return {v.name: v for v in variables}


def _gradients(model, loss_fn, features, labels):
    """{variable name: gradient (zeros where None)} of loss_fn(losses) over every trainable."""
    variables = model.trainable_variables
    with tf.GradientTape() as tape:
        loss = loss_fn(model.compute_losses(features, labels, training=True))
    grads = tape.gradient(loss, variables)
    return {
        v.name: np.zeros(v.shape) if g is None else tf.convert_to_tensor(g).numpy()
        for v, g in zip(variables, grads, strict=True)
    }


@pytest.mark.parametrize("mixture", ["mean", "gated"])
def test_each_booster_learns_from_the_labels_alone_as_it_would_alone(mixture):
    """The distillation gradient is exactly 0 on every booster and gate variable, and each
    booster's gradient of the whole loss equals that of the same booster trained alone on
    the same batch and the same rows."""
    tf_keras.utils.set_random_seed(0)
    model = build_model(_config(mixture), SCHEMA)
    features, labels = random_features(SCHEMA, 64), random_labels(64)
    teacher_side = [v for v in model.trainable_variables if variable_role(v.name) == "booster"]
    gate = [v for v in teacher_side if "booster_gate" in v.name]
    assert bool(gate) == (mixture == "gated")
    assert len(teacher_side) >= 12

    def distillation(losses):
        return losses["kd"]

    grads = _gradients(model, distillation, features, labels)
    assert any(np.any(grads[v.name]) for v in model.light.trainable_variables)
    for v in teacher_side:
        assert not np.any(grads[v.name]), f"distillation reaches {v.name}"

    whole = _gradients(model, lambda losses: losses["loss"], features, labels)
    for name, config in BOOSTERS.items():
        alone_config = tiny_config({"booster": config}, distill={"mode": "booster_only"})
        alone = build_model(alone_config, SCHEMA)
        member = model.booster.members[name]
        for mine, theirs in zip(member.weights, alone.booster.weights, strict=True):
            theirs.assign(mine)
        alone.embedding.table.assign(model.embedding.table)
        theirs = _gradients(alone, lambda losses: losses["loss"], features, labels)
        for mine, other in zip(
            member.trainable_variables, alone.booster.trainable_variables, strict=True
        ):
            np.testing.assert_allclose(
                whole[mine.name], theirs[other.name], rtol=1e-5, atol=1e-7, err_msg=mine.name
            )
    if gate:  # the gate learns from the mixture's logloss
        assert all(np.any(whole[v.name]) for v in gate)


@pytest.mark.parametrize("mixture", ["mean", "gated"])
def test_an_ensemble_trains_in_bf16_with_xla_towers(mixture):
    config = _config(mixture, train={"mixed_precision": True, "jit_compile": True})
    model = build_model(config, SCHEMA)
    assert all(m.compute_dtype == "bfloat16" for m in model.booster.members.values())
    logs = model.train_step((random_features(SCHEMA, 32), random_labels(32)))
    assert all(np.isfinite(float(v)) for v in logs.values())
    out = model(random_features(SCHEMA, 8), training=False)
    assert all(v.dtype == tf.float32 for v in out.values())


def test_the_teacher_is_the_mean_of_the_boosters_logits_and_each_is_logged():
    model = build_model(_config("mean"), SCHEMA)
    features, labels = random_features(SCHEMA, 32), random_labels(32)
    out = model(features, training=False)
    assert set(out) == {
        "booster_logits",
        "booster_dcn_logits",
        "booster_xdeepfm_logits",
        "light_logits",
    }
    np.testing.assert_allclose(
        out["booster_logits"],
        (out["booster_dcn_logits"] + out["booster_xdeepfm_logits"]) / 2,
        rtol=1e-6,
        atol=1e-6,
    )
    logs = model.train_step((features, labels))
    for tower in ("booster", "booster_dcn", "booster_xdeepfm"):
        assert f"{tower}_auc" in logs and f"{tower}_bce" in logs
    losses = model.compute_losses(features, labels, training=False)
    bce = tf_keras.losses.binary_crossentropy(labels, tf.sigmoid(losses["booster_logits"]))
    np.testing.assert_allclose(float(losses["booster_bce"]), float(bce), rtol=1e-4)
    # The training loss holds each booster's BCE (a mean mixture has nothing to train).
    expected = losses["light_bce"] + losses["kd"] + losses["booster_dcn_bce"]
    expected += losses["booster_xdeepfm_bce"]
    np.testing.assert_allclose(float(losses["loss"]), float(expected), rtol=1e-5)


def test_the_gated_mixture_weights_each_example_and_stays_between_its_boosters():
    model = build_model(_config("gated"), SCHEMA)
    model.booster.gate.kernel.assign(tf.random.normal(model.booster.gate.kernel.shape, seed=1))
    out = model(random_features(SCHEMA, 64), training=False)
    low = np.minimum(out["booster_dcn_logits"], out["booster_xdeepfm_logits"])
    high = np.maximum(out["booster_dcn_logits"], out["booster_xdeepfm_logits"])
    mixed = out["booster_logits"].numpy()
    assert np.all(mixed >= low - 1e-6) and np.all(mixed <= high + 1e-6)
    mean = (low + high) / 2
    assert not np.allclose(mixed, mean, atol=1e-4)  # per example, not the mean


def test_the_ensemble_stops_at_its_peak_and_teaches_from_it_unchanged(tmp_path):
    config = _config("gated", distill={"teacher_patience": 1})
    model = build_model(config, SCHEMA)
    selection = Selection(config, [], None, str(tmp_path / "best"))
    selection.set_model(model)
    selection.set_params({"epochs": 10})
    selection.on_train_begin()
    gate = model.booster.gate.kernel
    for epoch, booster_auc in enumerate([0.70, 0.74, 0.73]):
        if model.frozen_booster is None:
            gate.assign(tf.fill(gate.shape, 0.01 * (epoch + 1)))
        selection.on_epoch_begin(epoch)
        selection.on_epoch_end(epoch, {"val_light_auc": 0.6, "val_booster_auc": booster_auc})
    assert selection.teacher_epoch == 2
    frozen = model.frozen_booster
    assert frozen is not None and set(frozen.booster.members) == {"dcn", "xdeepfm"}
    np.testing.assert_allclose(frozen.booster.gate.kernel.numpy(), 0.02)
    trained = {id(v) for _, group in model.optimizer_groups() for v in group}
    assert not trained & {id(v) for v in model.booster.trainable_variables}
    features, labels = random_features(SCHEMA, 32), random_labels(32)
    teacher = model(features, training=False)
    for _ in range(3):
        model.train_step((features, labels))
    after = model(features, training=False)
    for tower in ("booster", "booster_dcn", "booster_xdeepfm"):
        np.testing.assert_array_equal(after[f"{tower}_logits"], teacher[f"{tower}_logits"])
    assert not np.array_equal(after["light_logits"], teacher["light_logits"])


def test_nothing_of_any_booster_or_the_gate_is_exported(tmp_path):
    model = build_model(_config("gated"), SCHEMA)
    model.train_step((random_features(SCHEMA, 32), random_labels(32)))
    path = export_light(model, tmp_path / "export", force=True)  # verified: light path only
    names = [v.name for v in loaded_variables(tf.saved_model.load(str(path)))]
    assert names and not [n for n in names if "booster" in n]


def test_several_finished_runs_teach_through_their_mean_logit():
    runs = [
        build_model(tiny_config({"booster": b}, distill={"mode": "booster_only"}), SCHEMA)
        for b in (DCN, XDEEPFM)
    ]
    features = random_features(SCHEMA, 16)
    (logits, hidden), scale = RunTeacher(*runs)(features, {})
    expected = np.mean([r(features)["booster_logits"].numpy() for r in runs], axis=0)
    np.testing.assert_allclose(logits.numpy(), expected, rtol=1e-6, atol=1e-6)
    assert hidden == {} and float(scale) == 1.0
    assert RunTeacher(runs[0]).hidden_names == ("cross", "mlp", "final")
    one = Config.from_dict({"distill": {"mode": "light_only", "teacher_dir": "/a"}})
    two = Config.from_dict({"distill": {"mode": "light_only", "teacher_dir": ["/a", "/b"]}})
    assert one.distill.teacher_dir == ("/a",) and two.distill.teacher_dir == ("/a", "/b")


@pytest.mark.parametrize(
    "model, message",
    [
        ({"boosters": {"dcn": DCN}}, "an ensemble of two or more boosters"),
        ({"boosters": {"gate": DCN, "b": DCN}}, "a booster's name must be"),
        ({"boosters": {"Dcn": DCN, "b": DCN}}, "a booster's name must be"),
        ({"booster_mixture": "gated"}, "this config has one booster"),
        ({"boosters": BOOSTERS, "booster_mixture": "max"}, "must be one of \\['mean', 'gated'\\]"),
        ({"lights": {"booster_x": {"name": "mlp"}}}, "not start with booster_"),
    ],
)
def test_an_ensemble_that_cannot_be_built_is_refused_naming_its_key(model, message):
    with pytest.raises(ConfigError, match=message):
        tiny_config(model)


def test_model_booster_and_model_boosters_exclude_each_other():
    with pytest.raises(ConfigError, match="sets both model.booster and model.boosters"):
        Config.from_dict({"model": {"booster": DCN, "boosters": BOOSTERS}})


def test_a_hidden_layer_hint_needs_one_teacher_tower():
    config = _config(distill={"methods": {"hidden": {"weight": 1.0}}})
    with pytest.raises(ConfigError, match="a mixture of several teachers"):
        build_model(config, SCHEMA)
