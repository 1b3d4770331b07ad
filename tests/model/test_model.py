"""Model invariants: gradient block, shared-variable gradients, modes, light-path parity."""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from rocketctr.config.core import Config, ConfigError
from rocketctr.features.schema import load_schema
from rocketctr.model.cotrain import build_model, variable_role
from tests.helpers import random_features, random_labels, tiny_config

SCHEMA = load_schema("criteo")


def _config(**distill):
    distill = {"methods": {"kd": {"weight": 1.0}}, **distill}
    return tiny_config(distill=distill).replace({"model.booster.num_cross_layers": 2})


def _hint_gradients(model, features, labels):
    with tf.GradientTape() as tape:
        losses = model.compute_losses(features, labels, training=True)
        hint = losses["hint_weight"] * sum(losses[n] for n in model.distiller.loss_names)
    variables = model.trainable_variables
    grads = tape.gradient(hint, variables)
    return {variable_role(v.name) + ":" + v.name: g for v, g in zip(variables, grads, strict=True)}


def _is_nonzero(grad):
    if grad is None:
        return False
    values = grad.values if isinstance(grad, tf.IndexedSlices) else grad
    return bool(tf.reduce_any(values != 0))


@pytest.mark.parametrize(
    "methods", [{"logit_mse": {"weight": 1.0}}, {"kd": {"weight": 1.0, "temperature": 2.0}}]
)
def test_gradient_block_zeroes_hint_gradient_on_every_booster_variable(methods):
    model = build_model(_config(methods=methods), SCHEMA)
    grads = _hint_gradients(model, random_features(SCHEMA, 16), random_labels(16))
    booster = {n: g for n, g in grads.items() if n.startswith("booster:")}
    assert len(booster) >= 6  # cross kernels/biases, MLP, output layer
    for name, grad in booster.items():
        assert not _is_nonzero(grad), f"hint leaks into booster variable {name}"
    light = [n for n in grads if n.startswith("light:")]
    assert light and all(_is_nonzero(grads[n]) for n in light)
    shared = [n for n in grads if n.startswith("shared_embedding:")]
    assert shared and all(_is_nonzero(grads[n]) for n in shared)


def test_without_gradient_block_the_hint_updates_the_booster():
    model = build_model(_config(gradient_block=False), SCHEMA)
    grads = _hint_gradients(model, random_features(SCHEMA, 16), random_labels(16))
    booster = [n for n in grads if n.startswith("booster:")]
    assert any(_is_nonzero(grads[n]) for n in booster)


def test_total_loss_is_sum_of_terms():
    methods = {"kd": {"weight": 0.5}, "logit_mse": {"weight": 0.25}}
    model = build_model(_config(methods=methods), SCHEMA)
    losses = model.compute_losses(random_features(SCHEMA, 8), random_labels(8), training=False)
    expected = (
        losses["light_bce"]
        + losses["booster_bce"]
        + 0.5 * losses["kd"]
        + 0.25 * losses["logit_mse"]
    )
    np.testing.assert_allclose(losses["loss"].numpy(), expected.numpy(), rtol=1e-6)
    assert losses["kd"].numpy() > 0 and losses["logit_mse"].numpy() > 0
    assert float(losses["hint_weight"]) == 0.75


@pytest.mark.parametrize(
    ("mode", "prefixes"),
    [
        ("light_only", {"shared_embedding", "light"}),
        ("booster_only", {"shared_embedding", "booster"}),
    ],
)
def test_baseline_modes_build_only_their_tower(mode, prefixes):
    model = build_model(_config(mode=mode), SCHEMA)
    assert {variable_role(v.name) for v in model.trainable_variables} == prefixes
    losses = model.compute_losses(random_features(SCHEMA, 8), random_labels(8), training=True)
    assert float(losses["kd"]) == 0.0
    if mode == "light_only":
        assert float(losses["booster_bce"]) == 0.0
    else:
        assert "light_bce" not in losses and "light_logits" not in losses


def test_separate_light_embeddings_are_not_shared():
    config = _config().replace({"model.separate_light_embeddings": True})
    model = build_model(config, SCHEMA)
    grads = _hint_gradients(model, random_features(SCHEMA, 8), random_labels(8))
    by_role = {n.split(":")[0]: g for n, g in grads.items() if "embedding" in n}
    assert _is_nonzero(by_role["light_embedding"])
    assert not _is_nonzero(by_role["shared_embedding"])  # blocked: only booster uses it


def test_light_can_read_the_shared_tables_without_training_them():
    config = _config().replace({"model.light_embedding_gradient_scale": 0.0})
    model = build_model(config, SCHEMA)
    features, labels = random_features(SCHEMA, 16), random_labels(16)
    with tf.GradientTape() as tape:
        losses = model.compute_losses(features, labels, training=True)
        light_loss = losses["light_bce"] + losses["hint_weight"] * losses["kd"]
    table = model.embedding.trainable_variables[0]
    light_vars = model.light.trainable_variables
    grads = tape.gradient(light_loss, [table, *light_vars])
    assert not _is_nonzero(grads[0])
    assert all(_is_nonzero(g) for g in grads[1:])


def _light_table_gradient(scale: float, features, labels) -> tuple[np.ndarray, np.ndarray]:
    """(light logits, dense gradient of the light losses w.r.t. the shared table)."""
    tf_keras.utils.set_random_seed(5)
    model = build_model(_config().replace({"model.light_embedding_gradient_scale": scale}), SCHEMA)
    with tf.GradientTape() as tape:
        losses = model.compute_losses(features, labels, training=True)
        light_loss = losses["light_bce"] + losses["hint_weight"] * losses["kd"]
    grad = tape.gradient(light_loss, model.embedding.trainable_variables[0])
    return losses["light_logits"].numpy(), tf.convert_to_tensor(grad).numpy()


def test_light_embedding_gradient_scale_scales_the_pull_on_shared_rows_only():
    features, labels = random_features(SCHEMA, 16), random_labels(16)
    full_logits, full = _light_table_gradient(1.0, features, labels)
    part_logits, part = _light_table_gradient(0.3, features, labels)
    np.testing.assert_array_equal(part_logits, full_logits)  # forward pass untouched
    assert np.abs(full).max() > 1e-6
    np.testing.assert_allclose(part, 0.3 * full, rtol=1e-5, atol=1e-9)
    with pytest.raises(ConfigError, match="light_embedding_gradient_scale must be in"):
        build_model(_config().replace({"model.light_embedding_gradient_scale": 1.5}), SCHEMA)


def test_light_not_updating_shared_tables_leaves_the_booster_as_trained_alone():
    """Same seed, same batches: the co-trained booster equals the booster trained alone."""
    features, labels = random_features(SCHEMA, 64), random_labels(64)
    boosters = []
    for mode in ("booster_only", "co_train"):
        tf_keras.utils.set_random_seed(3)
        config = _config(mode=mode).replace({"model.light_embedding_gradient_scale": 0.0})
        model = build_model(config, SCHEMA)
        for _ in range(3):
            model.train_on_batch(features, labels)
        boosters.append(model(features, training=False)["booster_logits"].numpy())
    assert np.abs(boosters[0]).max() > 0
    np.testing.assert_allclose(boosters[1], boosters[0], rtol=0, atol=1e-6)
    # With the light net training the shared tables (the default), the booster differs.
    tf_keras.utils.set_random_seed(3)
    model = build_model(_config(), SCHEMA)
    for _ in range(3):
        model.train_on_batch(features, labels)
    moved = model(features, training=False)["booster_logits"].numpy()
    assert np.abs(moved - boosters[0]).max() > 1e-4


@pytest.mark.parametrize("mode", ["co_train", "light_only"])
def test_light_optimizer_trains_the_light_tower_only(mode):
    config = _config(mode=mode).replace(
        {
            "train.dense_optimizer": {"name": "sgd", "learning_rate": 1e-9},
            "train.light_optimizer": {"name": "sgd", "learning_rate": 0.5},
        }
    )
    model = build_model(config, SCHEMA)
    light_ids = {id(v) for v in model.light.trainable_variables}
    assert light_ids == {id(v) for v in model.light_variables()}
    assert not light_ids & {id(v) for v in model.dense_variables()}
    before = {v.name: v.numpy().copy() for v in model.trainable_variables}
    model.train_on_batch(random_features(SCHEMA, 32), random_labels(32))
    change = {}
    for v in model.trainable_variables:
        role = variable_role(v.name)
        delta = float(np.abs(v.numpy() - before[v.name]).max())
        change[role] = max(change.get(role, 0.0), delta)
    assert change["light"] > 1e-3  # SGD at 0.5
    assert change.get("booster", 0.0) < 1e-6  # SGD at 1e-9
    assert int(model.light_optimizer.iterations) == 1 == int(model.global_step)


def test_light_serving_path_equals_training_path():
    model = build_model(_config(), SCHEMA)
    features = random_features(SCHEMA, 32)
    np.testing.assert_allclose(
        model.light_logits(features).numpy(),
        model(features, training=False)["light_logits"].numpy(),
        rtol=0,
        atol=1e-6,
    )


def test_privileged_features_reach_the_booster_only():
    import dataclasses

    schema = dataclasses.replace(SCHEMA, privileged=("I1", "C1"))
    model = build_model(_config(), schema)
    features = random_features(schema, 16)
    serving = {k: v for k, v in features.items() if k not in ("I1", "C1")}
    light = model.light_logits(serving)  # must not need the privileged columns
    np.testing.assert_allclose(
        light.numpy(), model(features, training=False)["light_logits"].numpy(), atol=1e-6
    )
    # Changing a privileged value moves the booster but not the light net.
    changed = dict(features, C1=tf.constant(["other"] * 16), I1=features["I1"] + 5.0)
    before, after = model(features), model(changed)
    np.testing.assert_array_equal(before["light_logits"].numpy(), after["light_logits"].numpy())
    assert not np.allclose(before["booster_logits"].numpy(), after["booster_logits"].numpy())


def test_unknown_mode_and_tower_fields_are_refused():
    with pytest.raises(ConfigError, match="distill.mode must be one of"):
        build_model(_config(mode="both"), SCHEMA)
    with pytest.raises(ConfigError, match="model.light: tower 'mlp' does not use"):
        _config().replace({"model.light.num_cross_layers": 5})


@pytest.mark.parametrize(
    "booster",
    [
        {"name": "dcn", "hidden_units": [8], "cross_structure": "stacked"},
        {"name": "dcn", "hidden_units": [8], "cross_type": "vector"},
        {"name": "dcn_v2", "hidden_units": [8], "projection_dim": 2},
        {"name": "xdeepfm", "hidden_units": [8], "cin_layer_sizes": [4, 4]},
        {"name": "deepfm", "hidden_units": [8]},
    ],
)
@pytest.mark.parametrize("light", [{"name": "lr"}, {"name": "fm"}])
def test_every_tower_trains_one_step(booster, light):
    config = tiny_config({"booster": booster, "light": light})
    model = build_model(config, SCHEMA)
    features, labels = random_features(SCHEMA, 16), random_labels(16)
    before = [v.numpy().copy() for v in model.trainable_variables]
    logs = model.train_step((features, labels))
    assert np.isfinite(float(logs["loss"]))
    changed = [
        not np.array_equal(b, v.numpy())
        for b, v in zip(before, model.trainable_variables, strict=True)
    ]
    assert all(changed)


def test_jit_compile_trains_on_raw_string_features_and_matches_eager():
    eager = build_model(_config(), SCHEMA)
    xla = build_model(_config().replace({"train.jit_compile": True}), SCHEMA)
    xla.set_weights(eager.get_weights())
    features, labels = random_features(SCHEMA, 16), random_labels(16)
    for model in (eager, xla):
        model.fit(tf.data.Dataset.from_tensors((features, labels)), verbose=0)
    out_eager, out_xla = eager(features), xla(features)
    for key in ("booster_logits", "light_logits"):
        np.testing.assert_allclose(out_xla[key].numpy(), out_eager[key].numpy(), atol=1e-4)


def test_embedding_l2_touches_only_the_rows_in_the_batch():
    config = _config().replace({"model.embedding_l2": 0.5})
    model = build_model(config, SCHEMA)
    features = random_features(SCHEMA, 8)
    ids, _ = model.processor(features)
    table = model.embedding.table
    with tf.GradientTape() as tape:
        model(features, training=True)
        l2 = tf.add_n(model.losses)
    rows = tf.gather(table, ids)  # [B, F, d]
    expected = 0.5 * tf.reduce_mean(tf.reduce_sum(tf.square(rows), axis=[1, 2]))
    np.testing.assert_allclose(l2.numpy(), expected.numpy(), rtol=1e-5)
    grad = tape.gradient(l2, table)
    assert isinstance(grad, tf.IndexedSlices)  # sparse: untouched rows get no update
    assert set(np.unique(grad.indices.numpy())) == set(np.unique(ids.numpy()))


def test_embedding_table_l2_decays_every_row_once_per_step():
    config = _config().replace({"model.embedding_table_l2": 0.2})
    model = build_model(config, SCHEMA)
    features = random_features(SCHEMA, 8)
    table = model.embedding.table
    with tf.GradientTape() as tape:
        model(features, training=True)
        l2 = tf.add_n(model.losses)
    np.testing.assert_allclose(l2.numpy(), 0.1 * np.sum(np.square(table.numpy())), rtol=1e-5)
    grad = tf.convert_to_tensor(tape.gradient(l2, table))
    np.testing.assert_allclose(grad.numpy(), 0.2 * table.numpy(), rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("light", [{"name": "mlp", "hidden_units": [4]}, {"name": "fm"}])
@pytest.mark.parametrize(
    "booster",
    [
        {"name": "dcn", "hidden_units": [8], "num_cross_layers": 2},
        {"name": "xdeepfm", "hidden_units": [8], "cin_layer_sizes": [4]},
    ],
)
def test_mixed_precision_towers_compute_in_bf16_and_stay_close_to_fp32(booster, light):
    base = tiny_config({"booster": booster, "light": light})
    fp32 = build_model(base, SCHEMA)
    bf16 = build_model(base.replace({"train.mixed_precision": True}), SCHEMA)
    assert tf_keras_policy_name() == "float32"  # the global policy is restored
    assert bf16.booster.compute_dtype == "bfloat16" and bf16.light.compute_dtype == "bfloat16"
    assert all(v.dtype == tf.float32 for v in bf16.trainable_variables)
    bf16.set_weights(fp32.get_weights())
    features, labels = random_features(SCHEMA, 32), random_labels(32)
    out32, out16 = fp32(features), bf16(features)
    for key in ("booster_logits", "light_logits"):
        assert out16[key].dtype == tf.float32
        np.testing.assert_allclose(out16[key].numpy(), out32[key].numpy(), atol=0.05)
    logs = bf16.train_step((features, labels))
    assert np.isfinite(float(logs["loss"]))


@pytest.mark.parametrize("native", [True, False])
def test_auto_precision_is_bfloat16_where_the_machine_computes_it_natively(native, monkeypatch):
    from rocketctr.model import precision

    monkeypatch.setattr(precision, "native_bfloat16", lambda: native)
    model = build_model(tiny_config(train={"mixed_precision": "auto"}), SCHEMA)
    expected = "bfloat16" if native else "float32"
    assert model.booster.compute_dtype == expected == model.light.compute_dtype
    assert precision.describe("auto") == (
        f"Towers compute in {expected} (train.mixed_precision: auto: "
        + ("this machine computes bf16 natively)." if native else "no native bf16 here).")
    )
    assert precision.describe("float32").startswith("Towers compute in float32")


def test_the_cpu_flags_name_native_bfloat16(monkeypatch, tmp_path):
    from rocketctr.model import precision

    for flags, native in [("fpu avx512f avx512_bf16 fma", True), ("fpu avx2 fma", False)]:
        cpuinfo = tmp_path / "cpuinfo"
        cpuinfo.write_text(f"processor\t: 0\nflags\t\t: {flags}\n")
        monkeypatch.setattr(precision, "Path", lambda _, c=cpuinfo: c)
        monkeypatch.setattr(precision.tf.config, "list_physical_devices", lambda kind: [])
        precision.native_bfloat16.cache_clear()
        assert precision.native_bfloat16() is native
    precision.native_bfloat16.cache_clear()


@pytest.mark.parametrize("value, expected", [(True, "bfloat16"), (False, "float32")])
def test_earlier_true_false_precision_reads_as_a_dtype(value, expected):
    assert Config.from_dict({"train": {"mixed_precision": value}}).train.mixed_precision == expected
    with pytest.raises(ConfigError, match="must be one of \\['auto', 'bfloat16', 'float32'\\]"):
        Config.from_dict({"train": {"mixed_precision": "fp16"}})


def tf_keras_policy_name():
    return tf_keras.mixed_precision.global_policy().name


@pytest.mark.parametrize(
    ("light", "booster"),
    [
        ({"name": "mlp", "hidden_units": [4]}, None),
        ({"name": "lr"}, {"name": "xdeepfm", "hidden_units": [8], "cin_layer_sizes": [4, 4]}),
        ({"name": "fm"}, {"name": "deepfm", "hidden_units": [8]}),
    ],
    ids=["mlp+dcn", "lr+xdeepfm", "fm+deepfm"],
)
@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_tower_views_share_the_towers_layers_and_compute_the_same(light, booster, precision):
    config = _config().replace(
        {
            "model.light": light,
            **({"model.booster": booster} if booster else {}),
            "train.mixed_precision": precision,
        }
    )
    model = build_model(config, SCHEMA)
    before = len(model.variables)
    for name in ("light", "booster"):
        tower = getattr(model, name)
        view = model.tower_view(name)
        rows = tower.first_order.count_params() if tower.first_order else 0  # read outside
        assert view.count_params() + rows == tower.count_params()
        processor = model.light_processor if name == "light" else model.processor
        ids, dense = processor(random_features(SCHEMA, 8))
        direct = model.tower_output(tower, model.embedding, processor, ids, dense, False)
        embeddings = model.embedding(ids)
        if not tower.reads_embeddings:  # LR
            embeddings = embeddings[:, :, :0]
        inputs = [embeddings, dense]
        if tower.uses_first_order:
            inputs.append(tower.first_order(ids, processor.slot_fields))
        viewed = view(inputs, training=False)
        assert sorted(viewed) == sorted(["logits", *tower.hidden_names])
        np.testing.assert_allclose(viewed["logits"].numpy(), direct.logits.numpy(), rtol=1e-6)
        for hidden, value in direct.hidden.items():
            np.testing.assert_allclose(viewed[hidden].numpy(), value.numpy(), rtol=1e-6)
    assert len(model.variables) == before  # no variable of its own


@pytest.mark.parametrize(
    "schema, light",
    [
        ("criteo", {"name": "mlp", "hidden_units": [4]}),
        # Its own signatures (user and item vectors) serve float32 too.
        ("synthetic_sequence", {"name": "two_tower", "hidden_units": [4], "output_dim": 4}),
    ],
)
def test_a_light_net_trained_in_bf16_scores_and_exports_in_float32(schema, light, tmp_path):
    """It trains in bf16; whenever it does not train (validation, evaluation, predictions,
    its export) it computes in float32, what is served: bf16 scores differ by ~1e-3."""
    from rocketctr.serving import export_light

    config = tiny_config({"light": light}, schema=schema, train={"mixed_precision": "bfloat16"})
    schema = load_schema(schema)
    model = build_model(config, schema)
    features, labels = random_features(schema, 256), random_labels(256)
    for _ in range(3):
        model.train_step((features, labels))
    trained = model(features, training=True)["light_logits"].numpy()  # bf16
    scored = model(features)["light_logits"].numpy()  # float32
    np.testing.assert_allclose(scored, trained, atol=0.05)
    assert not np.allclose(scored, trained, atol=1e-6)
    assert model.light.compute_dtype == "bfloat16"  # its policy is back after each call
    path = export_light(model, tmp_path / "export", force=True)  # verified within 1e-5
    served = tf.saved_model.load(str(path)).signatures["serving_default"]
    inputs = served.structured_input_signature[1]
    probs = served(**{k: v for k, v in features.items() if k in inputs})["probabilities"]
    np.testing.assert_allclose(probs.numpy(), tf.sigmoid(scored).numpy(), atol=1e-5)
