"""Fault tolerance as users meet it: SIGKILL mid-epoch, run the same command again.

Every kill test compares the resumed run with an uninterrupted one of the same config: the
data order of an epoch is a function of (seed, epoch) and the batches trained before the
backup are skipped, so the resumed run must end with the same metrics (to float rounding)
and the same global step, neither lost nor repeated steps.
"""

import json
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from rocketctr.data import synthetic
from rocketctr.runs.rundir import checkpoint_paths
from rocketctr.training.resume import DataPosition, skip_trained
from tests.helpers import subprocess_env, temporaries, tiny_train_command

TOLERANCE = 1e-6  # metrics of a resumed run vs an uninterrupted one (float rounding only)


def _cmd(data, model_dir, *extra):
    """One-pass epochs (the default), 188 batches of 32 each, a backup every 10 steps."""
    return tiny_train_command(
        data,
        model_dir,
        "--set=train.batch_size=32",
        "--set=train.checkpoint_every_steps=10",
        "--set=train.num_epochs=2",
        *extra,
    )


def _run(cmd, cwd):
    proc = subprocess.run(
        cmd, env=subprocess_env(), cwd=cwd, capture_output=True, text=True, timeout=400
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc.stdout


def _steps(directory):
    return [int(p.rsplit("-", 1)[1]) for p in checkpoint_paths(directory)]


def _newest_state(model_dir):
    """(kind, global step) of what a rerun should resume from: the newest saved state."""
    states = [(s, 1, "checkpoint") for s in _steps(model_dir / "checkpoints")]
    states += [(s, 0, "backup") for s in _steps(model_dir / "backup")]
    step, _, kind = max(states)
    return kind, step


def _kill_after_backup(cmd, cwd, model_dir, min_step, delay_seconds=None) -> str:
    """Runs `cmd`, SIGKILLs it after a backup of step >= min_step exists.

    Args:
        delay_seconds: how long after the backup; None: a random time up to 0.2 s.

    Returns:
        What the killed process printed.
    """
    log_path = cwd / f"killed-after-{min_step}.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            cmd, env=subprocess_env(), cwd=cwd, stdout=log, stderr=subprocess.STDOUT
        )
        deadline = time.time() + 300
        while max(_steps(model_dir / "backup"), default=0) < min_step:
            assert proc.poll() is None, log_path.read_text()[-3000:]
            assert time.time() < deadline, "no backup in time"
            time.sleep(0.01)
        time.sleep(random.uniform(0.0, 0.2) if delay_seconds is None else delay_seconds)
        assert proc.poll() is None, "the run ended before the kill"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert not (model_dir / "metrics.json").exists()
    return log_path.read_text()


def _assert_resumed(out, kind, step, damaged=None):
    """`out` says the run resumed from the `kind` of global step `step` (not 0, not later)."""
    lines = [line for line in out.splitlines() if line.startswith("Resuming from")]
    assert len(lines) == 1, out[-3000:]
    assert lines[0].startswith(f"Resuming from {kind} ") and f"global step {step:,})" in lines[0]
    if damaged:
        assert f"checkpoint {damaged} is damaged or partial" in out


def _metrics(model_dir):
    return json.loads((model_dir / "metrics.json").read_text())


def _assert_same_metrics(resumed, uninterrupted, towers=("booster", "light")):
    for tower in towers:
        for name in ("auc", "logloss"):
            assert abs(resumed[tower][name] - uninterrupted[tower][name]) <= TOLERANCE, (
                tower,
                name,
                resumed,
                uninterrupted,
            )


def _assert_same_validation(history, reference_history):
    """Every epoch's validation metrics equal the uninterrupted run's."""
    for record, expected_record in zip(history, reference_history, strict=True):
        for key in (k for k in expected_record if k.startswith("val_")):
            assert abs(record[key] - expected_record[key]) <= TOLERANCE, (key, record)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, data):
    """The reference: the same one-pass command, never killed."""
    cwd = tmp_path_factory.mktemp("uninterrupted")
    _run(_cmd(data, cwd / "run"), cwd)
    return cwd / "run"


def test_data_stream_replays_an_epoch_from_its_pass_index_and_skips_trained_batches(data):
    from rocketctr.data import make_dataset
    from rocketctr.features.schema import load_schema

    schema = load_schema("criteo")

    def first_column(dataset):
        return [b[0]["C1"].numpy().tolist() for b in dataset]

    auto = make_dataset(schema, str(data[0]), 500, shuffle=True, seed=3)
    first, second = first_column(auto), first_column(auto)
    assert first != second  # without a position, each iteration gets a new order
    again = make_dataset(schema, str(data[0]), 500, shuffle=True, seed=3)
    assert [first_column(again), first_column(again)] == [first, second]  # reproducibly

    position = DataPosition()
    stream = make_dataset(
        schema, str(data[0]), 500, shuffle=True, seed=3, first_pass=position.first_pass
    )
    positioned = skip_trained(stream, position.skip)
    epoch0 = first_column(positioned)
    position.first_pass.assign(1)
    epoch1 = first_column(positioned)
    assert epoch1 != epoch0 and sorted(sum(epoch1, [])) == sorted(sum(epoch0, []))
    fresh = make_dataset(schema, str(data[0]), 500, shuffle=True, seed=3, first_pass=1)
    assert first_column(fresh) == epoch1  # epoch 1's order, in a fresh pipeline
    position.skip.assign(5)
    assert first_column(positioned) == epoch1[5:]
    position.first_pass.assign(0)
    position.skip.assign(0)
    assert first_column(positioned) == epoch0


@pytest.mark.integration
def test_one_pass_run_killed_at_three_points_resumes_to_the_uninterrupted_result(
    tmp_path, data, uninterrupted
):
    """Kills in epoch 1 (its length still unknown), near its end and in epoch 2; before the
    second rerun the newest backup is truncated too, so that rerun falls back one backup."""
    model_dir = tmp_path / "run"
    cmd = _cmd(data, model_dir)
    expected = None
    for kill_point, damage in ((40, False), (170, True), (260, False)):
        out = _kill_after_backup(cmd, tmp_path, model_dir, kill_point)
        if expected:
            _assert_resumed(out, *expected)
        if damage:
            newest = checkpoint_paths(model_dir / "backup")[-1]
            for data_file in tf.io.gfile.glob(newest + ".data-*"):
                with open(data_file, "r+b") as f:
                    f.truncate(100)
            expected = ("backup", _steps(model_dir / "backup")[-2], newest)
        else:
            expected = (*_newest_state(model_dir), None)
    _assert_resumed(_run(cmd, tmp_path), *expected)

    # 188 batches an epoch: the global step counts trained batches, none lost or repeated.
    assert _steps(uninterrupted / "checkpoints") == [188, 376]
    assert _steps(model_dir / "checkpoints")[-2:] == [188, 376]
    assert not (model_dir / "backup").exists()
    _assert_same_metrics(_metrics(model_dir), _metrics(uninterrupted))


@pytest.mark.integration
def test_sigterm_mid_epoch_saves_the_step_and_the_rerun_loses_none(tmp_path, data, uninterrupted):
    """SIGTERM (what a scheduler sends before SIGKILL): the run finishes its step, backs it
    up, exits 4 with one line; the same command resumes at that very step."""
    model_dir = tmp_path / "run"
    cmd = _cmd(data, model_dir)
    log_path = tmp_path / "terminated.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            cmd, env=subprocess_env(), cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT
        )
        deadline = time.time() + 300
        while max(_steps(model_dir / "backup"), default=0) < 50:
            assert proc.poll() is None and time.time() < deadline, log_path.read_text()[-3000:]
            time.sleep(0.01)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=120) == 4, log_path.read_text()[-3000:]
    out = log_path.read_text()
    found = re.search(
        r"^rocketctr: Stopped by SIGTERM at global step (\d+), after saving (\S+): rerun the "
        r"same command to resume from it\.$",
        out,
        re.M,
    )
    assert found, out[-3000:]
    step = int(found[1])
    assert step >= 50 and found[2] == f"{model_dir}/backup/ckpt-{step}"
    assert _steps(model_dir / "backup")[-1] == step and not (model_dir / "metrics.json").exists()
    _assert_resumed(_run(cmd, tmp_path), "backup", step)
    assert _steps(model_dir / "checkpoints")[-2:] == [188, 376]
    _assert_same_metrics(_metrics(model_dir), _metrics(uninterrupted))


@pytest.mark.integration
def test_a_backup_the_shorter_data_cannot_reach_is_set_aside_never_deleted(tmp_path, data):
    """Killed after a backup at batch >= 100 of epoch 1, rerun on a training file of 32
    batches: each backup (two are kept) is moved aside with the reason, the run says no
    state is left and stops (exit 2), and the next run trains from the start."""
    model_dir = tmp_path / "run"
    _kill_after_backup(_cmd(data, model_dir), tmp_path, model_dir, 100)
    backup = checkpoint_paths(model_dir / "backup")[-1]
    lines = Path(data[0]).read_text().splitlines(True)
    short = tmp_path / "short.tsv"
    short.write_text("".join(lines[:1024]))  # 32 batches of 32
    cmd = _cmd((short, data[1]), model_dir)
    proc = subprocess.run(
        cmd, env=subprocess_env(), cwd=tmp_path, capture_output=True, text=True, timeout=400
    )
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    aside = str(model_dir / "backup.set_aside" / backup.rsplit("/", 1)[1])
    assert f"WARNING: backup {backup} cannot be resumed: taken at batch " in proc.stdout
    assert f"Moved it to {aside}; resuming from the state before it." in proc.stdout
    assert proc.stderr.strip().splitlines()[-1] == (
        f"rocketctr: error: {model_dir} has no state left to resume from: the backups that "
        f"cannot be resumed are in {model_dir / 'backup.set_aside'} (see above). Rerun to "
        "train from the start, or restore the training files they were taken with."
    )
    assert tf.io.gfile.glob(aside + ".index")
    assert "Not resumable" in Path(aside + ".why.txt").read_text()
    assert not checkpoint_paths(model_dir / "backup")
    assert "Resuming from" not in _run(cmd, tmp_path)  # from the start, and it finishes
    assert _steps(model_dir / "checkpoints") == [32, 64]


@pytest.mark.integration
def test_a_run_with_a_hidden_hint_regressor_killed_mid_epoch_resumes_its_regressor(tmp_path, data):
    """The `hidden` method's regressor is a training-only weight: it must be in the backups,
    restored, and go on from there (one-pass epochs, the default)."""
    methods = "--set=distill.methods={kd: {weight: 1.0}, hidden: {weight: 0.5}}"
    reference, model_dir = tmp_path / "reference", tmp_path / "run"
    _run(_cmd(data, reference, methods, "--set=train.num_epochs=1"), tmp_path)
    cmd = _cmd(data, model_dir, methods, "--set=train.num_epochs=1")
    _kill_after_backup(cmd, tmp_path, model_dir, 60)
    expected = _newest_state(model_dir)
    _assert_resumed(_run(cmd, tmp_path), *expected)
    assert _steps(model_dir / "checkpoints") == _steps(reference / "checkpoints") == [188]

    def regressor(run):
        """{checkpoint key: value} of the regressor's kernel and bias."""
        reader = tf.train.load_checkpoint(checkpoint_paths(run / "checkpoints")[-1])
        keys = [k for k in reader.get_variable_to_shape_map() if "distiller" in k]
        return {k: reader.get_tensor(k) for k in keys}

    resumed, uninterrupted = regressor(model_dir), regressor(reference)
    assert len(resumed) == 2 and resumed.keys() == uninterrupted.keys()
    (bias,) = [k for k in resumed if "bias" in k]
    assert np.any(resumed[bias])  # trained: it starts at zeros
    for key, value in resumed.items():
        np.testing.assert_allclose(value, uninterrupted[key], atol=1e-5, err_msg=key)
    _assert_same_metrics(_metrics(model_dir), _metrics(reference))


@pytest.mark.integration
@pytest.mark.parametrize("delay_seconds", [0.0, 1.5])
def test_a_backup_at_an_epochs_last_batch_is_never_resumed_from(
    tmp_path, data, uninterrupted, delay_seconds
):
    """188 batches, a backup every 47: the one at batch 188 cannot be resumed (no batch
    left). It is dropped when validation starts; killed before that (delay 0, most of the
    time) the rerun drops it itself. Either way the run resumes from batch 141 and ends
    with the uninterrupted run's weights after epoch 1."""
    # A long validation (50k rows, over 1,500 batches) to kill during; the kill at once
    # needs none.
    eval_rows = 50_000 if delay_seconds else 1000
    eval_file = synthetic.ensure_synthetic_criteo(tmp_path / "eval", 1000, eval_rows)[1]
    model_dir = tmp_path / "run"
    cmd = [
        *_cmd(
            data,
            model_dir,
            f"--eval={eval_file}",
            "--set=train.checkpoint_every_steps=47",
            "--set=train.num_epochs=1",
        )
    ]
    _kill_after_backup(cmd, tmp_path, model_dir, 188, delay_seconds)
    assert not _steps(model_dir / "checkpoints")  # killed before the epoch checkpoint
    if delay_seconds:  # validation of 50k rows is under way
        assert _steps(model_dir / "backup") == [141]  # the two kept, less the one at 188
    out = _run(cmd, tmp_path)
    resumed_from = [line for line in out.splitlines() if line.startswith("Resuming from")]
    assert resumed_from[-1].startswith(f"Resuming from backup {model_dir}/backup/ckpt-141 ")
    if len(resumed_from) == 2:  # the kill came before the backup was dropped
        assert (
            f"backup {model_dir}/backup/ckpt-188 cannot be resumed: taken at batch 188 of epoch "
            f"1, which the training data no longer reaches (the files changed?) or which was the "
            f"epoch's last. Moved it to {model_dir}/backup.set_aside/ckpt-188;"
        ) in out
    resumed = tf.train.load_checkpoint(str(model_dir / "checkpoints" / "ckpt-188"))
    reference = tf.train.load_checkpoint(str(uninterrupted / "checkpoints" / "ckpt-188"))
    names = [
        n
        for n in reference.get_variable_to_shape_map()
        if n.startswith("model/") and "_aucs" not in n and "_trackers" not in n  # not metrics
    ]
    assert len(names) > 10
    for name in names:
        np.testing.assert_allclose(
            resumed.get_tensor(name), reference.get_tensor(name), rtol=0, atol=1e-6, err_msg=name
        )


@pytest.mark.integration
@pytest.mark.parametrize(
    ("point", "n", "temporary", "resumed_from"),
    [
        ("best", 1, "best/ckpt-1_temp", ("backup", 180)),  # epoch 1's selected weights
        ("backup", 5, "backup/ckpt-50_temp", ("backup", 40)),
        ("checkpoints", 2, "checkpoints/ckpt-376_temp", ("backup", 370)),  # the last one
        ("export", 1, "export/.tmp-1-*", ("checkpoint", 376)),  # after training
    ],
)
def test_a_kill_inside_each_write_is_resumed_by_the_same_command(
    tmp_path, data, uninterrupted, point, n, temporary, resumed_from
):
    """SIGKILL in the middle of a write (tests/training/kill_at_write.py: its temporary is on disk,
    its real name is not): the same command run again removes the temporary, resumes from
    the state before it and ends with the uninterrupted run's metrics and steps."""
    model_dir = tmp_path / "run"
    cmd = _cmd(data, model_dir, "--export")  # the export at the end too
    killed = subprocess.run(
        [sys.executable, "-m", "tests.training.kill_at_write", point, str(n), *cmd[3:]],
        env=subprocess_env(),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stdout[-2000:] + killed.stderr[-3000:]
    assert "killing at " in killed.stdout
    assert len(list(model_dir.glob(temporary))) == 1
    assert (model_dir / "metrics.json").exists() == (point == "export")  # after training
    out = _run(cmd, tmp_path)
    _assert_resumed(out, *resumed_from)
    assert temporaries(model_dir) == []
    assert _steps(model_dir / "checkpoints")[-2:] == [188, 376]
    assert (model_dir / "export" / "1" / "saved_model.pb").exists()
    assert sorted(p.name for p in (model_dir / "export").iterdir()) == ["1"]
    _assert_same_metrics(_metrics(model_dir), _metrics(uninterrupted))


@pytest.mark.integration
@pytest.mark.slow  # not the default mode; `pytest -m slow`
def test_fixed_steps_per_epoch_run_killed_mid_epoch_resumes_to_the_uninterrupted_result(
    tmp_path, data
):
    extra = ("--set=train.steps_per_epoch=100",)
    reference = tmp_path / "reference"
    _run(_cmd(data, reference, *extra), tmp_path)
    model_dir = tmp_path / "run"
    cmd = _cmd(data, model_dir, *extra)
    expected = None
    for kill_point in (40, 140):  # epoch 1, then epoch 2 (the stream spans both)
        out = _kill_after_backup(cmd, tmp_path, model_dir, kill_point)
        if expected:
            _assert_resumed(out, *expected)
        expected = _newest_state(model_dir)
    _assert_resumed(_run(cmd, tmp_path), *expected)
    assert _steps(model_dir / "checkpoints") == _steps(reference / "checkpoints") == [100, 200]
    _assert_same_metrics(_metrics(model_dir), _metrics(reference))


@pytest.mark.integration
@pytest.mark.slow  # not the default mode; `pytest -m slow`
def test_codistillation_replica_killed_mid_epoch_resumes_to_the_uninterrupted_result(
    tmp_path, data
):
    """Replica 0 of 2 alone (no peer checkpoint yet, so its hint weight stays 0): it trains
    on every 2nd batch, 94 an epoch; the skip counts its own batches."""

    def cmd(model_dir):
        return _cmd(
            data,
            model_dir,
            "--set=distill.codistill_replicas=2",
            "--replica_index=0",
            f"--shared_dir={model_dir}-shared",
        )

    _run(cmd(tmp_path / "reference"), tmp_path)
    model_dir = tmp_path / "run"
    _kill_after_backup(cmd(model_dir), tmp_path, model_dir, 120)
    expected = _newest_state(model_dir)
    _assert_resumed(_run(cmd(model_dir), tmp_path), *expected)
    assert _steps(model_dir / "checkpoints") == _steps(tmp_path / "reference" / "checkpoints")
    assert _steps(model_dir / "checkpoints") == [94, 188]
    _assert_same_metrics(_metrics(model_dir), _metrics(tmp_path / "reference"))


@pytest.mark.integration
def test_a_damaged_checkpoint_index_never_restarts_a_run_over_its_checkpoints(tmp_path, data):
    model_dir = tmp_path / "run"
    base = _cmd(data, model_dir, "--set=train.steps_per_epoch=5")
    _run([*base, "--set=train.num_epochs=2"], tmp_path)
    (model_dir / "checkpoints" / "checkpoint").write_text("garbage\x00 not an index")
    out = _run([*base, "--set=train.num_epochs=3"], tmp_path)
    assert "does not list the checkpoints on disk" in out
    _assert_resumed(out, "checkpoint", 10)
    assert _steps(model_dir / "checkpoints") == [5, 10, 15]
    assert tf.train.latest_checkpoint(str(model_dir / "checkpoints")).endswith("ckpt-15")


def _cli(*args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "rocketctr.cli", *args],
        env=subprocess_env(),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.integration
def test_export_and_evaluate_fall_back_from_a_damaged_checkpoint_and_fail_cleanly_without_one(
    tmp_path, data, uninterrupted
):
    model_dir = tmp_path / "run"
    shutil.copytree(uninterrupted, model_dir, ignore=shutil.ignore_patterns("export"))
    with open(next((model_dir / "checkpoints").glob("ckpt-376.data-*")), "r+b") as f:
        f.seek(2000)
        f.write(b"\xff" * 64)  # flipped bytes: the tensor checksums no longer match
    damaged = f"checkpoint {model_dir}/checkpoints/ckpt-376 is damaged or partial"

    evaluated = _cli("evaluate", f"--model_dir={model_dir}", f"--eval={data[1]}", cwd=tmp_path)
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    assert evaluated.stdout.count(damaged) == 1
    assert f"Scored {model_dir}/checkpoints/ckpt-188" in evaluated.stdout
    assert "light" in evaluated.stdout and "auc" in evaluated.stdout.lower()

    exported = _cli(
        "export", f"--model_dir={model_dir}", f"--export_dir={tmp_path / 'e'}", cwd=tmp_path
    )
    assert exported.returncode == 0, exported.stderr[-3000:]
    assert exported.stdout.count(damaged) == 1
    metadata = json.loads((tmp_path / "e" / "1" / "assets.extra" / "rocketctr.json").read_text())
    assert metadata["metadata"]["checkpoint"].endswith("ckpt-188")

    for data_file in (model_dir / "checkpoints").glob("ckpt-188.data-*"):
        data_file.write_bytes(data_file.read_bytes()[:100])
    for command, *args in (("evaluate", f"--data={data[1]}"), ("export",)):
        failed = _cli(
            command,
            f"--model_dir={model_dir}",
            *args,
            f"--export_dir={tmp_path / 'e'}",
            cwd=tmp_path,
        )
        assert failed.returncode == 2, failed.stderr[-3000:]
        assert "Traceback" not in failed.stderr
        errors = [e for e in failed.stderr.splitlines() if e.startswith("rocketctr: error:")]
        assert len(errors) == 1, failed.stderr[-3000:]
        error = errors[0]
        assert error.startswith("rocketctr: error: No checkpoint reads back whole")
        assert "ckpt-376 (" in error and "ckpt-188 (" in error


@pytest.mark.integration
@pytest.mark.parametrize("content", ["", "{not: [valid", "- a list\n"])
def test_a_damaged_config_yaml_is_named_not_called_a_different_config(
    tmp_path, data, uninterrupted, content
):
    model_dir = tmp_path / "run"
    shutil.copytree(uninterrupted, model_dir, ignore=shutil.ignore_patterns("export"))
    (model_dir / "config.yaml").write_text(content)
    proc = subprocess.run(
        _cmd(data, model_dir),
        env=subprocess_env(),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2
    error = proc.stderr.strip().splitlines()[-1]
    assert error.startswith(f"rocketctr: error: {model_dir}/config.yaml is ")
    assert "different config" not in error


@pytest.mark.integration
def test_damaged_history_and_metrics_files_are_named_and_set_aside(tmp_path, data, uninterrupted):
    model_dir = tmp_path / "run"
    shutil.copytree(uninterrupted, model_dir, ignore=shutil.ignore_patterns("export"))
    (model_dir / "history.json").write_text('[{"epoch": 1, "loss": ')  # cut mid-write
    (model_dir / "metrics.json").write_text("")
    out = _run([*_cmd(data, model_dir), "--set=train.num_epochs=3", "--noexport"], tmp_path)
    assert f"{model_dir}/history.json is not valid JSON" in out
    assert (model_dir / "history.json.damaged").exists()
    assert [r["epoch"] for r in json.loads((model_dir / "history.json").read_text())] == [3]
    exported = _cli(
        "export", f"--model_dir={model_dir}", f"--export_dir={tmp_path / 'e'}", cwd=tmp_path
    )
    assert exported.returncode == 0, exported.stderr[-3000:]


THREE_LIGHTS = (
    "--set=model.lights={small: {name: mlp, hidden_units: [4]}, "
    "wide: {name: mlp, hidden_units: [16, 8], optimizer: {name: adam, learning_rate: 0.003}}, "
    "lr: {name: lr}}",
    "--set=export.light=wide",
)


@pytest.mark.integration
def test_a_run_of_three_light_nets_killed_mid_epoch_resumes_every_net_and_its_selection(
    tmp_path, data
):
    reference = tmp_path / "reference"
    _run(_cmd(data, reference, *THREE_LIGHTS), tmp_path)
    model_dir = tmp_path / "run"
    cmd = _cmd(data, model_dir, *THREE_LIGHTS)
    _kill_after_backup(cmd, tmp_path, model_dir, 250)  # epoch 2, after epoch 1's best/ writes
    expected = _newest_state(model_dir)
    _assert_resumed(_run(cmd, tmp_path), *expected)
    resumed, uninterrupted = _metrics(model_dir), _metrics(reference)
    assert sorted(resumed) == ["booster", "lr", "small", "wide"]
    _assert_same_metrics(resumed, uninterrupted, towers=resumed)
    history = json.loads((model_dir / "history.json").read_text())
    assert [r["epoch"] for r in history] == [1, 2]
    for light in ("small", "wide", "lr"):
        assert sorted(p.name for p in (model_dir / "best" / light).iterdir()) == sorted(
            p.name for p in (reference / "best" / light).iterdir()
        )


@pytest.mark.integration
def test_a_run_killed_after_its_teacher_stopped_resumes_from_the_same_frozen_teacher(
    tmp_path, data
):
    # On these rows the booster peaks at epoch 2 and stops after epoch 3 (patience 1).
    extra = (
        "--set=train.num_epochs=4",
        "--set=distill.teacher_patience=1",
        "--set=train.dense_optimizer.learning_rate=0.01",
    )
    reference = tmp_path / "reference"
    _run(_cmd(data, reference, *extra), tmp_path)
    stops = [r.get("teacher_stopped") for r in json.loads((reference / "history.json").read_text())]
    assert stops == [None, None, 2, None]
    model_dir = tmp_path / "run"
    cmd = _cmd(data, model_dir, *extra)
    _kill_after_backup(cmd, tmp_path, model_dir, 600)  # in epoch 4 (188 steps an epoch)
    expected = _newest_state(model_dir)
    out = _run(cmd, tmp_path)
    _assert_resumed(out, *expected)
    assert "the booster stops training" not in out  # the same teacher, frozen again
    resumed, uninterrupted = _metrics(model_dir), _metrics(reference)
    _assert_same_metrics(resumed, uninterrupted)
    history = json.loads((model_dir / "history.json").read_text())
    reference_history = json.loads((reference / "history.json").read_text())
    assert [r.get("teacher_stopped") for r in history] == stops
    _assert_same_validation(history, reference_history)


@pytest.mark.integration
def test_a_run_killed_after_its_teacher_ensemble_stopped_resumes_from_the_same_snapshot(
    tmp_path, data
):
    """A gated ensemble of two boosters stops at its peak, as one teacher: killed after the
    switch, the resumed run teaches from the same frozen boosters and gate, and ends with
    every tower's metrics (each booster's too) as an uninterrupted run's."""
    config = tmp_path / "ensemble.yaml"
    config.write_text(
        "schema: criteo\n"
        "model:\n"
        "  embedding_dim: 4\n"
        "  boosters:\n"
        "    dcn: {name: dcn, hidden_units: [16], num_cross_layers: 1}\n"
        "    xdeepfm: {name: xdeepfm, hidden_units: [16], cin_layer_sizes: [4]}\n"
        "  booster_mixture: gated\n"
        "  light: {name: mlp, hidden_units: [4]}\n"
        "distill: {teacher_patience: 1}\n"
        "train:\n"
        "  batch_size: 32\n"
        "  checkpoint_every_steps: 10\n"
        "  num_epochs: 4\n"
        "  dense_optimizer: {name: adam, learning_rate: 0.01}\n"
    )

    def cmd(model_dir):
        return [
            sys.executable,
            "-m",
            "rocketctr.cli",
            "train",
            f"--config={config}",
            f"--train={data[0]}",
            f"--eval={data[1]}",
            f"--model_dir={model_dir}",
            "--noexport",
        ]

    reference = tmp_path / "reference"
    _run(cmd(reference), tmp_path)
    reference_history = json.loads((reference / "history.json").read_text())
    stops = [r.get("teacher_stopped") for r in reference_history]
    switched = next(i for i, stop in enumerate(stops, start=1) if stop)  # the epoch it froze
    assert switched < 4, stops
    model_dir = tmp_path / "run"
    _kill_after_backup(cmd(model_dir), tmp_path, model_dir, 188 * switched + 20)
    expected = _newest_state(model_dir)
    out = _run(cmd(model_dir), tmp_path)
    _assert_resumed(out, *expected)
    assert "the booster stops training" not in out  # the same teacher, frozen again
    resumed, uninterrupted = _metrics(model_dir), _metrics(reference)
    assert sorted(resumed) == ["booster", "booster_dcn", "booster_xdeepfm", "light"]
    _assert_same_metrics(resumed, uninterrupted, towers=resumed)
    history = json.loads((model_dir / "history.json").read_text())
    assert [r.get("teacher_stopped") for r in history] == stops
    _assert_same_validation(history, reference_history)
