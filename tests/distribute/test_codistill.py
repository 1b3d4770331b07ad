"""Codistillation: replicas on different data shards, as separate processes on one machine."""

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from rocketctr.config.core import Config, ConfigError, load_config
from rocketctr.data import make_dataset, synthetic
from rocketctr.features.schema import load_schema
from rocketctr.model.cotrain import build_model
from rocketctr.training.codistill import CodistillReplica, for_replica, replica_dir
from tests.helpers import random_features, random_labels

REPO = Path(__file__).resolve().parents[2]
STEPS = 300
TINY = [
    "--set=model.embedding_dim=4",
    "--set=model.booster.hidden_units=[16]",
    "--set=model.booster.num_cross_layers=1",
    "--set=model.light.hidden_units=[8]",
    "--set=train.batch_size=128",
    f"--set=train.steps_per_epoch={STEPS}",
    "--set=train.num_epochs=1",
    "--set=train.shuffle_buffer_rows=4096",
    "--set=distill.codistill_replicas=2",
    "--set=distill.codistill_every_steps=25",
    "--noexport",
]


def _env():
    env = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="2")
    env.pop("TF_CONFIG", None)
    return env


def _light_probs(model_dir: Path, eval_file: Path) -> np.ndarray:
    """The light net's eval predictions from a replica's final checkpoint."""
    config = load_config(str(model_dir / "config.yaml"))
    schema = load_schema(config.schema)
    model = build_model(config, schema)
    path = tf.train.latest_checkpoint(str(model_dir / "checkpoints"))
    tf.train.Checkpoint(model=model).restore(path).expect_partial()
    features, _ = next(iter(make_dataset(schema, [str(eval_file)], 100_000)))
    return tf.sigmoid(model.light_logits(features)).numpy()


def _logloss(labels: np.ndarray, probs: np.ndarray) -> float:
    p = np.clip(probs, 1e-7, 1 - 1e-7)
    return float(-np.mean(labels * np.log(p) + (1 - labels) * np.log(1 - p)))


def _run_pair(tmp_path: Path, name: str, data, hint_weight: float) -> list[Path]:
    """Two replicas, run at the same time, sharing <tmp_path>/<name>/shared."""
    shared = tmp_path / name / "shared"
    model_dirs = [tmp_path / name / f"replica-{i}" for i in range(2)]
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "rocketctr.cli",
                "train",
                f"--train={data[0]}",
                f"--eval={data[1]}",
                f"--model_dir={model_dirs[i]}",
                *TINY,
                f"--set=train.seed={i}",
                f"--set=distill.methods.kd.weight={hint_weight}",
                f"--replica_index={i}",
                f"--shared_dir={shared}",
            ],
            env=_env(),
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for i in range(2)
    ]
    for proc in procs:
        out, err = proc.communicate(timeout=400)
        assert proc.returncode == 0, err[-3000:]
    for i in range(2):  # each replica published its checkpoints for the other
        assert tf.train.latest_checkpoint(replica_dir(str(shared), i)).endswith(f"-{STEPS}")
    return model_dirs


@pytest.mark.slow  # ~1-3 min, and the replicas run unsynchronised: flaky on a loaded machine
def test_codistilled_replicas_churn_less_than_independent_ones(tmp_path):
    data = synthetic.ensure_synthetic_criteo(tmp_path / "data", 20_000, 2_000)
    labels = np.concatenate([y.numpy() for _, y in make_dataset(
        load_schema("criteo"), [str(data[1])], 100_000)])  # fmt: skip
    results = {}
    for name, hint_weight in (("codistilled", 1.0), ("independent", 0.0)):
        start = time.time()
        dirs = _run_pair(tmp_path, name, data, hint_weight)
        probs = [_light_probs(d, data[1]) for d in dirs]
        results[name] = {
            "logloss": [round(_logloss(labels, p), 4) for p in probs],
            "churn": float(np.mean(np.abs(probs[0] - probs[1]))),
            "seconds": round(time.time() - start, 1),
        }
    print("\ncodistillation (2 replicas, light net, eval rows):", results)
    assert results["codistilled"]["churn"] < results["independent"]["churn"]
    # Agreement must not come from giving up on the labels.
    for name in results:
        assert max(results[name]["logloss"]) < 0.69, results


def test_replica_reads_its_shard_and_its_teacher_waits_for_a_peer_checkpoint(tmp_path):
    config = Config.from_dict(
        {
            "model": {
                "embedding_dim": 2,
                "booster": {"name": "dcn", "hidden_units": [4], "num_cross_layers": 1},
                "light": {"name": "mlp", "hidden_units": [2]},
            },
            "distill": {"codistill_replicas": 2, "methods": {"kd": {"weight": 0.5}}},
        }
    )
    schema = load_schema("criteo")
    batches = tf.data.Dataset.range(6)
    shard, callback = for_replica(config, schema, CodistillReplica(1, str(tmp_path)), batches)
    assert list(shard.as_numpy_iterator()) == [1, 3, 5]

    with pytest.raises(ValueError, match="Build the model with this callback's teacher"):
        callback.set_model(build_model(config, schema))  # its teacher: its own booster
    model = build_model(config, schema, teacher=callback.teacher)
    callback.set_model(model)
    features = random_features(schema, 4)
    (logits, hidden), scale = model.teacher(features, {})
    assert hidden == {}
    assert float(scale) == 0.0  # warm-up: no peer checkpoint yet, so no hint
    np.testing.assert_array_equal(logits.numpy(), np.zeros(4))
    losses = model.compute_losses(features, random_labels(4), training=True)
    assert float(losses["hint_weight"]) == 0.0

    peer = build_model(config, schema)  # replica 0 publishes a checkpoint
    directory = replica_dir(str(tmp_path), 0)
    tf.train.CheckpointManager(tf.train.Checkpoint(model=peer), directory, 1).save()
    assert callback.refresh_peers() == 1
    (logits, _), scale = model.teacher(features, {})
    assert float(scale) == 1.0
    np.testing.assert_allclose(logits.numpy(), peer.light_logits(features).numpy(), rtol=1e-6)
    losses = model.compute_losses(features, random_labels(4), training=True)
    assert float(losses["hint_weight"]) == 0.5
    # The target is a frozen peer's output: no gradient path into the peer.
    with tf.GradientTape() as tape:
        loss = model.compute_losses(features, random_labels(4), training=True)["loss"]
    peer_vars = [v for p in callback.peers for v in p.variables]
    assert all(g is None for g in tape.gradient(loss, peer_vars))


def test_misconfigured_codistillation_is_refused():
    config = Config.from_dict({"distill": {"codistill_replicas": 2}})
    batches = tf.data.Dataset.range(6)
    with pytest.raises(ConfigError, match="needs --replica_index and --shared_dir"):
        for_replica(config, None, None, batches)
    with pytest.raises(ConfigError, match=r"in \[0, 2\). Received: 2"):
        for_replica(config, None, CodistillReplica(2, "/tmp/x"), batches)
    with pytest.raises(ConfigError, match="need distill.codistill_replicas > 1"):
        for_replica(Config(), None, CodistillReplica(0, "/tmp/x"), batches)
    assert for_replica(Config(), None, None, batches) == (batches, None)
