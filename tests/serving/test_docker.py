"""The serving files in docker/: the documented REST request, the compose file and the
train Dockerfile, and TF Serving's batching and version policy."""

from __future__ import annotations

import json
import re
from pathlib import Path

import rocketctr  # noqa: F401  (selects Keras 2 before TensorFlow loads)

# isort: split
import numpy as np
import tensorflow as tf
import yaml

from rocketctr import serving
from rocketctr.config.core import Config
from rocketctr.features.schema import load_schema
from rocketctr.model.cotrain import build_model
from tests.helpers import REPO, light_probabilities, tiny_config


def test_documented_rest_request_matches_the_signature(tmp_path):
    """docker/predict_request.json, fed in-process, gives one score per instance."""
    body = json.loads((REPO / "docker" / "predict_request.json").read_text())
    assert body["signature_name"] == "serving_default"
    instances = body["instances"]
    default_schema = load_schema(Config().schema)  # the default preset serves criteo
    model = build_model(tiny_config(), default_schema)
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
    np.testing.assert_allclose(
        out["probabilities"].numpy(), light_probabilities(model, raw), atol=1e-5
    )


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
    "max_batch_size",
    "batch_timeout_micros",
    "max_enqueued_batches",
    "num_batch_threads",
    "thread_pool_name",
    "allowed_batch_sizes",
    "pad_variable_length_inputs",
    "enable_large_batch_splitting",
    "max_execution_batch_size",
}


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
        service["environment"]["MODEL_NAME"],
        mount,
        "tensorflow",
    )
    assert model.model_version_policy.latest.num_versions == 2

    batching = _batching_parameters(config_dir / Path(flags["batching_parameters_file"]).name)
    assert set(batching) <= BATCHING_FIELDS
    execution, largest = int(batching["max_execution_batch_size"]), int(batching["max_batch_size"])
    # A ~100-candidate request fits one run with others merged in; larger ones are split.
    assert batching["enable_large_batch_splitting"] == "true"
    assert 2 * 100 <= execution <= largest and largest >= 1000
    assert int(batching["batch_timeout_micros"]) <= 1000 and "allowed_batch_sizes" not in batching
