"""`rocketctr report`: the page renders in a real browser (headless Chromium), every plot
decodes, and its numbers are the evaluation's."""

import os
import re

import pytest

from rocketctr.config.core import ConfigError
from rocketctr.scoring.evaluation import evaluate_run
from rocketctr.scoring.report import write_report
from rocketctr.training import train
from tests.browser import CHROMIUM, load_page
from tests.test_evaluation import _config, tiny  # noqa: F401  (the module's run fixture)

# CI sets this: there the browser test must run, never skip.
REQUIRE_BROWSER = os.environ.get("ROCKETCTR_REQUIRE_BROWSER") == "1"


@pytest.fixture(scope="module")
def baseline(tiny):  # noqa: F811
    model_dir = tiny["run"].parent / "light_alone"
    config = _config(tiny["schema"], mode="light_only")
    train.train(config, [tiny["train"]], [tiny["eval"]], model_dir, verbose=0)
    return model_dir


def test_report_renders_in_chromium_with_every_plot_decoded(tiny, baseline, tmp_path):  # noqa: F811
    if CHROMIUM is None:
        if REQUIRE_BROWSER:
            pytest.fail("chromium is not installed (apt-get install -y chromium)")
        pytest.skip("needs chromium (apt-get install -y chromium)")
    output = tmp_path / "report.html"
    summary = write_report(tiny["run"], output, baseline_dir=baseline, test=[tiny["train"]])
    page = load_page(output, tmp_path / "report.png")
    assert page.errors == []
    assert page.title == "rocketctr report: run"
    # Reliability diagrams, training curves, hint weight schedule: all decoded.
    assert len(page.images) == 3
    assert all(i["complete"] and i["width"] > 300 and i["height"] > 200 for i in page.images)
    screenshot = (tmp_path / "report.png").read_bytes()
    assert screenshot[:8] == b"\x89PNG\r\n\x1a\n" and len(screenshot) > 50_000

    text = output.read_text()
    evaluation = evaluate_run(tiny["run"], [tiny["train"]])
    alone = evaluate_run(baseline, [tiny["train"]], tower="light")["towers"]["light"]["auc"]
    light, booster = (evaluation["towers"][t]["auc"] for t in ("light", "booster"))
    assert f"<td>light</td><td>{light:.4f}</td>" in text
    assert f"<td>light alone (baseline)</td><td>{alone:.4f}</td>" in text
    assert f"<td>gap closed</td><td>{100 * (light - alone) / (booster - alone):.0f} %</td>" in text
    assert "held-out test data" in text and "Did distillation pay off?" in text
    assert re.search(r"<td>light</td><td>[\d,]+</td><td>[\d,]+</td>", text)  # FLOPs, params
    assert f"light lift over the baseline {light - alone:+.4f} AUC" in summary


def test_scoring_a_light_only_run_warns_of_nothing(baseline, tiny, caplog):  # noqa: F811
    evaluate_run(baseline, [tiny["eval"]])
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == []


def test_report_refuses_a_baseline_that_is_not_a_light_only_run(tiny, tmp_path):  # noqa: F811
    with pytest.raises(ConfigError, match="is a 'co_train' run; the baseline is the same light"):
        write_report(tiny["run"], tmp_path / "r.html", baseline_dir=tiny["run"])
    assert not (tmp_path / "r.html").exists()
