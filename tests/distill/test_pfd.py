"""PFD: convex hint form, λ = 0 during warm-up, no distill gradient into the booster."""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from rocketctr.config.core import Config, ConfigError
from rocketctr.features.schema import load_schema
from rocketctr.model.cotrain import build_model, variable_role
from rocketctr.towers import TowerOutput
from tests.helpers import random_features, random_labels

PFD_SCHEMA = load_schema("synthetic_pfd")
# Criteo with a privileged categorical feature: its embedding rows are booster-only too.
CRITEO = dataclasses.replace(load_schema("criteo"), privileged=("I1", "C1"))


def _config(schema_name="synthetic_pfd", hint="kd", weight=0.5, **distill) -> Config:
    knobs = {"weight": weight, **({"temperature": 2.0} if hint == "kd" else {})}
    return Config.from_dict(
        {
            "schema": schema_name,
            "model": {
                "embedding_dim": 4,
                "booster": {"name": "dcn", "hidden_units": [8], "num_cross_layers": 1},
                "light": {"name": "mlp", "hidden_units": [4]},
            },
            "distill": {
                "methods": {hint: knobs},
                "hint_form": "convex",
                "warmup_steps": 5,
                **distill,
            },
        }
    )


def _gradients(model, schema, loss_fn, seed=0):
    features, labels = random_features(schema, 16, seed=seed), random_labels(16, seed=seed)
    with tf.GradientTape() as tape:
        losses = model.compute_losses(features, labels, training=True)
        loss = loss_fn(losses)
    variables = model.trainable_variables
    grads = tape.gradient(loss, variables)
    return losses, [(v, g) for v, g in zip(variables, grads, strict=True)]


def _dense(grad):
    return np.zeros(0) if grad is None else tf.convert_to_tensor(grad).numpy()


def _hint(losses):
    (name,) = [n for n in ("kd", "logit_mse") if n in losses]
    return losses[name]


def _distill_term(losses):
    return losses["hint_weight"] * _hint(losses)


@pytest.mark.parametrize("hint_form", ["additive", "convex"])
@pytest.mark.parametrize("hint", ["logit_mse", "kd"])
def test_warmup_distill_term_gives_exactly_zero_gradient(hint_form, hint):
    model = build_model(_config(hint_form=hint_form, hint=hint), PFD_SCHEMA)
    assert int(model.global_step.numpy()) == 0
    losses, grads = _gradients(model, PFD_SCHEMA, _distill_term)
    assert float(losses["hint_weight"]) == 0.0 and float(_hint(losses)) > 0
    assert len(grads) >= 8
    for variable, grad in grads:
        assert not np.any(_dense(grad)), variable.name
    # And the total is exactly the two label losses: the light BCE keeps weight 1.
    _, total = _gradients(model, PFD_SCHEMA, lambda loss: loss["loss"])
    _, labels_only = _gradients(
        model, PFD_SCHEMA, lambda loss: loss["light_bce"] + loss["booster_bce"]
    )
    for (variable, g_total), (_, g_labels) in zip(total, labels_only, strict=True):
        np.testing.assert_allclose(
            _dense(g_total), _dense(g_labels), rtol=1e-5, atol=1e-7, err_msg=variable.name
        )


@pytest.mark.parametrize("hint", ["logit_mse", "kd"])
def test_after_warmup_distill_term_reaches_light_and_shared_but_never_booster(hint):
    model = build_model(_config("criteo", hint=hint), CRITEO)
    model.global_step.assign(5)  # the first step after warm-up
    losses, grads = _gradients(model, CRITEO, _distill_term)
    assert float(losses["hint_weight"]) == 0.5
    by_role = {}
    for variable, grad in grads:
        by_role.setdefault(variable_role(variable.name), []).append((variable, _dense(grad)))
    assert len(by_role["booster"]) >= 6
    for variable, grad in by_role["booster"]:
        assert not np.any(grad), f"distill gradient leaks into booster variable {variable.name}"
    for variable, grad in by_role["light"]:
        assert np.any(grad), variable.name
    ((_, table_grad),) = by_role["shared_embedding"]
    assert np.any(table_grad)
    # The privileged field's rows (C1 is the first block of the table) are booster-only.
    c1_rows = CRITEO.categorical[0].num_rows
    assert CRITEO.categorical[0].name == "C1"
    assert not np.any(table_grad[:c1_rows])
    assert np.any(table_grad[c1_rows:])


def test_convex_form_weighs_light_bce_by_one_minus_lambda_by_hand(monkeypatch):
    """4 rows, fixed logits: light 0 (BCE ln 2 per row), booster [1, -1, 2, 0]."""
    model = build_model(_config(hint="logit_mse", weight=0.25, warmup_steps=0), PFD_SCHEMA)
    booster = tf.constant([1.0, -1.0, 2.0, 0.0])
    monkeypatch.setattr(
        model, "tower_outputs", lambda f, training=None: {
            "booster": TowerOutput(booster, {}), "light": TowerOutput(tf.zeros([4]), {})}
    )  # fmt: skip
    labels = tf.constant([1.0, 0.0, 1.0, 0.0])
    losses = model.compute_losses(random_features(PFD_SCHEMA, 4), labels, training=True)
    light_bce = np.log(2.0)
    # BCE(y, z) = log(1 + e^z) - y·z: rows 1, 3: log(1 + e^-z); rows 2, 4: log(1 + e^z).
    booster_bce = np.mean([np.log1p(np.exp(-1.0)), np.log1p(np.exp(-1.0)),
                           np.log1p(np.exp(-2.0)), np.log(2.0)])  # fmt: skip
    hint = np.mean([1.0, 1.0, 4.0, 0.0])  # (z_b - 0)² = 1.5
    assert float(losses["light_bce"]) == pytest.approx(light_bce, rel=1e-6)
    assert float(losses["booster_bce"]) == pytest.approx(booster_bce, rel=1e-6)
    assert float(losses["logit_mse"]) == pytest.approx(1.5, rel=1e-6)
    expected = 0.75 * light_bce + booster_bce + 0.25 * hint
    assert float(losses["loss"]) == pytest.approx(expected, rel=1e-6)
    # The additive form keeps weight 1 on the light BCE.
    additive = build_model(_config(hint="logit_mse", weight=0.25, warmup_steps=0,
                                   hint_form="additive"), PFD_SCHEMA)  # fmt: skip
    monkeypatch.setattr(additive, "tower_outputs", model.tower_outputs)
    losses = additive.compute_losses(random_features(PFD_SCHEMA, 4), labels, training=True)
    assert float(losses["loss"]) == pytest.approx(light_bce + booster_bce + 0.25 * hint, 1e-6)


def test_hint_form_is_validated():
    with pytest.raises(ConfigError, match=r"hint_form must be one of \['additive', 'convex'\]"):
        build_model(_config(hint_form="mixed"), PFD_SCHEMA)
    with pytest.raises(ConfigError, match="must be <= 1. Received: 1.5"):
        build_model(_config(weight=1.5), PFD_SCHEMA)
    # λ is the sum over the methods.
    with pytest.raises(ConfigError, match="must be <= 1. Received: 1.1"):
        both = {"kd": {"weight": 0.6}, "logit_mse": {"weight": 0.5}}
        build_model(_config(methods=both), PFD_SCHEMA)


def test_light_net_never_reads_the_privileged_dwell_time():
    model = build_model(_config(), PFD_SCHEMA)
    assert "dwell_time" not in model.light_processor.input_columns
    features = random_features(PFD_SCHEMA, 8)
    changed = dict(features, dwell_time=features["dwell_time"] * 10 + 3)
    before, after = model(features), model(changed)
    np.testing.assert_array_equal(before["light_logits"].numpy(), after["light_logits"].numpy())
    assert not np.allclose(before["booster_logits"].numpy(), after["booster_logits"].numpy())
