"""ParameterServerStrategy on a loopback cluster: 1 chief, 2 workers, 2 parameter servers."""

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from rocketctr.config.core import Config, ConfigError
from rocketctr.data import synthetic
from rocketctr.training import distribute, inputs
from tests.helpers import free_ports, subprocess_env

PS_CHIEF = Path(__file__).resolve().parent / "ps_chief.py"


def _env(tf_config):
    return subprocess_env(TF_CONFIG=json.dumps(tf_config))


def test_auto_picks_parameter_server_when_tf_config_has_a_ps_job(monkeypatch):
    cluster = {"chief": ["a:1"], "worker": ["b:2"], "ps": ["c:3"]}
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": {"type": "chief"}}))
    assert distribute.resolve_strategy_name("auto") == "parameter_server"
    assert distribute.cluster_task() is None  # the chief trains; it does not serve
    tf_config = {"cluster": cluster, "task": {"type": "ps", "index": 0}}
    monkeypatch.setenv("TF_CONFIG", json.dumps(tf_config))
    assert distribute.cluster_task() == ("ps", 0)


def test_parameter_server_needs_a_chief_and_ps_jobs(monkeypatch):
    tf_config = {"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 0}}
    monkeypatch.setenv("TF_CONFIG", json.dumps(tf_config))
    with pytest.raises(ConfigError, match=r"needs TF_CONFIG with 'chief', 'worker' and 'ps'"):
        distribute.make_strategy("parameter_server")


def test_parameter_server_refuses_an_endless_epoch(monkeypatch):
    monkeypatch.setattr(distribute, "is_parameter_server", lambda strategy: True)
    t = Config.from_dict({"train": {"steps_per_epoch": None}}).train
    with pytest.raises(ConfigError, match="needs train.steps_per_epoch.*steps_per_epoch=None"):
        inputs._fit_inputs(None, None, None, None, t)
    fit_data, mid_epoch_backups = inputs._fit_inputs(
        None, None, None, None, Config.from_dict({"train": {"steps_per_epoch": 5}}).train
    )
    assert isinstance(fit_data["x"], tf_keras.utils.experimental.DatasetCreator)
    assert fit_data["validation_data"] is None and mid_epoch_backups is False


def _weights(checkpoint_path):
    reader = tf.train.load_checkpoint(str(checkpoint_path))
    names = [n for n in reader.get_variable_to_shape_map() if n.startswith("model/")]
    return {n: reader.get_tensor(n) for n in names if "OPTIMIZER" not in n}


@pytest.mark.integration
def test_co_training_on_a_local_cluster_shards_the_embedding_table(tmp_path):
    data = synthetic.ensure_synthetic_criteo(tmp_path / "data", 3000, 500)
    addresses = [f"127.0.0.1:{p}" for p in free_ports(5)]
    cluster = {"chief": addresses[:1], "worker": addresses[1:3], "ps": addresses[3:]}
    # Workers and parameter servers run the CLI's `train`, which serves the task and blocks.
    servers = [
        subprocess.Popen(
            [sys.executable, "-m", "rocketctr.cli", "train"],
            env=_env({"cluster": cluster, "task": {"type": job, "index": index}}),
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for job, index in [("worker", 0), ("worker", 1), ("ps", 0), ("ps", 1)]
    ]
    try:
        proc = subprocess.run(
            [sys.executable, str(PS_CHIEF), str(data[0]), str(data[1]), str(tmp_path / "run")],
            env=_env({"cluster": cluster, "task": {"type": "chief", "index": 0}}),
            capture_output=True,
            text=True,
            timeout=300,
            cwd=tmp_path,
        )
    finally:
        for server in servers:
            server.kill()
        outputs = [server.communicate()[0] for server in servers]
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert all("parameter-server cluster until killed" in out for out in outputs), outputs
    report = json.loads(proc.stdout.strip().splitlines()[-1])

    assert report["strategy"] == "ParameterServerStrategyV2"
    assert report["sharded"]
    # Variables go to the ps tasks round-robin in creation order: which task holds the
    # first shard depends on how many variables came before it, so the order is not checked.
    assert sorted(report["shard_devices"]) == [
        "/job:ps/replica:0/task:0/device:CPU:0",
        "/job:ps/replica:0/task:1/device:CPU:0",
    ]
    rows = [shape[0] for shape in report["shard_shapes"]]
    assert min(rows) > 0 and sum(rows) > 100_000  # the whole table, split in two
    assert len(report["train_loss"]) == 2
    assert all(math.isfinite(loss) and loss > 0 for loss in report["train_loss"])
    for tower in ("light", "booster"):
        assert math.isfinite(report["metrics"][tower]["logloss"])

    # Two epochs of 3 steps each: epoch checkpoints at steps 3 and 6 with different weights.
    state = tf.train.get_checkpoint_state(str(tmp_path / "run" / "checkpoints"))
    paths = state.all_model_checkpoint_paths
    assert [int(p.rsplit("-", 1)[1]) for p in paths] == [3, 6]
    first, last = _weights(paths[0]), _weights(paths[1])
    table = "model/embedding/table/.ATTRIBUTES/VARIABLE_VALUE"
    assert first[table].shape[0] == sum(rows)  # saved whole: restorable with any ps count
    changed = [n for n in first if not np.array_equal(first[n], last[n])]
    assert table in changed
    assert any(n.startswith("model/light/") for n in changed)
    assert any(n.startswith("model/booster/") for n in changed)
