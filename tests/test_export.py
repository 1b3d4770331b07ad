"""Export invariants: light only, no privileged input, parity, atomic versions, warmup."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import rocketctr  # noqa: F401  (selects Keras 2 before TensorFlow loads)

# isort: split
import numpy as np
import pytest
import tensorflow as tf
import yaml
from tensorflow_serving.apis import prediction_log_pb2

from rocketctr import serving
from rocketctr.config.core import Config, ConfigError, save_config
from rocketctr.data import make_dataset
from rocketctr.features.schema import load_schema
from rocketctr.model.cotrain import build_model, variable_role
from rocketctr.runs.feature_format import record_run_format
from rocketctr.scoring.metrics import auc
from rocketctr.serving import quality, verification
from tests.helpers import SHARED_DATA, random_features, random_labels

SCHEMA = load_schema("criteo")
REPO = Path(__file__).resolve().parents[1]
CRITEO_HEAD = SHARED_DATA / "criteo" / "criteo_kaggle_train_head9999.txt"
LIGHT_ROLES = {"shared_embedding", "light_embedding", "light"}


def _config(**model) -> Config:
    return Config.from_dict(
        {
            "model": {
                "embedding_dim": 4,
                "booster": {"name": "dcn", "hidden_units": [8], "num_cross_layers": 2},
                "light": {"name": "mlp", "hidden_units": [4]},
                **model,
            },
        }
    )


def _trained(config: Config, schema=SCHEMA, steps: int = 2):
    """A model after a few train steps, so weights and optimizer slots are non-trivial."""
    model = build_model(config, schema)
    for step in range(steps):
        model.train_step((random_features(schema, 32, seed=step), random_labels(32, seed=step)))
    return model


def _light_path_size(model) -> int:
    table = model.light_embedding or model.embedding
    return sum(int(np.prod(v.shape)) for v in table.variables + model.light.variables)


def _loaded_variables(path: Path) -> list[tf.Variable]:
    loaded = tf.saved_model.load(str(path))
    found = tf.train.TrackableView(loaded).descendants()
    return list({id(v): v for v in found if isinstance(v, tf.Variable)}.values())


def _serve(path: Path, features: dict) -> dict[str, np.ndarray]:
    signature = tf.saved_model.load(str(path)).signatures["serving_default"]
    inputs = signature.structured_input_signature[1]
    out = signature(**{k: tf.constant(features[k], dtype=s.dtype) for k, s in inputs.items()})
    return {k: v.numpy() for k, v in out.items()}


def _probs(model, features: dict) -> np.ndarray:
    return tf.sigmoid(model.light_logits(features)).numpy()


def _read_criteo_rows(path: Path, num_rows: int) -> dict[str, np.ndarray]:
    """Raw rows as readers deliver them: '' for empty strings, NaN for empty dense fields."""
    columns = {c: [] for c in SCHEMA.columns}
    with path.open() as f:
        for _, line in zip(range(num_rows), f, strict=False):
            for column, value in zip(SCHEMA.columns, line.rstrip("\n").split("\t"), strict=True):
                columns[column].append(value)
    rows = {}
    for column in SCHEMA.input_columns:
        values = columns[column]
        if SCHEMA.is_string_column(column):
            rows[column] = np.array(values, dtype=object)
        else:
            rows[column] = np.array([float(v) if v else math.nan for v in values], np.float32)
    return rows


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """One trained co-train model and its export with 300 warmup/parity rows."""
    model = _trained(_config())
    base = tmp_path_factory.mktemp("export")
    rows = random_features(SCHEMA, 300, seed=7)
    path = serving.export_light(model, base, example_features=rows, metadata={"auc": 0.75})
    return model, path, rows


# ------------------------------------------------------------------------ light only
def test_export_holds_exactly_the_light_path(exported):
    model, path, _ = exported
    variables = _loaded_variables(path)
    names = {v.name for v in variables}
    assert not [n for n in names if variable_role(n) == "booster"]
    assert {variable_role(n) for n in names} == {"shared_embedding", "light"}
    booster_names = {v.name for v in model.booster.variables}
    assert len(booster_names) >= 6 and not names & booster_names
    optimizer_names = {v.name for v in model.dense_optimizer.variables()}
    assert len(optimizer_names) > 1 and not names & optimizer_names
    keys = [k for k, _ in tf.train.list_variables(str(path / "variables" / "variables"))]
    assert not [k for k in keys if "OPTIMIZER_SLOT" in k]
    # 672,675 table rows x 4 + light MLP (117*4 + 4) + output (4 + 1)
    expected = 672_675 * 4 + 117 * 4 + 4 + 4 + 1
    assert _light_path_size(model) == expected
    assert sum(int(np.prod(v.shape)) for v in variables) == expected
    # The exported weights are the trained ones, not a fresh init.
    light_kernel = next(v for v in variables if v.name == model.light.variables[0].name)
    np.testing.assert_array_equal(light_kernel.numpy(), model.light.variables[0].numpy())


def test_separate_light_embeddings_export_only_the_light_table(tmp_path):
    model = _trained(_config(separate_light_embeddings=True), steps=1)
    path = serving.export_light(model, tmp_path)
    roles = {variable_role(v.name) for v in _loaded_variables(path)}
    assert roles == {"light_embedding", "light"}


def test_privileged_features_are_not_serving_inputs(tmp_path):
    schema = dataclasses.replace(SCHEMA, privileged=("I1", "C1"))
    model = _trained(_config(), schema=schema, steps=1)
    path = serving.export_light(model, tmp_path, example_features=random_features(schema, 50))
    loaded = tf.saved_model.load(str(path))
    inputs = set(loaded.signatures["serving_default"].structured_input_signature[1])
    assert "I1" not in inputs and "C1" not in inputs
    assert inputs == set(SCHEMA.input_columns) - {"I1", "C1"}
    assert len(inputs) == 37
    assert serving.parsed_example_keys(path) == inputs
    info = serving.read_export_info(path)
    assert info["schema"]["privileged_not_served"] == ["I1", "C1"]
    assert [c["name"] for c in info["schema"]["serving_columns"]] == schema.serving_columns()


def test_a_light_path_that_reads_a_booster_weight_is_refused(tmp_path, monkeypatch):
    model = build_model(_config(), SCHEMA)
    light_logits = model.light_logits
    booster_kernel = model.booster.variables[0]
    monkeypatch.setattr(
        model, "light_logits", lambda f, **kw: light_logits(f, **kw) + booster_kernel[0, 0]
    )
    with pytest.raises(serving.ExportError, match="not part of the light path"):
        serving.export_light(model, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_booster_only_model_is_refused(tmp_path):
    model = build_model(_config().replace({"distill.mode": "booster_only"}), SCHEMA)
    with pytest.raises(serving.ExportError, match="no light net"):
        serving.export_light(model, tmp_path)
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------ signatures
def _tensor_info(kind: str, name: str, dtype: str) -> str:
    """How `saved_model_cli show` prints one [None]-shaped signature tensor."""
    return f"{kind}['{name}'] tensor_info:\n        dtype: {dtype}\n        shape: (-1)"


def test_saved_model_cli_lists_both_signatures(exported):
    _, path, _ = exported
    cli = Path(sys.executable).parent / "saved_model_cli"
    result = subprocess.run(
        [str(cli), "show", "--all", "--dir", str(path)],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    blocks = {}
    for block in result.stdout.split("signature_def[")[1:]:
        blocks[block.split("'")[1]] = block
    assert {"serving_default", "predict_examples"} <= set(blocks)
    serving = blocks["serving_default"]
    for column in SCHEMA.input_columns:
        dtype = "DT_STRING" if SCHEMA.is_string_column(column) else "DT_FLOAT"
        assert _tensor_info("inputs", column, dtype) in serving, column
    assert serving.count("inputs['") == 39
    examples = blocks["predict_examples"]
    assert _tensor_info("inputs", "examples", "DT_STRING") in examples
    assert examples.count("inputs['") == 1
    for block in (serving, examples):
        for output in ("probabilities", "logits"):
            assert _tensor_info("outputs", output, "DT_FLOAT") in block


def test_parity_on_random_rows(exported):
    model, path, _ = exported
    features = random_features(SCHEMA, 257, seed=123)  # rows not seen at export
    served = _serve(path, features)
    np.testing.assert_allclose(served["probabilities"], _probs(model, features), rtol=0, atol=1e-5)
    np.testing.assert_allclose(
        served["logits"], model.light_logits(features).numpy(), rtol=0, atol=1e-4
    )
    np.testing.assert_allclose(
        served["probabilities"], 1 / (1 + np.exp(-served["logits"])), rtol=0, atol=1e-6
    )
    assert served["probabilities"].shape == (257,)
    assert np.ptp(served["probabilities"]) > 0  # the rows actually score differently
    assert serving.read_export_info(path)["verification"]["parity_rows"] == 300


@pytest.mark.skipif(not CRITEO_HEAD.exists(), reason=f"{CRITEO_HEAD} is not present")
def test_parity_on_real_criteo_rows(exported):
    model, path, _ = exported
    rows = _read_criteo_rows(CRITEO_HEAD, 300)
    assert len(rows["C1"]) == 300
    assert np.isnan(rows["I1"]).any() and (rows["C22"] == "").any()  # real missing values
    features = {c: tf.constant(v) for c, v in rows.items()}
    served = _serve(path, rows)
    np.testing.assert_allclose(served["probabilities"], _probs(model, features), rtol=0, atol=1e-5)


def _score_in_plain_tensorflow(paths: dict, features: dict, tmp_path: Path) -> dict:
    """{name: probabilities} of `serving_default` of each export, in a fresh Python process
    that imports TensorFlow only (TF Serving's view: no rocketctr, no Keras 2 switch)."""
    inputs = {  # numpy's own unicode arrays: np.load needs no pickle for them
        c: np.array([s.decode() for s in v.numpy()]) if v.dtype == tf.string else v.numpy()
        for c, v in features.items()
    }
    np.savez(tmp_path / "inputs.npz", **inputs)
    script = textwrap.dedent(
        f"""
        import sys
        import numpy as np
        import tensorflow as tf
        data = np.load({str(tmp_path / "inputs.npz")!r})
        out = {{}}
        for name, path in { ({n: str(p) for n, p in paths.items()})!r}.items():
            signature = tf.saved_model.load(path).signatures["serving_default"]
            inputs = signature.structured_input_signature[1]
            scores = signature(**{{k: tf.constant(data[k]) for k in inputs}})
            out[name] = scores["probabilities"].numpy()
        assert "rocketctr" not in sys.modules, "rocketctr was imported"
        np.savez({str(tmp_path / "out.npz")!r}, **out)
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, check=True, timeout=180,
        capture_output=True,
    )  # fmt: skip
    return dict(np.load(tmp_path / "out.npz"))


def test_reloads_in_a_fresh_process_without_rocketctr(exported, tmp_path):
    model, path, _ = exported
    features = random_features(SCHEMA, 64, seed=5)
    out = _score_in_plain_tensorflow({"export": path}, features, tmp_path)
    np.testing.assert_allclose(out["export"], _probs(model, features), rtol=0, atol=1e-5)


def _example(row: dict, kinds: dict | None = None) -> bytes:
    """One tf.Example written by hand; "" and NaN fields are left out (missing).

    `kinds` maps a column to the list type to store it as ("int64", "float", "bytes");
    by default strings go to bytes_list and floats to float_list.
    """
    feature = {}
    for column, value in row.items():
        if value == "" or (not isinstance(value, str) and math.isnan(value)):
            continue
        kind = (kinds or {}).get(column, "bytes" if isinstance(value, str) else "float")
        if kind == "int64":
            feature[column] = tf.train.Feature(int64_list=tf.train.Int64List(value=[int(value)]))
        elif kind == "float":
            feature[column] = tf.train.Feature(float_list=tf.train.FloatList(value=[float(value)]))
        else:
            text = value if isinstance(value, str) else f"{value:g}"
            feature[column] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[text.encode()]))
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def _rows_with_missing(num_rows: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    rows = {}
    for column in SCHEMA.input_columns:
        if SCHEMA.is_string_column(column):
            values = rng.integers(0, 40, num_rows).astype(str).astype(object)
            values[rng.random(num_rows) < 0.3] = ""
        else:
            values = rng.integers(-2, 500, num_rows).astype(np.float32)
            values[rng.random(num_rows) < 0.3] = np.nan
        rows[column] = values
    return rows


def test_predict_examples_equals_serving_default_with_missing_features(exported):
    model, path, _ = exported
    rows = _rows_with_missing(40, seed=3)
    examples = [_example({c: v[i] for c, v in rows.items()}) for i in range(40)]
    examples.append(tf.train.Example().SerializeToString())  # every feature missing
    rows = {c: np.append(v, "" if v.dtype == object else np.nan) for c, v in rows.items()}
    loaded = tf.saved_model.load(str(path))
    from_examples = loaded.signatures["predict_examples"](examples=tf.constant(examples))
    served = _serve(path, rows)
    np.testing.assert_allclose(
        from_examples["probabilities"].numpy(), served["probabilities"], rtol=0, atol=1e-7
    )
    features = {c: tf.constant(v.astype(str) if v.dtype == object else v) for c, v in rows.items()}
    np.testing.assert_allclose(served["probabilities"], _probs(model, features), rtol=0, atol=1e-5)


def test_predict_examples_reads_the_declared_feature_kinds(tmp_path):
    """TFX CsvExampleGen writes integer columns as int64_list; other writers mix kinds."""
    model = _trained(_config(), steps=1)
    kinds = {"I2": "int64", "I3": "int64", "C5": "int64", "C9": "int64", "C7": "float"}
    kinds["I4"] = "bytes"  # a dense column stored as text
    dtypes = {"int64": "int64", "float": "float32", "bytes": "string"}
    path = serving.export_light(
        model, tmp_path, example_features=_rows_with_missing(60, seed=11),
        example_dtypes={"label": "int64", **{c: dtypes[k] for c, k in kinds.items()}},
    )  # fmt: skip
    rows = _rows_with_missing(30, seed=4)
    examples = [_example({c: v[i] for c, v in rows.items()}, kinds) for i in range(30)]
    loaded = tf.saved_model.load(str(path))
    from_examples = loaded.signatures["predict_examples"](examples=tf.constant(examples))
    served = _serve(path, rows)["probabilities"]
    np.testing.assert_allclose(from_examples["probabilities"].numpy(), served, atol=1e-7)
    parsed_as = serving.read_export_info(path)["signatures"]["predict_examples"]
    parsed_as = parsed_as["example_feature_dtypes"]
    assert (parsed_as["C5"], parsed_as["C7"], parsed_as["I4"]) == ("int64", "float32", "string")
    assert (parsed_as["C6"], parsed_as["I1"]) == ("string", "float32")
    assert "label" not in parsed_as
    # A second value is refused, never silently dropped.
    two = tf.train.Example(
        features=tf.train.Features(
            feature={"C5": tf.train.Feature(int64_list=tf.train.Int64List(value=[1, 2]))}
        )
    ).SerializeToString()
    with pytest.raises(tf.errors.InvalidArgumentError, match="more than one value"):
        loaded.signatures["predict_examples"](examples=tf.constant([two]))
    with pytest.raises(serving.ExportError, match="not in schema"):
        serving.export_light(model, tmp_path, example_dtypes={"I99": "int64"})


# ------------------------------------------------------------------------ versions
def test_versions_increase_and_a_crash_leaves_nothing(tmp_path, monkeypatch):
    model = build_model(_config(), SCHEMA)
    real_save = tf.saved_model.save

    def save_then_crash(*args, **kwargs):
        real_save(*args, **kwargs)  # files are on disk when the crash happens
        raise OSError("disk full")

    monkeypatch.setattr(tf.saved_model, "save", save_then_crash)
    with pytest.raises(OSError, match="disk full"):
        serving.export_light(model, tmp_path)
    assert list(tmp_path.iterdir()) == []
    monkeypatch.undo()

    first = serving.export_light(model, tmp_path)
    second = serving.export_light(model, tmp_path)
    assert (first.name, second.name) == ("1", "2")
    (tmp_path / "10").mkdir()  # versions are numbers, not names: 10 > 9 > 2
    (tmp_path / "9").mkdir()
    (tmp_path / "notes").mkdir()
    assert serving.next_version(tmp_path) == 11
    assert sorted(p.name for p in tmp_path.iterdir()) == ["1", "10", "2", "9", "notes"]


def test_failed_verification_leaves_no_version(tmp_path, monkeypatch):
    model = build_model(_config(), SCHEMA)
    serving.export_light(model, tmp_path)
    monkeypatch.setattr(verification, "PARITY_ATOL", -1.0)  # no score can pass
    with pytest.raises(serving.ExportError, match="differs from the in-memory light net"):
        serving.export_light(model, tmp_path, example_features=random_features(SCHEMA, 20))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["1"]


# ------------------------------------------------------------------------ assets.extra
def test_warmup_requests_match_the_signature(exported):
    _, path, rows = exported
    records = list(
        tf.data.TFRecordDataset(str(path / "assets.extra" / "tf_serving_warmup_requests"))
    )
    assert 2 <= len(records) <= 5
    sizes = []
    for i, record in enumerate(records):
        log = prediction_log_pb2.PredictionLog.FromString(record.numpy())
        request = log.predict_log.request
        assert request.model_spec.name == "rocketctr"
        assert request.model_spec.signature_name == "serving_default"
        assert set(request.inputs) == set(SCHEMA.input_columns)
        batch = {k: tf.make_ndarray(v) for k, v in request.inputs.items()}
        for column, value in batch.items():
            want = tf.string if SCHEMA.is_string_column(column) else tf.float32
            assert request.inputs[column].dtype == want.as_datatype_enum
            assert value.ndim == 1
        start = sum(sizes)
        sizes.append(len(batch["C1"]))
        np.testing.assert_array_equal(batch["I3"], rows["I3"].numpy()[start : start + sizes[-1]])
        np.testing.assert_array_equal(batch["C2"], rows["C2"].numpy()[start : start + sizes[-1]])
        if i == 0:
            assert sizes[0] == 1  # the single-row online shape is warmed up too
    assert sum(sizes) == 100


def test_no_warmup_without_example_rows(tmp_path):
    path = serving.export_light(build_model(_config(), SCHEMA), tmp_path)
    assert not (path / "assets.extra" / "tf_serving_warmup_requests").exists()
    assert serving.read_export_info(path)["verification"]["parity_rows"] == 256  # synthetic


def test_export_info_records_config_metrics_parameters_and_flops(exported):
    model, path, _ = exported
    info = serving.read_export_info(path)
    assert info["config"] == model.rocket_config.to_dict()
    assert info["metadata"] == {"auc": 0.75}
    assert info["schema"]["name"] == "criteo"
    assert {"name": "C1", "dtype": "string"} in info["schema"]["serving_columns"]
    assert {"name": "I1", "dtype": "float32"} in info["schema"]["serving_columns"]
    light = info["parameters"]["light"]
    assert light == {"embedding": 672_675 * 4, "tower": 477, "total": 672_675 * 4 + 477}
    # booster: 2 full-rank crosses (117x117 + 117 each) + MLP 117x8 + 8 + out (117+8) + 1
    assert info["parameters"]["booster"]["tower"] == 2 * (117 * 117 + 117) + 117 * 8 + 8 + 125 + 1
    assert info["flops_per_example"]["light"] == 2 * 117 * 4 + 2 * 4 * 1
    assert (
        info["flops_per_example"]["booster"]
        == 2 * (2 * 117 * 117 + 2 * 117) + 2 * 117 * 8 + 2 * 125
    )
    assert info["verification"]["parameters"] == light["total"]


# ------------------------------------------------------------------------ model dir
def test_export_from_model_dir_restores_the_latest_checkpoint(tmp_path, capsys):
    config = _config()
    model = _trained(config, steps=3)
    model_dir = tmp_path / "run"
    model_dir.mkdir()
    save_config(config, model_dir / "config.yaml")
    record_run_format(model_dir)  # what `rocketctr train` writes when a run starts
    epoch = tf.Variable(2, dtype=tf.int64)
    manager = tf.train.CheckpointManager(
        tf.train.Checkpoint(model=model, epoch=epoch), str(model_dir / "checkpoints"), 3
    )
    manager.save(checkpoint_number=3)
    (model_dir / "metrics.json").write_text(json.dumps({"light": {"auc": 0.7}}))

    path = serving.export_from_model_dir(model_dir, tmp_path / "serving")
    assert path == tmp_path / "serving" / "1"
    # This run recorded no eval data: synthetic rows, no warmup, and it says so.
    assert "recorded no eval data: checking the export on synthetic rows" in capsys.readouterr().out
    assert serving.read_export_info(path)["verification"]["parity_rows"] == 256
    assert not (path / "assets.extra" / "tf_serving_warmup_requests").exists()
    features = random_features(SCHEMA, 50, seed=9)
    np.testing.assert_allclose(
        _serve(path, features)["probabilities"], _probs(model, features), rtol=0, atol=1e-5
    )
    meta = serving.read_export_info(path)["metadata"]
    assert meta["metrics"] == {"light": {"auc": 0.7}}
    assert (meta["global_step"], meta["completed_epochs"]) == (3, 2)


def test_export_from_model_dir_refuses_missing_checkpoint_and_booster_only(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    save_config(_config(), run / "config.yaml")
    with pytest.raises(serving.ExportError, match="No checkpoint in"):
        serving.export_from_model_dir(run, tmp_path / "serving")
    save_config(_config().replace({"distill.mode": "booster_only"}), run / "config.yaml")
    with pytest.raises(serving.ExportError, match="booster_only"):
        serving.export_from_model_dir(run, tmp_path / "serving")
    with pytest.raises(serving.ExportError, match="not a training run"):
        serving.export_from_model_dir(tmp_path / "nothing", tmp_path / "serving")
    assert not (tmp_path / "serving").exists() or not list((tmp_path / "serving").iterdir())


# ------------------------------------------------------------------------ docker docs
def test_documented_rest_request_matches_the_signature(tmp_path):
    """docker/predict_request.json, fed in-process, gives one score per instance."""
    body = json.loads((REPO / "docker" / "predict_request.json").read_text())
    assert body["signature_name"] == "serving_default"
    instances = body["instances"]
    default_schema = load_schema(Config().schema)  # the default preset serves criteo
    model = build_model(_config(), default_schema)
    path = serving.export_light(model, tmp_path)
    signature = tf.saved_model.load(str(path)).signatures[body["signature_name"]]
    inputs = signature.structured_input_signature[1]
    assert all(set(instance) == set(inputs) for instance in instances)
    tensors = {
        name: tf.constant([instance[name] for instance in instances], dtype=spec.dtype)
        for name, spec in inputs.items()
    }
    out = signature(**tensors)
    assert set(out) == {"probabilities", "logits"}
    assert out["probabilities"].shape == (len(instances),)
    raw = {name: tensors[name] for name in inputs}
    np.testing.assert_allclose(out["probabilities"].numpy(), _probs(model, raw), atol=1e-5)


def test_serving_compose_and_train_dockerfile_match_the_repo():
    compose = yaml.safe_load((REPO / "docker" / "docker-compose.serving.yml").read_text())
    for name in ("serving", "serving-gpu"):
        service = compose["services"][name]
        assert service["image"].startswith("tensorflow/serving:")
        assert service["environment"]["MODEL_NAME"] == "rocketctr"
        assert service["volumes"][0].split(":")[-2:] == ["/models/rocketctr", "ro"]
        assert {"8500:8500", "8501:8501"} <= set(service["ports"])
    assert compose["services"]["serving-gpu"]["image"].endswith("-gpu")
    dockerfile = (REPO / "docker" / "Dockerfile.train").read_text()
    copied = [
        source
        for line in dockerfile.splitlines()
        if line.startswith("COPY ")
        for source in line.split()[1:-1]
    ]
    assert "rocketctr" in copied and "setup.py" in copied
    assert all((REPO / source).exists() for source in copied), copied


BATCHING_FIELDS = {  # tensorflow_serving BatchingParameters (session_bundle_config.proto)
    "max_batch_size", "batch_timeout_micros", "max_enqueued_batches", "num_batch_threads",
    "thread_pool_name", "allowed_batch_sizes", "pad_variable_length_inputs",
    "enable_large_batch_splitting", "max_execution_batch_size",
}  # fmt: skip


def _batching_parameters(path: Path) -> dict[str, str]:
    """`name { value: v }` lines of a BatchingParameters text proto -> {name: v}."""
    fields = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            match = re.fullmatch(r"(\w+) \{ value: (\w+) \}", line)
            assert match, f"{path.name}: cannot read {line!r}"
            fields[match[1]] = match[2]
    return fields


def test_serving_config_batches_100_candidate_requests_and_keeps_two_versions():
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    compose = yaml.safe_load((REPO / "docker" / "docker-compose.serving.yml").read_text())
    service = compose["services"]["serving"]
    # Pinned to the TF Serving release of the TensorFlow that exports (never "latest").
    tag = re.fullmatch(r"tensorflow/serving:\$\{TF_SERVING_TAG:-(.+)\}", service["image"])[1]
    assert tag.split(".")[:2] == tf.__version__.split(".")[:2] and re.fullmatch(r"[\d.]+", tag)
    assert "./serving:/config:ro" in service["volumes"]
    flags = dict(arg.lstrip("-").split("=", 1) for arg in service["command"])
    assert flags["enable_batching"] == "true"
    config_dir = REPO / "docker" / "serving"

    config = text_format.Parse(
        (config_dir / Path(flags["model_config_file"]).name).read_text(),
        model_server_config_pb2.ModelServerConfig(),
    )
    (model,) = config.model_config_list.config
    mount = service["volumes"][0].split(":")[-2]
    assert (model.name, model.base_path, model.model_platform) == (
        service["environment"]["MODEL_NAME"], mount, "tensorflow",
    )  # fmt: skip
    assert model.model_version_policy.latest.num_versions == 2

    batching = _batching_parameters(config_dir / Path(flags["batching_parameters_file"]).name)
    assert set(batching) <= BATCHING_FIELDS
    execution, largest = int(batching["max_execution_batch_size"]), int(batching["max_batch_size"])
    # A ~100-candidate request fits one run with others merged in; larger ones are split.
    assert batching["enable_large_batch_splitting"] == "true"
    assert 2 * 100 <= execution <= largest and largest >= 1000
    assert int(batching["batch_timeout_micros"]) <= 1000 and "allowed_batch_sizes" not in batching


def test_predict_examples_reads_present_but_empty_features_as_missing(exported):
    # CsvExampleGen writes an empty CSV field as a feature with an empty value list.
    _, path, _ = exported
    rows = _rows_with_missing(1, seed=5)
    row = {c: v[0] for c, v in rows.items()}
    row["C1"], row["I1"] = "", np.nan
    written = tf.train.Example.FromString(_example(row))
    written.features.feature["C1"].bytes_list.SetInParent()
    written.features.feature["I1"].float_list.SetInParent()
    assert len(written.features.feature["C1"].bytes_list.value) == 0
    loaded = tf.saved_model.load(str(path))
    empty = loaded.signatures["predict_examples"](
        examples=tf.constant([written.SerializeToString(), _example(row)])
    )["probabilities"].numpy()
    assert empty[0] == empty[1]  # empty list == absent feature


# ------------------------------------------------------------------------ stale temp dirs
def test_the_next_export_removes_temp_dirs_that_killed_exports_left(tmp_path):
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait()  # its pid now names no running process: a killed exporter's
    stale = tmp_path / f".tmp-3-{finished.pid}"
    (stale / "variables").mkdir(parents=True)
    (stale / "variables" / "variables.data-00000-of-00001").write_bytes(b"x" * 1000)
    live = tmp_path / f".tmp-4-{os.getpid()}"  # a running exporter's: kept
    live.mkdir()
    (tmp_path / ".tmp-notes").mkdir()  # not the exporter's name pattern: kept
    path = serving.export_light(build_model(_config(), SCHEMA), tmp_path)
    assert path.name == "1"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["1", live.name, ".tmp-notes"])


# ------------------------------------------------------------------------ slim table
def test_slim_export_holds_exactly_the_light_features_rows(tmp_path):
    schema = dataclasses.replace(SCHEMA, privileged=("I1", "C1", "C3"))
    model = _trained(_config(), schema=schema, steps=1)
    path = serving.export_light(model, tmp_path, example_features=random_features(schema, 40))
    variables = {v.name: v for v in _loaded_variables(path)}
    table = variables["shared_embedding/light_rows:0"].numpy()
    # C1 (2,000 rows) and C3 (100,000 rows) are privileged: 672,675 − 102,000 rows remain.
    assert table.shape == (570_675, 4)
    # Light tower: 24 fields x 4 + 12 dense = 108 inputs -> MLP 4 (108*4 + 4) -> 1 (4 + 1).
    count = sum(int(np.prod(v.shape)) for v in variables.values())
    assert count == 570_675 * 4 + 108 * 4 + 4 + 4 + 1
    assert serving.read_export_info(path)["verification"]["parameters"] == count
    full = model.embedding.table.numpy()
    c1, c3 = full[0:2000], full[3000:103_000]  # blocks in schema order: C1, C2, C3, ...
    np.testing.assert_array_equal(table[:1000], full[2000:3000])  # C2 moved to row 0
    np.testing.assert_array_equal(table[1000:], full[103_000:])
    exported = {row.tobytes() for row in table}
    assert not any(row.tobytes() in exported for row in np.concatenate([c1, c3]))
    info = serving.read_export_info(path)["embedding_table"]
    assert (info["rows"], info["training_rows"], info["dtype"]) == (570_675, 672_675, "float32")
    assert "C1" not in info["features"] and "C2" in info["features"]


# ------------------------------------------------------------------------ quantized tables
@pytest.fixture(scope="module")
def quantized(tmp_path_factory, data):
    """A model trained 10 steps on synthetic Criteo rows, exported in every dtype on the
    first 500 eval rows (labelled)."""
    train_file, eval_file = data
    model = build_model(_config(), SCHEMA)
    for features, labels in make_dataset(SCHEMA, [str(train_file)], 256).take(10):
        model.train_step((features, labels))
    features, labels = serving.eval_rows(SCHEMA, [str(eval_file)], "error", 500)
    base = tmp_path_factory.mktemp("quantized")
    paths = {}
    for dtype in ("float32", "bfloat16", "int8"):
        model.rocket_config = _config().replace({"export.embedding_dtype": dtype})
        # After 10 steps the net may still rank at chance, which the gate refuses; the
        # quantization checks are what is tested here (the gate: tests/serving/test_gate.py).
        paths[dtype] = serving.export_light(
            model, base / dtype, example_features=features, example_labels=labels, force=True
        )
    model.rocket_config = _config()
    return model, paths, features, labels.numpy()


def test_quantized_tables_are_smaller_and_record_dtype_size_and_auc_change(quantized):
    _, paths, _, _ = quantized
    info = {dtype: serving.read_export_info(path) for dtype, path in paths.items()}
    variables = {dtype: {v.name: v for v in _loaded_variables(p)} for dtype, p in paths.items()}
    rows = {d: v["shared_embedding/light_rows:0"] for d, v in variables.items()}
    assert [rows[d].dtype for d in paths] == [tf.float32, tf.bfloat16, tf.int8]
    float_rows = rows["float32"].numpy()
    scales = variables["int8"]["shared_embedding/light_row_scales:0"].numpy()
    assert scales.shape == (672_675,)
    np.testing.assert_allclose(scales, np.abs(float_rows).max(axis=1) / 127, rtol=1e-6)
    # Dequantized rows are within half a step of the trained ones; bfloat16 within 2^-9.
    dequantized = rows["int8"].numpy().astype(np.float32) * scales[:, None]
    assert np.all(np.abs(dequantized - float_rows) <= scales[:, None] / 2 + 1e-9)
    bf16 = tf.cast(rows["bfloat16"], tf.float32).numpy()
    assert np.all(np.abs(bf16 - float_rows) <= np.abs(float_rows) * 2**-8)
    # int8: 1 byte per value + a 4-byte scale per row; bfloat16: 2 bytes per value.
    table_bytes = {"float32": 672_675 * 16, "bfloat16": 672_675 * 8, "int8": 672_675 * 8}
    for dtype, meta in info.items():
        assert meta["embedding_table"]["dtype"] == dtype
        assert meta["verification"]["embedding_dtype"] == dtype
        assert table_bytes[dtype] < meta["size_bytes"] < table_bytes[dtype] + 600_000, dtype
        change = meta["verification"]["quality"]
        assert change["rows"] == 500 and 0.0 < change["auc"] < 1.0
        assert abs(change["auc_change"]) <= {"float32": 1e-6, "bfloat16": 1e-4, "int8": 1e-3}[dtype]
        assert change["auc_float32"] == info["float32"]["verification"]["quality"]["auc"]


def test_quantized_exports_reload_without_rocketctr_and_score_within_tolerance(quantized, tmp_path):
    model, paths, features, labels = quantized
    out = _score_in_plain_tensorflow(paths, features, tmp_path)
    np.testing.assert_allclose(out["float32"], _probs(model, features), rtol=0, atol=1e-5)
    base = auc(labels, out["float32"])
    assert np.ptp(out["float32"]) > 0.05  # the rows rank apart, so a reordering would show
    for dtype, tolerance in (("bfloat16", 1e-4), ("int8", 1e-3)):
        assert quality.AUC_TOLERANCE[dtype] == tolerance
        assert abs(auc(labels, out[dtype]) - base) <= tolerance, dtype
        diff = np.abs(out[dtype] - out["float32"])
        assert 0 < diff.max() < 1e-3, dtype  # quantized, yet close


def _signature_defs(path: Path) -> str:
    cli = Path(sys.executable).parent / "saved_model_cli"
    result = subprocess.run(
        [str(cli), "show", "--all", "--dir", str(path)],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    # The signature defs; the op list after them differs (int8 adds Cast and Mul).
    start = result.stdout.index("signature_def[")
    return result.stdout[start : result.stdout.index("The MetaGraph with tag set", start)]


def test_saved_model_cli_lists_the_same_signatures_for_every_dtype(quantized):
    _, paths, _, _ = quantized
    listed = {dtype: _signature_defs(path) for dtype, path in paths.items()}
    assert listed["bfloat16"] == listed["float32"] == listed["int8"]
    assert "signature_def['serving_default']" in listed["int8"]
    assert "signature_def['predict_examples']" in listed["int8"]
    assert listed["int8"].count("inputs['") == 39 + 1


def test_a_quantized_export_beyond_its_tolerance_or_without_labels_is_refused(
    quantized, tmp_path, monkeypatch
):
    model, _, features, labels = quantized
    model.rocket_config = _config().replace({"export.embedding_dtype": "int8"})
    try:
        with pytest.raises(serving.ExportError, match="needs labelled eval rows"):
            serving.export_light(model, tmp_path, example_features=features)
        monkeypatch.setitem(quality.AUC_TOLERANCE, "int8", -1.0)  # no change can pass
        with pytest.raises(serving.ExportError, match=r"'int8' moves the light net's AUC by"):
            serving.export_light(model, tmp_path, example_features=features, example_labels=labels)
    finally:
        model.rocket_config = _config()
    assert list(tmp_path.iterdir()) == []


def test_an_unknown_embedding_dtype_is_refused_naming_the_key():
    with pytest.raises(ConfigError) as refused:
        _config().replace({"export.embedding_dtype": "fp8"})
    assert str(refused.value) == (
        "Config key export.embedding_dtype must be one of ['float32', 'bfloat16', 'int8']. "
        "Received: 'fp8'"
    )
