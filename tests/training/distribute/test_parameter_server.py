"""ParameterServerStrategy on a loopback cluster: 1 chief, 2 workers, 2 parameter servers."""

import contextlib
import json
import math
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from rocketctr.config.core import Config, ConfigError
from rocketctr.data import synthetic
from rocketctr.runs.rundir import checkpoint_paths
from rocketctr.scoring.evaluation import evaluate_run
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


def test_table_shards_split_large_variables_only_and_need_parameter_servers(monkeypatch):
    partition = distribute.fixed_shards_partitioner(3)
    assert partition(tf.TensorShape([100_000, 16]), tf.float32) == [3, 1]  # 6.4 MB
    assert partition(tf.TensorShape([400, 16]), tf.float32) == [1, 1]  # 25.6 KB: whole
    assert partition(tf.TensorShape([2, 40_000]), tf.float32) == [2, 1]  # no empty shard
    assert partition(tf.TensorShape([]), tf.float32) == []
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ConfigError, match="train.table_shards \\(3\\) splits the tables over"):
        distribute.make_strategy("auto", table_shards=3)
    with pytest.raises(ConfigError, match="train.table_shards must be >= 0"):
        Config.from_dict({"train": {"table_shards": -1}})


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


@contextlib.contextmanager
def _cluster(cwd):
    """A loopback cluster of 2 workers and 2 parameter servers, each running the CLI's
    `train` (which serves the task and blocks); yields (the chief's TF_CONFIG environment,
    the servers' outputs, filled when it exits, all killed)."""
    addresses = [f"127.0.0.1:{p}" for p in free_ports(5)]
    cluster = {"chief": addresses[:1], "worker": addresses[1:3], "ps": addresses[3:]}
    servers = [
        subprocess.Popen(
            [sys.executable, "-m", "rocketctr.cli", "train"],
            env=_env({"cluster": cluster, "task": {"type": job, "index": index}}),
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for job, index in [("worker", 0), ("worker", 1), ("ps", 0), ("ps", 1)]
    ]
    outputs = []
    try:
        yield _env({"cluster": cluster, "task": {"type": "chief", "index": 0}}), outputs
    finally:
        for server in servers:
            server.kill()
        outputs += [server.communicate()[0] for server in servers]


def _chief(data, model_dir, overrides=None) -> list[str]:
    return [
        sys.executable,
        str(PS_CHIEF),
        str(data[0]),
        str(data[1]),
        str(model_dir),
        json.dumps(overrides or {}),
    ]


def _train_on_a_cluster(data, model_dir, cwd, overrides=None):
    """The chief's run (`ps_chief.py`) to its end on a fresh cluster: (the finished process,
    the servers' outputs)."""
    with _cluster(cwd) as (env, outputs):
        proc = subprocess.run(
            _chief(data, model_dir, overrides),
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            cwd=cwd,
        )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc, outputs


@pytest.mark.integration
def test_co_training_on_a_local_cluster_shards_the_embedding_table(tmp_path):
    data = synthetic.ensure_synthetic_criteo(tmp_path / "data", 3000, 500)
    proc, outputs = _train_on_a_cluster(data, tmp_path / "run", tmp_path)
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


@pytest.mark.integration
def test_a_table_in_more_shards_than_servers_resumes_after_kill_and_exports_at_parity(tmp_path):
    """train.table_shards: 3 shards over 2 parameter servers. The chief is killed (-9) after
    its first epoch; the job restarts whole, as an operator's restart policy does, and the
    chief resumes from that checkpoint. The light net exported from the sharded table scores
    as the checkpoint does, read back without parameter servers."""
    data = synthetic.ensure_synthetic_criteo(tmp_path / "data", 3000, 500)
    run = tmp_path / "run"
    overrides = {"train.table_shards": 3, "train.num_epochs": 3, "train.steps_per_epoch": 40}
    log = tmp_path / "killed.log"
    with _cluster(tmp_path) as (env, _), open(log, "w") as out:
        chief = subprocess.Popen(
            _chief(data, run, overrides), env=env, cwd=tmp_path, stdout=out, stderr=out
        )
        deadline = time.time() + 300
        while not checkpoint_paths(run / "checkpoints"):
            assert chief.poll() is None, log.read_text()[-3000:]
            assert time.time() < deadline, "no checkpoint in time"
            time.sleep(0.05)
        assert chief.poll() is None, "the run ended before the kill"
        chief.send_signal(signal.SIGKILL)
        chief.wait()
    (first,) = checkpoint_paths(run / "checkpoints")
    assert not (run / "metrics.json").exists()

    proc, _ = _train_on_a_cluster(data, run, tmp_path, overrides)
    (resumed,) = [line for line in proc.stdout.splitlines() if line.startswith("Resuming from")]
    assert resumed.startswith("Resuming from checkpoint ") and Path(first).name in resumed
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    rows = [shape[0] for shape in report["shard_shapes"]]
    assert len(rows) == 3 and min(rows) > 0
    assert sorted(set(report["shard_devices"])) == [
        "/job:ps/replica:0/task:0/device:CPU:0",
        "/job:ps/replica:0/task:1/device:CPU:0",
    ]
    history = json.loads((run / "history.json").read_text())
    assert [r["epoch"] for r in history] == [1, 2, 3]
    table = "model/embedding/table/.ATTRIBUTES/VARIABLE_VALUE"
    last = checkpoint_paths(run / "checkpoints")[-1]
    assert _weights(last)[table].shape[0] == sum(rows)  # saved whole

    evaluation = evaluate_run(run, [str(data[1])])  # no cluster: the checkpoint, read whole
    parity = evaluation["export_parity"]
    assert parity is not None and parity["max_abs_diff"] <= 1e-5, parity
    assert evaluation["towers"]["light"]["scored_with"].startswith("export ")
