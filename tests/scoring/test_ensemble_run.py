"""A run with a teacher ensemble, as users read it: evaluate, report and summary show each
booster and the mixture that taught."""

import subprocess
import sys

import pytest

from rocketctr.scoring.evaluation import evaluate_run
from rocketctr.scoring.report import write_report
from rocketctr.training import train
from tests.helpers import subprocess_env

BOOSTERS = {
    "dcn": {"name": "dcn", "hidden_units": [8], "num_cross_layers": 1},
    "xdeepfm": {"name": "xdeepfm", "hidden_units": [8], "cin_layer_sizes": [4]},
}
TOWERS = ["booster", "booster_dcn", "booster_xdeepfm", "light"]


@pytest.fixture(scope="module")
def ensemble_run(tiny):
    model_dir = tiny["run"].parent / "ensemble"
    config = tiny["config"].replace(
        {
            "model.booster": {"name": "dcn", "hidden_units": [256, 128, 64]},  # the default
            "model.boosters": BOOSTERS,
            "model.booster_mixture": "gated",
        }
    )
    result = train.train(config, [tiny["train"]], [tiny["eval"]], model_dir, verbose=0)
    return model_dir, result


def test_training_records_and_scores_each_booster_and_their_mixture(ensemble_run, tiny):
    model_dir, result = ensemble_run
    assert sorted(result.metrics) == TOWERS
    for key in ("val_booster_auc", "val_booster_dcn_auc", "val_booster_xdeepfm_bce"):
        assert all(key in record for record in result.history)
    evaluation = evaluate_run(model_dir, [tiny["train"]])
    assert sorted(evaluation["towers"]) == TOWERS
    aucs = {t: evaluation["towers"][t]["auc"] for t in TOWERS}
    assert len(set(aucs.values())) > 1  # four towers, scored each on its own


def test_the_report_shows_each_booster_and_says_what_taught(ensemble_run, tiny, tmp_path):
    model_dir, _ = ensemble_run
    output = tmp_path / "report.html"
    summary = write_report(model_dir, output, test=[tiny["train"]])
    text = output.read_text()
    assert "boosters dcn (dcn), xdeepfm (xdeepfm) (their gated mixture teaches, as booster)" in text
    for tower in TOWERS:
        assert f"<td>{tower}</td>" in text and f"{tower} AUC" in summary


def test_summary_shows_each_booster_of_an_ensemble(tmp_path):
    flags = [
        "--set=model.embedding_dim=4",
        "--set=model.boosters={a: {name: dcn, hidden_units: [8]}, b: {name: xdeepfm}}",
        "--set=model.booster_mixture=gated",
    ]
    proc = subprocess.run(
        [sys.executable, "-m", "rocketctr.cli", "summary", "--config=criteo", *flags],
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "booster_a: dcn," in proc.stdout and "booster_b: xdeepfm," in proc.stdout
    assert "\nbooster:" not in proc.stdout  # the mixture is no tower to view
