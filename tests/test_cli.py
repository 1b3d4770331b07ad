"""End to end: the `rocketctr` console entry point on tiny data, then resume."""

import json
import os
import re
import subprocess
import sys

import pytest

from tests.helpers import SHARED_DATA, TINY_FLAGS, tiny_config

TINY = [*TINY_FLAGS, "--set=train.batch_size=256"]


def _run(*args, check=True):
    proc = subprocess.run(
        [sys.executable, "-m", "rocketctr.cli", "train", *args],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if check:
        assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def _table(stdout):
    rows = {}
    for line in stdout.splitlines():
        match = re.match(r"^(booster|light)\s+([0-9.]+)\s+([0-9.]+)", line)
        if match:
            rows[match.group(1)] = (float(match.group(2)), float(match.group(3)))
    return rows


@pytest.mark.integration
def test_train_on_synthetic_data_then_resume(tmp_path):
    model_dir = tmp_path / "run"
    base = [
        f"--model_dir={model_dir}",
        "--synthetic_train_rows=20000",
        "--synthetic_eval_rows=1000",
        *TINY,
    ]
    args = [*base, "--set=train.num_epochs=2"]
    first = _run(*args)
    table = _table(first.stdout)
    assert set(table) == {"booster", "light"}, first.stdout
    for auc, logloss in table.values():
        assert 0.5 < auc < 1.0 and 0.0 < logloss < 1.0
    saved = json.loads((model_dir / "metrics.json").read_text())
    assert saved["light"]["auc"] == pytest.approx(table["light"][0], abs=1e-4)
    assert (model_dir / "config.yaml").exists()
    assert list((model_dir / "logs").rglob("events.out.tfevents*"))
    assert (model_dir / "export" / "1" / "saved_model.pb").exists()
    history = json.loads((model_dir / "history.json").read_text())
    assert [r["epoch"] for r in history] == [1, 2]
    assert all(0.5 < r[f"val_{t}_auc"] < 1.0 for r in history for t in ("booster", "light"))
    assert all(0 < r["seconds"] < 600 for r in history)
    assert re.search(r"\(val_booster_auc: best 0\.\d{4} at epoch [12]\)", first.stdout)

    # Same command again: resumes, trains nothing, reports the same model, and leaves the
    # run's metrics.json as it was (a rerun may score other eval data).
    metrics_written = (model_dir / "metrics.json").stat().st_mtime_ns
    second = _run(*args)
    assert (model_dir / "metrics.json").stat().st_mtime_ns == metrics_written
    assert "Resuming from" in second.stdout and "already trained" in second.stdout
    assert _table(second.stdout) == table
    assert "Nothing new to export" in second.stdout
    assert sorted(p.name for p in (model_dir / "export").iterdir()) == ["1"]

    # More epochs on the same dir: continues from epoch 2 rather than starting over. (The
    # bad-row policy may change between runs; "skip" exports too.)
    third = _run(*base, "--set=train.num_epochs=3", "--bad_rows=skip")
    assert "after 2 epoch(s)" in third.stdout
    assert "Epoch 3/3" in third.stdout and "Epoch 1/3" not in third.stdout
    assert (model_dir / "export" / "2" / "saved_model.pb").exists()
    resumed = json.loads((model_dir / "history.json").read_text())
    assert resumed[:2] == history and [r["epoch"] for r in resumed] == [1, 2, 3]

    # A different model config on the same dir is refused, naming the key.
    refused = _run(*args, "--set=distill.methods.kd.temperature=2", check=False)
    assert refused.returncode == 2
    assert "distill.methods.kd.temperature: 1.0 -> 2.0" in refused.stderr


@pytest.mark.integration
def test_unknown_override_is_refused_with_its_name(tmp_path):
    proc = _run(f"--model_dir={tmp_path}", "--set=train.batchsize=8", check=False)
    assert proc.returncode == 2
    assert "Unknown config key 'train.batchsize'" in proc.stderr


@pytest.mark.integration
def test_a_vocabulary_no_value_reaches_is_one_line_and_the_rerun_is_not_stuck(tmp_path):
    rows = [("1", "paris", "3"), ("0", "rome", "1"), ("1", "paris", "4"), ("0", "oslo", "2")]
    data = tmp_path / "rows.tsv"
    data.write_text("".join("\t".join(r) + "\n" for r in rows * 4))  # paris 8, rome 4, oslo 4
    schema = tmp_path / "cities.yaml"
    spec = (
        "name: cities\nformat: tsv\ncolumns: [y, city, n]\nlabel: y\n"
        "dense: [{name: n}]\ncategorical: [{name: city, vocabulary: {min_count: %d}}]\n"
    )
    schema.write_text(spec % 9)
    run = tmp_path / "run"
    args = [
        f"--train={data}",
        f"--eval={data}",
        f"--model_dir={run}",
        f"--set=schema={schema}",
        "--set=train.batch_size=8",
        "--noexport",
        *TINY_FLAGS,
    ]
    for _ in range(2):  # the same command fails the same way: nothing of the pass was kept
        proc = _run(*args, check=False)
        assert proc.returncode == 2, proc.stderr[-3000:]
        assert proc.stderr.splitlines()[-1] == (
            "rocketctr: error: Feature 'city' (column 'city'): no value reaches its vocabulary "
            "min_count of 9 in the training files (the most frequent, 'paris', is seen 8 times), "
            "so its vocabulary would be empty. Nothing of the statistics pass was stored: lower "
            "min_count, or hash the field."
        )
        assert "Traceback" not in proc.stderr
        assert not (run / "feature_stats.json").exists() and not (run / "vocabularies").exists()
    schema.write_text(spec % 8)  # lowered: paris is kept
    _run(*args)
    assert (run / "vocabularies" / "city.txt").read_text() == "paris\n"


@pytest.mark.integration
@pytest.mark.skipif(not SHARED_DATA.exists(), reason="needs ../shared/data (real CTR samples)")
def test_train_on_criteo_sample(tmp_path):
    lines = (
        (SHARED_DATA / "criteo" / "criteo_kaggle_train_head9999.txt").read_text().splitlines(True)
    )
    inf = lines[1].split("\t")
    inf[1] = "inf"
    bad = ["2" + lines[0][1:], "\t".join(inf)]  # a label 2; an inf in I1
    # Saved as on Windows: a UTF-8 byte-order mark and CRLF line ends, both accepted.
    train_text = "\ufeff" + "".join(lines[:4000] + bad + lines[4000:8000]).replace("\n", "\r\n")
    (tmp_path / "train.tsv").write_bytes(train_text.encode())
    (tmp_path / "eval.tsv").write_text("".join(lines[8000:]))
    proc = _run(
        "--config=criteo",
        f"--train={tmp_path / 'train.tsv'}",
        "--bad_rows=skip",
        f"--eval={tmp_path / 'eval.tsv'}",
        f"--model_dir={tmp_path / 'run'}",
    )
    table = _table(proc.stdout)
    assert set(table) == {"booster", "light"}
    # The preset trains to convergence: early stopping ended it (patience 2).
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    epochs = len(history)
    assert 3 <= epochs < 30 and history[-1]["stop"] == "early_stopping"
    assert history[-1]["lr_scale"] < 1.0  # decayed on the plateau before stopping
    skipped = (
        f"train.tsv: skipped {2 * epochs} of {8002 * epochs:,} rows read in {epochs} passes "
        "(malformed), first at line 4001"
    )
    assert skipped in proc.stdout  # 2 bad rows in each epoch
    assert (tmp_path / "run" / "export" / "1" / "saved_model.pb").exists()
    # 1,999 eval rows, 21.8 % positives; the preset reached booster .72 / light .70 here.
    assert table["booster"][0] > 0.66 and table["light"][0] > 0.64


@pytest.mark.integration
def test_two_tower_pfd_end_to_end_with_precomputed_item_vectors(tmp_path):
    import numpy as np
    import pandas as pd
    import tensorflow as tf

    from rocketctr.data import synthetic

    model_dir = tmp_path / "run"
    _run(
        "--config=pfd_md",
        f"--model_dir={model_dir}",
        "--synthetic_train_rows=4000",
        "--synthetic_eval_rows=1000",
    )
    version = model_dir / "export" / "1"
    signatures = tf.saved_model.load(str(version)).signatures
    assert {"user_embedding", "item_embedding", "score"} <= set(signatures)
    for signature in signatures.values():  # the privileged feature is never a serving input
        assert "dwell_time" not in signature.structured_input_signature[1]

    catalogue = synthetic.pfd_item_catalogue().head(50)
    catalogue.to_csv(tmp_path / "items.csv", index=False)
    out = tmp_path / "items.parquet"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "rocketctr.cli",
            "item_vectors",
            f"--export_dir={version}",
            f"--catalogue={tmp_path / 'items.csv'}",
            f"--output={out}",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Wrote 50 item vectors" in proc.stdout
    vectors = pd.read_parquet(out)
    item_inputs = signatures["item_embedding"].structured_input_signature[1]
    raw = {
        c: tf.constant(catalogue[c].astype(str if spec.dtype == tf.string else np.float32))
        for c, spec in item_inputs.items()
    }
    direct = next(iter(signatures["item_embedding"](**raw).values())).numpy()
    np.testing.assert_allclose(np.stack(vectors["vector"].to_numpy()), direct, atol=1e-6)


@pytest.mark.integration
def test_a_second_run_on_a_busy_model_dir_is_refused_naming_the_first(tmp_path):
    import signal
    import time

    from rocketctr.runs import rundir

    model_dir = tmp_path / "run"
    first = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "rocketctr.cli",
            "train",
            f"--model_dir={model_dir}",
            "--synthetic_train_rows=20000",
            "--synthetic_eval_rows=1000",
            "--set=train.num_epochs=100",
            *TINY,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        lock = model_dir / rundir.LOCK_FILE
        deadline = time.monotonic() + 120
        while not (lock.exists() and lock.read_text()) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert f"process {first.pid} on " in lock.read_text()

        second = _run(f"--model_dir={model_dir}", *TINY, check=False)
        assert second.returncode == 2, second.stderr[-2000:]
        message = second.stderr.strip().splitlines()[-1]
        assert message.startswith(f"rocketctr: error: {model_dir} is in use by process {first.pid}")
        assert f"train --model_dir={model_dir}" in message and "use another --model_dir" in message
        assert first.poll() is None  # the first run goes on
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    with rundir.hold(model_dir):  # a killed holder leaves no stale lock
        assert f"process {os.getpid()} on " in lock.read_text()
    assert lock.read_text() == ""


@pytest.mark.integration
def test_a_file_that_does_not_match_the_schema_fails_before_training_in_one_line(tmp_path):
    csv = tmp_path / "train.csv"
    csv.write_text("label,I1,C1\n1,3,ab\n")  # comma-separated, a header: not Criteo TSV
    model_dir = tmp_path / "run"
    args = [
        "train",
        "--config=criteo",
        f"--train={csv}",
        f"--eval={csv}",
        f"--model_dir={model_dir}",
    ]
    # Diagnosed before TensorFlow is imported: here it cannot be.
    no_tensorflow = (
        "import sys; sys.modules['tensorflow'] = None; sys.argv = ['rocketctr', *sys.argv[1:]];"
        "from rocketctr import cli; cli.run()"
    )
    proc = subprocess.run(
        [sys.executable, "-c", no_tensorflow, *args], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines()[-1] == (
        f"rocketctr: error: {csv}:1: the file looks comma-separated with a header row (3 "
        "columns); split on the schema's delimiter it has 1, but schema 'criteo' "
        "(data_schemas/criteo.yaml) expects tab-separated without a header row (40 columns) "
        "(set the schema's format, delimiter and header to match the file, or use a schema "
        "that does)"
    )
    assert "Traceback" not in proc.stderr
    assert not (model_dir / "config.yaml").exists()  # nothing claims the dir

    # A row the layout check lets through still fails before training, in one line.
    csv.write_text("1\t3\n")  # tab-separated, numeric label, 2 columns of 40
    proc = _run(*args[1:], check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == (
        f"rocketctr: error: {csv}:1: expected 40 columns, received 2 (to drop and count such "
        "rows instead, use bad_rows=skip)"
    )
    assert "Graph execution" not in proc.stderr and "Traceback" not in proc.stderr
    assert "rendezvous" not in proc.stderr  # TF's input-pipeline warning around it
    assert "Epoch 1/" not in proc.stdout
    assert not (model_dir / "config.yaml").exists()

    # Every row malformed, under bad_rows=skip: nothing to train on, said in one line.
    csv.write_text("1\t3\n" * 5)
    proc = _run(*args[1:], "--bad_rows=skip", check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == (
        f"rocketctr: error: No training rows: {csv}: skipped 5 of 5 rows (malformed), first at "
        "line 1"
    )
    assert "Traceback" not in proc.stderr and not (model_dir / "config.yaml").exists()


def test_inputs_without_a_usable_row_are_refused_naming_the_files(tmp_path, data):
    from rocketctr.data import BadRowError
    from rocketctr.features.schema import load_schema
    from rocketctr.training.inputs import check_inputs

    schema = load_schema("criteo")
    empty = tmp_path / "empty.tsv"
    empty.write_text("")
    newlines = tmp_path / "newlines.tsv"
    newlines.write_text("\n\n")
    with pytest.raises(BadRowError, match=rf"^No training rows: {empty} holds no data row\.$"):
        check_inputs(schema, [str(empty)], "training", "skip")
    with pytest.raises(BadRowError) as refused:
        check_inputs(schema, [str(empty), str(newlines)], "evaluation", "skip")
    assert str(refused.value) == (
        f"No evaluation rows: {newlines}: skipped 2 of 2 rows (malformed), first at line 1"
    )
    check_inputs(schema, [str(empty), str(data[0])], "training", "error")  # one usable row: fine


@pytest.mark.integration
def test_export_command_checks_on_the_runs_eval_rows_and_writes_warmup(tmp_path, data):
    import numpy as np
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    from rocketctr.training import train

    train_file, eval_file = data
    config = tiny_config(train={"batch_size": 64, "steps_per_epoch": 3})
    model_dir = tmp_path / "run"
    train.train(config, [str(train_file)], [str(eval_file)], model_dir, verbose=0)

    def export(*args):
        # Three steps leave the light net at chance: --force, as the export gate refuses it
        # (tests/serving/test_gate.py); this test is about the rows the export checks on.
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "rocketctr.cli",
                "export",
                f"--model_dir={model_dir}",
                f"--export_dir={tmp_path / 'serving'}",
                "--force",
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        return proc

    proc = export()
    version = tmp_path / "serving" / "1"
    info = json.loads((version / "assets.extra" / "rocketctr.json").read_text())
    assert info["verification"]["parity_rows"] == 1000  # the run's eval rows, not 256 synthetic
    assert f"Exported the light net to {version}: " in proc.stdout
    assert "synthetic" not in proc.stdout
    assert info["metadata"]["parity_rows_from"] == [str(eval_file)]
    assert info["verification"]["quality"]["rows"] == 1000
    warmup = version / "assets.extra" / "tf_serving_warmup_requests"
    records = [r.numpy() for r in tf.data.TFRecordDataset(str(warmup))]
    first = prediction_log_pb2.PredictionLog.FromString(records[0]).predict_log.request
    eval_first_row = eval_file.read_text().splitlines()[0].split("\t")
    assert tf.make_ndarray(first.inputs["C2"])[0].decode() == eval_first_row[1 + 13 + 1]
    np.testing.assert_allclose(
        tf.make_ndarray(first.inputs["I1"])[0], float(eval_first_row[1] or "nan"), equal_nan=True
    )

    proc = export("--set=export.embedding_dtype=int8")
    info = json.loads((tmp_path / "serving" / "2" / "assets.extra" / "rocketctr.json").read_text())
    assert info["embedding_table"]["dtype"] == "int8" and "int8 table" in proc.stdout
    assert abs(info["verification"]["quality"]["auc_change"]) <= 1e-3


@pytest.mark.integration
def test_a_clean_start_prints_no_tensorflow_noise_and_verbose_shows_it(tmp_path):
    from rocketctr.cli import TF_NOISE

    def summary(*flags, env=None):
        proc = subprocess.run(
            [sys.executable, "-m", "rocketctr.cli", "summary", "--tower=light", *flags],
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ, **(env or {})},
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        return [line for line in proc.stderr.splitlines() if TF_NOISE.match(line)]

    assert summary() == []
    shown = summary("--verbose")
    assert any("oneDNN" in line or "absl::InitializeLog" in line for line in shown), shown
    assert summary(env={"ROCKETCTR_TF_LOGS": "1"})  # the variable shows them too


@pytest.mark.integration
def test_the_noise_filter_lets_errors_through_even_when_the_process_aborts():
    """What a crashing process writes last (a C++ check failure, then abort) still shows;
    only the start-up noise goes."""
    script = (
        "import os\n"
        "from rocketctr.cli import filter_tf_noise\n"
        "filter_tf_noise()\n"
        "os.write(2, b'I0000 00:00:1796645083.646795    3293 port.cc:153] oneDNN custom "
        "operations are on.\\n')\n"
        "os.write(2, b'F0000 00:00:1796645083.646795    3293 op.cc:12] Check failed: boom\\n')\n"
        "os.abort()\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode != 0
    assert "Check failed: boom" in proc.stderr
    assert "oneDNN" not in proc.stderr


@pytest.mark.integration
@pytest.mark.parametrize(
    "argv,expected",
    [
        (
            ["train", "--model_dir={tmp}/a_file"],
            "--model_dir {tmp}/a_file is a file, not a directory.",
        ),
        (
            ["evaluate", "--model_dir={tmp}/none", "--data={tmp}/a_file"],
            "{tmp}/none is not a training run: {tmp}/none/config.yaml does not exist.",
        ),
        (
            ["predict", "--export_dir={tmp}/none", "--data={tmp}/a_file", "--output={tmp}/o.csv"],
            "{tmp}/none holds no SavedModel and no numbered export version.",
        ),
        (
            ["report", "--model_dir={tmp}/none", "--output={tmp}/r.html"],
            "{tmp}/none is not a training run: {tmp}/none/config.yaml does not exist.",
        ),
        (
            ["export", "--model_dir={tmp}/none"],
            "{tmp}/none is not a training run: {tmp}/none/config.yaml does not exist.",
        ),
        (
            ["frontier", "--model_dir={tmp}/none"],
            "{tmp}/none is not a training run: {tmp}/none/config.yaml does not exist.",
        ),
        (
            [
                "item_vectors",
                "--export_dir={tmp}/none",
                "--catalogue={tmp}/a_file",
                "--output={tmp}/i.parquet",
            ],
            "{tmp}/none is neither an exported version nor an export base.",
        ),
        (["summary", "--config={tmp}"], "{tmp} is a directory, not a YAML file"),
    ],
)
def test_every_command_answers_a_bad_path_in_one_line(tmp_path, argv, expected):
    (tmp_path / "a_file").write_text("x")
    argv = [a.format(tmp=tmp_path) for a in argv]
    proc = subprocess.run(
        [sys.executable, "-m", "rocketctr.cli", *argv], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert proc.stderr.strip().splitlines() == [
        "rocketctr: error: " + expected.format(tmp=tmp_path)
    ]
