"""The export gate: what it refuses, on hand-made scores and through the real commands."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import rocketctr  # noqa: F401  (selects Keras 2 before TensorFlow loads)

# isort: split
import numpy as np
import pytest

from rocketctr import serving
from rocketctr.config.core import Config
from rocketctr.serving.gate import AUC_FLOOR, GateRefused, check_gate
from tests.helpers import SHARED_DATA

CRITEO_HEAD = SHARED_DATA / "criteo" / "criteo_kaggle_train_head9999.txt"
LABELS = np.array([0, 0, 0, 1, 0, 1, 1, 1], dtype=np.float32)
# Ranks 3 of the 4 positives above 3 of the 4 negatives: AUC 14/16.
GOOD = np.array([0.1, 0.2, 0.6, 0.3, 0.4, 0.7, 0.8, 0.9])


def _config(**export) -> Config:
    return Config.from_dict({"export": export})


def test_a_net_that_ranks_passes_and_its_verdict_holds_the_figures():
    verdict = check_gate(_config(), GOOD, LABELS, {}, None)
    assert verdict["verdict"] == "passed" and verdict["failures"] == []
    assert verdict["auc"] == pytest.approx(14 / 16)
    assert verdict["rows"] == 8 and verdict["baseline"] is None
    assert verdict["probability_spread"] == pytest.approx(0.8)
    assert verdict["thresholds"] == {
        "auc_floor": AUC_FLOOR,
        "min_auc": None,
        "max_auc_drop": 0.01,
        "constant_spread": 1e-6,
    }


def test_non_finite_scores_are_refused_naming_the_divergence():
    probs = GOOD.copy()
    probs[2] = np.nan
    with pytest.raises(
        GateRefused,
        match=r"1 of its probabilities on the 8 eval rows are not "
        r"finite: its weights diverged \(lower the learning rate, "
        r"train.dense_optimizer: adam 0.001\)",
    ):
        check_gate(_config(), probs, LABELS, {}, None)


def test_constant_scores_are_refused_as_a_dead_net():
    config = Config.from_dict(
        {"train": {"light_optimizer": {"name": "adam", "learning_rate": 0.1}}}
    )
    with pytest.raises(GateRefused) as refused:
        check_gate(config, np.full(8, 0.2266), LABELS, {}, None)
    message = str(refused.value)
    assert "it predicts the same probability (0.2266) for all 8 eval rows: a dead net" in message
    assert "train.light_optimizer: adam 0.1" in message and "--force" in message
    assert "\n" not in message


def test_a_net_at_chance_is_refused():
    chance = np.array([0.5, 0.4, 0.3, 0.5, 0.2, 0.3, 0.4, 0.2])  # AUC 0.5 exactly, not constant
    with pytest.raises(
        GateRefused,
        match=r"its AUC 0.5000 on the 8 eval rows is no better than "
        r"chance \(<= 0.51\)",
    ):
        check_gate(_config(), chance, LABELS, {}, None)


def test_min_auc_refuses_below_the_floor_and_names_it():
    with pytest.raises(GateRefused, match=r"its AUC 0.8750 is below export.min_auc 0.9"):
        check_gate(_config(min_auc=0.9), GOOD, LABELS, {}, None)
    assert check_gate(_config(min_auc=0.875), GOOD, LABELS, {}, None)["verdict"] == "passed"


def test_one_class_rows_cannot_pass_the_auc_checks():
    with pytest.raises(GateRefused, match="hold one class only"):
        check_gate(_config(), GOOD, np.zeros(8, np.float32), {}, None)


def test_without_labels_only_the_score_checks_run():
    verdict = check_gate(_config(), GOOD, None, {}, None)
    assert verdict["verdict"] == "passed" and verdict["auc"] is None
    assert "no labelled eval rows" in verdict["not_checked"]
    with pytest.raises(GateRefused, match="constant|same probability"):
        check_gate(_config(), np.full(8, 0.3), None, {}, None)
    with pytest.raises(GateRefused, match="export.min_auc 0.7 needs labelled eval rows"):
        check_gate(_config(min_auc=0.7), GOOD, None, {}, None)


def test_force_publishes_and_the_verdict_says_forced():
    verdict = check_gate(_config(), np.full(8, 0.3), LABELS, {}, None, force=True)
    assert verdict["verdict"] == "forced"
    assert len(verdict["failures"]) == 1 and "dead net" in verdict["failures"][0]


def test_a_baseline_version_on_other_inputs_is_a_failure_force_can_override(tmp_path):
    import tensorflow as tf

    class Other(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="zzz")])
        def serve(self, zzz):
            return {"probabilities": tf.zeros_like(zzz, tf.float32)}

    module = Other()
    tf.saved_model.save(module, str(tmp_path / "1"), signatures={"serving_default": module.serve})
    rows = {"C1": np.array([b"a"] * 8, dtype=object)}
    with pytest.raises(GateRefused, match=r"it cannot be compared with .*/1, which takes inputs "
                       r"\['zzz'\] its eval rows do not have"):  # fmt: skip
        check_gate(_config(), GOOD, LABELS, rows, tmp_path / "1")
    verdict = check_gate(_config(), GOOD, LABELS, rows, tmp_path / "1", force=True)
    assert verdict["verdict"] == "forced" and verdict["baseline"]["auc"] is None
    assert (
        check_gate(_config(max_auc_drop=None), GOOD, LABELS, rows, tmp_path / "1")["verdict"]
        == "passed"
    )


def test_thresholds_are_checked_when_the_config_loads():
    from rocketctr.config.core import ConfigError

    with pytest.raises(ConfigError, match=r"export.max_auc_drop must be null or in \[0, 1\]"):
        _config(max_auc_drop=-0.1)
    with pytest.raises(ConfigError, match=r"export.min_auc must be null or in \[0, 1\]"):
        _config(min_auc=1.5)
    assert _config(max_auc_drop=None).export.max_auc_drop is None


# ----------------------------------------------------------- through the real commands
def _rocketctr(*args):
    return subprocess.run(
        [sys.executable, "-m", "rocketctr.cli", *args],
        capture_output=True,
        text=True,
        timeout=900,
    )


TINY = [
    "--config=criteo",
    "--set=model.embedding_dim=4",
    "--set=model.booster.hidden_units=[16]",
    "--set=model.booster.num_cross_layers=1",
    "--set=train.batch_size=256",
    "--set=train.early_stopping_patience=0",
]


@pytest.fixture(scope="module")
def criteo(tmp_path_factory):
    if not CRITEO_HEAD.exists():
        pytest.skip("needs ../shared/data (real CTR samples)")
    directory = tmp_path_factory.mktemp("criteo")
    lines = CRITEO_HEAD.read_text().splitlines(True)
    (directory / "train.tsv").write_text("".join(lines[:8000]))
    (directory / "eval.tsv").write_text("".join(lines[8000:]))
    return directory


def test_change_threshold_refuses_a_worse_run_then_force_publishes_it(criteo):
    data = [f"--train={criteo / 'train.tsv'}", f"--eval={criteo / 'eval.tsv'}"]
    base = criteo / "export"
    good = _rocketctr(
        "train",
        *data,
        *TINY,
        "--set=train.num_epochs=3",
        f"--model_dir={criteo / 'good'}",
        f"--export_dir={base}",
    )
    assert good.returncode == 0, good.stderr[-2000:]
    first = serving.read_export_info(base / "1")["gate"]
    assert first["verdict"] == "passed" and first["baseline"] is None and first["auc"] > 0.6

    # The same schema, one training step: a light net far worse than version 1.
    worse = _rocketctr(
        "train",
        *data,
        *TINY,
        "--set=train.steps_per_epoch=1",
        f"--model_dir={criteo / 'worse'}",
        f"--export_dir={base}",
    )
    assert worse.returncode == 2, worse.stderr[-2000:]
    line = worse.stderr.strip().splitlines()[-1]
    found = re.search(
        r"^rocketctr: error: Export refused, nothing published: its AUC (0\.\d{4}) is "
        r"(0\.\d{4}) below version 1's (0\.\d{4}) on the same 1,000 eval rows "
        r"\(export.max_auc_drop 0.01\)\. --force",
        line,
    )
    assert found, line
    assert float(found[3]) == pytest.approx(first["auc"], abs=1e-4)
    assert float(found[2]) > 0.01
    assert sorted(p.name for p in base.iterdir()) == ["1"]

    # The run is kept: `rocketctr export --force` publishes it, and says so.
    forced = _rocketctr(
        "export", f"--model_dir={criteo / 'worse'}", f"--export_dir={base}", "--force"
    )
    assert forced.returncode == 0, forced.stderr[-2000:]
    assert "although the export gate refused it (--force)" in forced.stdout
    gate = serving.read_export_info(base / "2")["gate"]
    assert gate["verdict"] == "forced" and gate["baseline"]["version"] == 1
    assert gate["baseline"]["auc"] == pytest.approx(first["auc"], abs=1e-9)
    assert gate["auc"] == pytest.approx(float(found[1]), abs=1e-4)
    assert "below version 1's" in gate["failures"][0]

    # A floor set by the user refuses the good run too, naming it; nothing is written.
    floor = _rocketctr(
        "export",
        f"--model_dir={criteo / 'good'}",
        f"--export_dir={criteo / 'floored'}",
        "--set=export.min_auc=0.99",
    )
    assert floor.returncode == 2
    assert "is below export.min_auc 0.99" in floor.stderr
    assert not (criteo / "floored").exists()


def test_divergence_stops_the_run_and_keeps_the_last_good_state(criteo, monkeypatch):
    """A weight goes NaN at global step 40 (epoch 2 of 32-step epochs, a backup due at every
    step): the run stops there, every saved state reads back finite, export gates the last
    good checkpoint, and the same command resumes from the last good backup and finishes."""
    import tensorflow as tf

    from rocketctr.config.core import load_config
    from rocketctr.training import train as train_module
    from rocketctr.training.health import DivergenceGuard, TrainingDiverged

    class Poisoned(DivergenceGuard):
        def on_train_batch_end(self, batch, logs=None):
            super().on_train_batch_end(batch, logs)
            if int(self.model.global_step.numpy()) == 40:
                kernel = self.model.light.out.kernel
                kernel.assign(tf.fill(kernel.shape, float("nan")))

    config = load_config("criteo").replace({
        "model.embedding_dim": 4, "model.booster.hidden_units": [16],
        "model.booster.num_cross_layers": 1, "train.batch_size": 256, "train.num_epochs": 2,
        "train.checkpoint_every_steps": 1,
    })  # fmt: skip
    data = [str(criteo / "train.tsv")], [str(criteo / "eval.tsv")]
    run = criteo / "diverged"
    monkeypatch.setattr(train_module, "DivergenceGuard", Poisoned)
    with pytest.raises(TrainingDiverged) as stopped:
        train_module.train(config, *data, run, verbose=0)
    message = str(stopped.value)
    assert re.match(
        r"Training diverged at global step 40: rocketctr/light/dense_\d+/kernel:0 hold "
        r"non-finite values, so the backup at global step 40 was not written\. ",
        message,
    ), message
    assert "\n" not in message
    assert message.endswith(
        f"Its last good state, {run}/backup/ckpt-39 (global step 39), was kept: lower the "
        "rate and train into a new --model_dir, or rerun the same command to resume from it."
    ), message
    history = json.loads((run / "history.json").read_text())
    assert [r["epoch"] for r in history] == [1]  # the diverged epoch left no record
    saved = [p for d in ("checkpoints", "backup", "best") for p in (run / d).glob("*.index")]
    assert {p.parent.name for p in saved} == {"checkpoints", "backup", "best"}
    for index in saved:
        reader = tf.train.load_checkpoint(str(index)[: -len(".index")])
        for name, dtype in reader.get_variable_to_dtype_map().items():
            if dtype.is_floating:
                assert np.all(np.isfinite(reader.get_tensor(name))), (index, name)

    # The run dir stays usable: its export runs the gate on the last good checkpoint ...
    exported = _rocketctr("export", f"--model_dir={run}")
    assert exported.returncode == 0, exported.stderr[-2000:]
    gate = serving.read_export_info(run / "export" / "1")["gate"]
    assert gate["verdict"] == "passed" and gate["auc"] > AUC_FLOOR
    # ... and the same command, without the fault, resumes from the last good backup.
    monkeypatch.setattr(train_module, "DivergenceGuard", DivergenceGuard)
    result = train_module.train(config, *data, run, verbose=0)
    assert result.initial_epoch == 1
    assert [r["epoch"] for r in json.loads((run / "history.json").read_text())] == [1, 2]


def test_a_fresh_run_that_diverges_writes_nothing(criteo):
    run = criteo / "fresh"
    proc = _rocketctr(
        "train",
        f"--train={criteo / 'train.tsv'}",
        f"--eval={criteo / 'eval.tsv'}",
        *TINY,
        f"--model_dir={run}",
        "--set=train.dense_optimizer={name: adam, learning_rate: 1e10}",
    )
    assert proc.returncode == 3
    assert proc.stderr.strip().endswith(
        "holds no trained state yet: lower the rate and train again."
    )
    assert not list(run.glob("checkpoints/*.index")) and not (run / "export").exists()
    assert "I0000" not in proc.stderr and "E0000" not in proc.stderr  # no TF start-up noise
