"""tf.distribute and fault tolerance, on loopback only."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from rocketctr.config.core import ConfigError
from rocketctr.training.distribute import resolve_strategy_name
from tests.helpers import REPO, free_ports, subprocess_env, tiny_train_command

MIRRORED_LOSSES = Path(__file__).resolve().parent / "mirrored_losses.py"


def _train_cmd(data, model_dir, *extra):
    return tiny_train_command(data, model_dir, "--set=train.batch_size=128", *extra)


@pytest.mark.parametrize(
    ("tf_config", "requested", "expected"),
    [
        ({}, "auto", "default"),
        (
            {"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 0}},
            "auto",
            "multi_worker",
        ),
        (
            {"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 0}},
            "auto",
            "default",
        ),
        ({}, "mirrored", "mirrored"),
    ],
)
def test_strategy_resolution(monkeypatch, tf_config, requested, expected):
    monkeypatch.setenv("TF_CONFIG", json.dumps(tf_config))
    assert resolve_strategy_name(requested) == expected


def test_unknown_strategies_are_refused():
    with pytest.raises(ConfigError, match="Received: 'tpu'"):
        resolve_strategy_name("tpu")


@pytest.mark.integration
def test_mirrored_over_two_cpus_matches_one_device():
    proc = subprocess.run(
        [sys.executable, str(MIRRORED_LOSSES)],
        capture_output=True,
        text=True,
        timeout=300,
        env=subprocess_env(),
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    losses = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(losses["one"]) == 6
    # Logged losses are the true mean loss, not divided (or multiplied) by the replica count.
    # (bf16 towers, train.mixed_precision auto, round each replica's half batch: ~1e-5.)
    np.testing.assert_allclose(losses["two"], losses["one"], rtol=1e-4)
    # A booster frozen after 3 steps (the teacher stopped at its peak): its frozen copy is
    # read inside the mirrored step, which trains as on one device.
    assert len(losses["one_frozen"]) == 6
    np.testing.assert_allclose(losses["two_frozen"], losses["one_frozen"], rtol=1e-4)


def _weights(checkpoint_dir):
    reader = tf.train.load_checkpoint(str(checkpoint_dir))
    names = [n for n in reader.get_variable_to_shape_map() if n.startswith("model/")]
    return {n: reader.get_tensor(n) for n in names if "OPTIMIZER_SLOT" not in n}


@pytest.mark.integration
def test_multi_worker_two_processes_end_with_identical_weights(tmp_path, data):
    workers = [f"127.0.0.1:{p}" for p in free_ports(2)]
    model_dir = tmp_path / "run"
    procs = []
    for index in range(2):
        tf_config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        cmd = _train_cmd(
            data, model_dir, "--set=train.steps_per_epoch=8", "--set=train.num_epochs=1"
        )
        procs.append(
            subprocess.Popen(
                cmd,
                env=subprocess_env(TF_CONFIG=json.dumps(tf_config)),
                cwd=tmp_path,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    outputs = [p.communicate(timeout=240) for p in procs]
    for p, (_, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err[-3000:]
    chief = _weights(model_dir / "checkpoints")
    other = _weights(model_dir / "checkpoints" / ".worker-worker-1")
    assert chief.keys() == other.keys() and len(chief) > 5
    for name in chief:
        np.testing.assert_array_equal(chief[name], other[name], err_msg=name)
    # Only the chief reports metrics.
    assert (model_dir / "metrics.json").exists()
