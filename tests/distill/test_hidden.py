"""Feature transfer (`hidden`): by hand, the guards, where its gradient goes, and that its
regressor trains with the light net but never reaches an export."""

import numpy as np
import pytest
import tensorflow as tf

from rocketctr import serving
from rocketctr.config.core import Config, ConfigError, DistillConfig
from rocketctr.distill.base import MethodContext, MethodInputs, build_methods
from rocketctr.features.schema import load_schema
from rocketctr.model.cotrain import build_model, variable_role
from rocketctr.serving.verification import check_variables, loaded_variables
from rocketctr.towers import TowerOutput
from tests.helpers import random_features, random_labels

SCHEMA = load_schema("criteo")


def _config(light=None, **hidden):
    return Config.from_dict({
        "model": {"embedding_dim": 4,
                  "booster": {"name": "dcn", "hidden_units": [8], "num_cross_layers": 1},
                  "light": light or {"name": "mlp", "hidden_units": [4]}},
        "distill": {"methods": {"kd": {"weight": 1.0}, "hidden": {"weight": 0.5, **hidden}}},
    })  # fmt: skip


def test_two_rows_by_hand():
    (method,) = build_methods(
        DistillConfig(methods={"hidden": {}}),
        MethodContext(light_hidden=("mlp",), teacher_hidden=("mlp",)),
    )
    light = np.array([[1.0, 2.0], [0.0, -1.0]], np.float32)  # [B=2, m=2]
    teacher = np.array([[1.0, 0.0, 2.0], [0.5, 0.5, 0.0]], np.float32)  # [B=2, k=3]
    logits = tf.zeros([2])
    inputs = MethodInputs(
        tf.zeros([2]), TowerOutput(logits, {"mlp": tf.constant(teacher)}),
        TowerOutput(logits, {"mlp": tf.constant(light)}), tf.zeros([2]), tf.constant(0),
    )  # fmt: skip
    method(inputs)  # builds the regressor: [2] -> [3]
    kernel = np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]], np.float32)
    bias = np.array([0.0, 0.0, 0.5], np.float32)
    method.regressor.kernel.assign(kernel)
    method.regressor.bias.assign(bias)
    # Row 1: projection [1, 2, 1.5] vs [1, 0, 2]: (0 + 4 + 0.25) / 3.
    # Row 2: projection [0, -1, 0.5] vs [0.5, 0.5, 0]: (0.25 + 2.25 + 0.25) / 3.
    np.testing.assert_allclose(method(inputs).numpy(), [4.25 / 3, 2.75 / 3], rtol=1e-6)


def test_hidden_layers_are_checked_against_the_towers():
    with pytest.raises(ConfigError, match=r"teacher_layer is 'cin', but the teacher offers "
                       r"\['cross', 'mlp', 'final'\]"):  # fmt: skip
        build_model(_config(teacher_layer="cin"), SCHEMA)
    with pytest.raises(ConfigError, match="the light tower offers no hidden representation"):
        build_model(_config(light={"name": "lr"}), SCHEMA)
    with pytest.raises(ConfigError, match=r"Unknown config key\(s\) \['layer'\]"):
        build_model(_config(layer="mlp"), SCHEMA)


def test_gradient_reaches_the_light_side_and_the_regressor_never_the_booster():
    model = build_model(_config(teacher_layer="cross"), SCHEMA)
    features, labels = random_features(SCHEMA, 16), random_labels(16)
    with tf.GradientTape() as tape:
        losses = model.compute_losses(features, labels, training=True)
        term = losses["hidden"]
    variables = model.trainable_variables
    grads = dict(zip([v.name for v in variables], tape.gradient(term, variables), strict=True))

    def nonzero(name):
        grad = grads[name]
        return grad is not None and bool(np.any(tf.convert_to_tensor(grad).numpy()))

    by_role = {}
    for v in variables:
        by_role.setdefault(variable_role(v.name), []).append(v.name)
    assert sorted(by_role["distiller"]) == ["distiller/hidden/bias:0", "distiller/hidden/kernel:0"]
    assert all(nonzero(n) for n in by_role["distiller"])
    assert len(by_role["booster"]) >= 6 and not any(nonzero(n) for n in by_role["booster"])
    # The light MLP feeds the transferred layer; the output layer after it gets nothing.
    light_output = [v.name for v in model.light.out.variables]
    assert light_output and not any(nonzero(n) for n in light_output)
    assert all(nonzero(n) for n in by_role["light"] if n not in light_output)
    assert all(nonzero(n) for n in by_role["shared_embedding"])
    assert float(losses["hidden"]) > 0


def test_regressor_trains_and_is_never_exported(tmp_path):
    model = build_model(_config(), SCHEMA)
    regressor = model.distiller.methods[1].regressor  # methods: kd, hidden
    before = regressor.kernel.numpy().copy()
    for step in range(2):
        model.train_step((random_features(SCHEMA, 32, seed=step), random_labels(32, seed=step)))
    assert not np.allclose(regressor.kernel.numpy(), before)  # dense optimizer, like the towers
    path = serving.export_light(model, tmp_path, example_features=random_features(SCHEMA, 50))
    loaded = tf.saved_model.load(str(path))
    roles = {variable_role(v.name) for v in loaded_variables(loaded)}
    assert roles == {"shared_embedding", "light"}
    # Should one reach an export, the check names it.
    loaded.stray = regressor.kernel
    with pytest.raises(serving.ExportError, match=r"distillation-method \(training-only\) "
                       r"variables: \['distiller/hidden/kernel:0'\]"):  # fmt: skip
        check_variables(path, loaded, model, "float32")
