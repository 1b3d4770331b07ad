"""End to end: the TFX pipeline (CsvExampleGen ... Trainer -> Evaluator -> Pusher) on Criteo.

Runs under the Python 3.10 virtualenv of `.ci/tfx` (tfx 1.16 pins TF 2.16); skipped where
tfx is not installed. Data: the Criteo sample from `<repo>/../shared/data` with a header row
added, or generated Criteo-shaped rows (rocketctr.data.synthetic) when that is absent.
"""

from __future__ import annotations

import functools
import importlib.util
import json
from pathlib import Path

import rocketctr  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)

# isort: split
import numpy as np
import pytest

pytest.importorskip("tfx", reason="tfx is not installed (the TFX tests run under .ci/tfx)")

import tensorflow as tf
import tensorflow_model_analysis as tfma
from tfx import v1 as tfx

from rocketctr import serving
from rocketctr.data import make_dataset
from rocketctr.data.synthetic import generate
from rocketctr.features.schema import load_schema
from rocketctr.model.cotrain import variable_role

REPO = Path(__file__).resolve().parents[2]
CRITEO_SAMPLE = REPO.parent / "shared" / "data" / "criteo" / "criteo_kaggle_train_head9999.txt"
SCHEMA = load_schema("criteo_tfx")
TRAIN_STEPS = 60
PARITY_ROWS = 8


@functools.cache
def _load_pipeline_module():
    spec = importlib.util.spec_from_file_location(
        "rocketctr_tfx_pipeline", REPO / "pipelines" / "tfx_pipeline.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _write_csv(directory: Path) -> Path:
    """The Criteo sample (or generated rows) as CSV with a header row, as CsvExampleGen needs."""
    directory.mkdir(parents=True)
    path = directory / "criteo.csv"
    header = ",".join(SCHEMA.columns)
    if CRITEO_SAMPLE.exists():
        lines = CRITEO_SAMPLE.read_text().splitlines()
        assert all("," not in line for line in lines)  # tabs -> commas must not split fields
        path.write_text(header + "\n" + "\n".join(line.replace("\t", ",") for line in lines) + "\n")
    else:
        frame = generate(6000, seed=0)
        frame.columns = list(SCHEMA.columns)
        frame.to_csv(path, index=False, na_rep="")
    return path


def _run(
    pipeline_module, root: Path, data_root: Path, min_auc: float, enable_transform: bool = False
) -> None:
    pipeline = pipeline_module.create_pipeline(
        pipeline_name="rocketctr_test",
        pipeline_root=str(root / "pipeline"),
        data_root=str(data_root),
        module_file=None,
        serving_model_dir=str(root / "serving"),
        metadata_path=str(root / "metadata.db"),
        # With Transform, the layout of the transformed features is derived from its schema.
        schema=None if enable_transform else "criteo_tfx",
        config="criteo",
        train_steps=TRAIN_STEPS,
        eval_steps=None,
        enable_transform=enable_transform,
        min_auc=min_auc,
        enable_cache=True,  # the second run re-evaluates the same trained model
    )
    tfx.orchestration.LocalDagRunner().run(pipeline)


def _tfma_auc(root: Path) -> float:
    evaluation = _outputs(root, "Evaluator", "evaluation")[0]
    return tfma.load_eval_result(str(evaluation)).get_metrics_for_slice()["auc"]["doubleValue"]


def _outputs(root: Path, component: str, key: str) -> list[Path]:
    """Artifact dirs of one output, oldest execution first."""
    base = root / "pipeline" / component / key
    return sorted(base.iterdir(), key=lambda p: int(p.name)) if base.exists() else []


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("tfx")
    data_root = root / "data"
    _write_csv(data_root)
    _run(_load_pipeline_module(), root, data_root, min_auc=0.5)
    return root


def test_trainer_model_is_light_only(run):
    (model_dir,) = _outputs(run, "Trainer", "model")
    serving_dir = model_dir / "Format-Serving"
    loaded = tf.saved_model.load(str(serving_dir))
    names = {v.name for v in loaded.variables} if hasattr(loaded, "variables") else set()
    descendants = tf.train.TrackableView(loaded).descendants()
    names |= {t.name for t in descendants if isinstance(t, tf.Variable)}
    assert names, "the SavedModel holds no variables"
    assert not [n for n in names if variable_role(n) == "booster"]
    assert {variable_role(n) for n in names} <= {"shared_embedding", "light_embedding", "light"}
    # It was co-trained: the run's checkpoint does hold booster weights; the export does not.
    (run_dir,) = _outputs(run, "Trainer", "model_run")
    checkpoint = tf.train.latest_checkpoint(str(run_dir / "checkpoints"))
    assert any("booster" in key for key, _ in tf.train.list_variables(checkpoint))
    assert set(loaded.signatures) == {"serving_default", "predict_examples"}
    info = serving.read_export_info(serving_dir)
    assert info["tower"] == "light"
    assert info["signatures"]["predict_examples"]["example_feature_dtypes"]["I1"] == "int64"
    assert info["verification"]["max_abs_diff"] <= serving.PARITY_ATOL


def test_evaluator_blessed_and_pusher_pushed(run):
    (blessing,) = _outputs(run, "Evaluator", "blessing")
    assert (blessing / "BLESSED").exists()
    (run_dir,) = _outputs(run, "Trainer", "model_run")
    light_auc = json.loads((run_dir / "metrics.json").read_text())["light"]["auc"]
    # 60 steps learn the Criteo sample's signal to > 0.6; the generated rows (used without
    # ../shared/data) are harder: 0.588 after the same steps.
    assert light_auc > (0.6 if CRITEO_SAMPLE.exists() else 0.55)
    # TFMA scored the pushed signature on the same eval split (AUC from 10k thresholds).
    assert _tfma_auc(run) == pytest.approx(light_auc, abs=0.005)
    pushed = list((run / "serving").iterdir())
    assert len(pushed) == 1 and (pushed[0] / "saved_model.pb").exists()
    (model_dir,) = _outputs(run, "Trainer", "model")
    assert (pushed[0] / "saved_model.pb").read_bytes() == (
        model_dir / "Format-Serving" / "saved_model.pb"
    ).read_bytes()


def test_pushed_model_scores_like_the_light_net_in_training(run, tmp_path):
    """Serialized eval tf.Examples through the pushed model vs the checkpointed light net."""
    (examples_dir,) = _outputs(run, "CsvExampleGen", "examples")
    (eval_file,) = (examples_dir / "Split-eval").glob("*.gz")
    records = [
        r.numpy()
        for r in tf.data.TFRecordDataset(str(eval_file), compression_type="GZIP").take(PARITY_ROWS)
    ]
    assert len(records) == PARITY_ROWS
    # The same records through rocketctr's reader and the restored training model.
    subset = tmp_path / "rows.tfrecord.gz"
    with tf.io.TFRecordWriter(str(subset), options="GZIP") as writer:
        for record in records:
            writer.write(record)
    (run_dir,) = _outputs(run, "Trainer", "model_run")
    model, _ = serving.restore_model(run_dir)
    features, _ = next(iter(make_dataset(model.schema, str(subset), PARITY_ROWS)))
    expected = tf.sigmoid(model.light_logits(features)).numpy()

    (pushed,) = list((run / "serving").iterdir())
    served = tf.saved_model.load(str(pushed)).signatures["predict_examples"]
    scores = served(examples=tf.constant(records))["probabilities"].numpy()
    assert scores.shape == (PARITY_ROWS,)
    np.testing.assert_allclose(scores, expected, atol=1e-5, rtol=0)
    assert np.ptp(scores) > 1e-3  # the rows are not all scored alike


def test_worse_than_threshold_is_not_blessed_or_pushed(run):
    """Re-run with an AUC bar the model cannot reach: the cached Trainer's model is judged
    again, not blessed, and nothing new is pushed."""
    _run(_load_pipeline_module(), run, run / "data", min_auc=0.999)
    assert len(_outputs(run, "Trainer", "model")) == 1  # cached, not retrained
    blessings = _outputs(run, "Evaluator", "blessing")
    assert len(blessings) == 2 and (blessings[-1] / "NOT_BLESSED").exists()
    assert len(list((run / "serving").iterdir())) == 1


@pytest.mark.slow
def test_pipeline_with_transform(tmp_path):
    """Transform -> Trainer on transformed examples; the pushed model takes raw examples."""
    _write_csv(tmp_path / "data")
    _run(_load_pipeline_module(), tmp_path, tmp_path / "data", 0.5, enable_transform=True)
    (blessing,) = _outputs(tmp_path, "Evaluator", "blessing")
    assert (blessing / "BLESSED").exists()
    (run_dir,) = _outputs(tmp_path, "Trainer", "model_run")
    light_auc = json.loads((run_dir / "metrics.json").read_text())["light"]["auc"]
    # Trainer: exact AUC on transformed eval examples; TFMA: raw eval examples through the
    # pushed model's Transform graph. They agree only if serving transforms like training.
    assert _tfma_auc(tmp_path) == pytest.approx(light_auc, abs=0.005)
    (pushed,) = list((tmp_path / "serving").iterdir())
    loaded = tf.saved_model.load(str(pushed))
    assert set(loaded.signatures) == {"serving_default", "predict_examples"}
    names = {
        t.name for t in tf.train.TrackableView(loaded).descendants() if isinstance(t, tf.Variable)
    }
    assert names and not [n for n in names if variable_role(n) == "booster"]
