"""The frontier of a run's light nets: the Pareto set, the pick under a budget, a real run."""

import json
import subprocess
import sys

import pytest

from rocketctr.config.core import Config, ConfigError
from rocketctr.scoring.evaluation import evaluate_run
from rocketctr.scoring.frontier import format_frontier, measure_frontier, pareto_set, pick_light
from rocketctr.training.train import train
from tests.distribute.test_distribute import _env


def _row(name, auc, ms, kind="light"):
    return {"name": name, "kind": kind, "auc": auc, "latency_ms": {"loop": {100: ms, 1: ms / 10}}}


TABLE = [  # a hand-made frontier: (AUC, ms at batch 100)
    _row("mlp32", 0.9800, 0.10),
    _row("mlp64", 0.9790, 0.15),  # slower and worse than mlp32: off the Pareto set
    _row("mlp128", 0.9820, 0.25),
    _row("mlp256", 0.9835, 0.60),
    _row("booster", 0.9842, 2.40, kind="booster"),
]


def test_the_pareto_set_leaves_out_nets_beaten_on_both_auc_and_latency():
    assert pareto_set(TABLE, 100) == ["mlp32", "mlp128", "mlp256", "booster"]
    tie = [_row("a", 0.98, 0.1), _row("b", 0.98, 0.1)]  # equal: neither beats the other
    assert pareto_set(tie, 100) == ["a", "b"]


@pytest.mark.parametrize(
    ("budget", "expected"),
    [(0.30, "mlp128"), (0.25, "mlp128"), (0.24, "mlp32"), (10.0, "mlp256"), (None, "mlp256"),
     (0.05, None)],
)  # fmt: skip
def test_the_latency_budget_picks_the_best_light_net_that_fits(budget, expected):
    pick, reason = pick_light(TABLE, 100, budget)
    assert pick == expected  # never the booster, even when it fits and is best
    if expected is None:
        assert reason == (
            "no light net fits 0.05 ms at batch 100: the fastest, mlp32, takes 0.100 ms"
        )
    elif budget is None:
        assert reason == "highest AUC (no latency budget given)"
    else:
        assert reason.startswith(f"highest AUC within {budget:g} ms at batch 100")


@pytest.fixture(scope="module")
def run(tmp_path_factory, data):
    """A one-epoch run of two light nets on synthetic rows, and its light_only baseline."""
    base = tmp_path_factory.mktemp("frontier")
    config = Config.from_dict({
        "model": {
            "embedding_dim": 4,
            "booster": {"name": "dcn", "hidden_units": [16], "num_cross_layers": 1},
            "lights": {"mlp8": {"name": "mlp", "hidden_units": [8]},
                       "mlp32": {"name": "mlp", "hidden_units": [32, 16]}},
        },
        "train": {"batch_size": 256, "num_epochs": 2},
    })  # fmt: skip
    train(config, [str(data[0])], [str(data[1])], base / "run")
    alone = config.replace({"distill.mode": "light_only"})
    train(alone, [str(data[0])], [str(data[1])], base / "alone")
    return base / "run", base / "alone", data


def test_the_frontier_of_a_real_run(run):
    model_dir, baseline_dir, data = run
    result = measure_frontier(
        model_dir, baseline_dir=baseline_dir, batch_sizes=(1, 20), batch=20,
        latency_budget_ms=1e6, reps=3, loop_seconds=0.01, rounds=1,
    )  # fmt: skip
    assert [r["name"] for r in result["nets"]] == ["mlp8", "mlp32", "booster"]
    scored = evaluate_run(model_dir, [str(data[1])])["towers"]
    alone = evaluate_run(baseline_dir, [str(data[1])])["towers"]
    for row in result["nets"]:
        name = row["name"]
        assert row["auc"] == scored[name]["auc"] and row["logloss"] == scored[name]["logloss"]
        assert row["export_bytes"] > 0 and row["parameters"]["total"] > 0
        assert all(row["latency_ms"][m][b] > 0 for m in ("loop", "call") for b in (1, 20))
        if name != "booster":
            assert row["lift"]["auc"] == pytest.approx(scored[name]["auc"] - alone[name]["auc"])
    flops = {r["name"]: r["flops"] for r in result["nets"]}
    # mlp8: 2*(26*4+13)*8 + 2*8; mlp32: 2*(117*32 + 32*16 + 16)
    assert flops["mlp8"] == 2 * 117 * 8 + 2 * 8
    assert flops["mlp32"] == 2 * (117 * 32 + 32 * 16 + 16)
    assert flops["booster"] > flops["mlp32"] > flops["mlp8"]
    assert result["pick"] == max(result["nets"][:2], key=lambda r: r["auc"])["name"]
    assert set(result["pareto"]) <= {"mlp8", "mlp32", "booster"} and result["pareto"]
    text = format_frontier(result)
    assert text.splitlines()[0].split()[:4] == ["net", "auc", "logloss", "gauc"]
    assert f"Pick: {result['pick']}: highest AUC within 1e+06 ms at batch 20" in text


def test_the_frontier_command_writes_its_json(run, tmp_path):
    model_dir, _, _ = run
    out = tmp_path / "frontier.json"
    proc = subprocess.run(
        [sys.executable, "-m", "rocketctr.cli", "frontier", f"--model_dir={model_dir}",
         "--batch=10", f"--output={out}"],
        env=_env(), capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert [r["name"] for r in result["nets"]] == ["mlp8", "mlp32", "booster"]
    assert result["batch"] == 10 and result["pick"] in ("mlp8", "mlp32")
    assert "Pick: " in proc.stdout and "ms@10" in proc.stdout


def test_train_exports_the_best_light_net_within_the_latency_budget(run, tmp_path, capsys):
    from rocketctr import serving
    from rocketctr.runs.rundir import restore_run
    from rocketctr.scoring.evaluation import run_history
    from rocketctr.training.train import TrainResult, export_trained

    model_dir, _, data = run
    model, config, _, _ = restore_run(model_dir)
    metrics = evaluate_run(model_dir, [str(data[1])])["towers"]
    best = max(("mlp8", "mlp32"), key=lambda n: metrics[n]["auc"])

    def export(budget_ms):
        model.rocket_config = config.replace({"export.latency_budget_ms": budget_ms,
                                              "export.latency_batch": 10})  # fmt: skip
        result = TrainResult(model, model.schema, metrics, 0, "", model_dir=model_dir,
                             history=run_history(model_dir))  # fmt: skip
        return export_trained(result, [str(data[1])], tmp_path / str(budget_ms), force=True)

    path = export(1e6)  # everything fits: the best AUC
    assert serving.read_export_info(path)["light"] == best
    assert f"Exporting light net {best}: highest AUC within 1e+06 ms at batch 10" in (
        capsys.readouterr().out
    )
    with pytest.raises(ConfigError, match=r"export.latency_budget_ms: no light net fits 1e-06 "
                       r"ms at batch 10: the fastest, mlp(8|32), takes"):  # fmt: skip
        export(1e-6)
    assert not (tmp_path / "1e-06").exists()


def test_the_report_of_a_run_of_several_light_nets_has_its_frontier(run, tmp_path):
    from rocketctr.scoring.report import write_report

    model_dir, baseline_dir, _ = run
    out = tmp_path / "report.html"
    summary = write_report(model_dir, out, baseline_dir=baseline_dir)
    assert summary.startswith(f"Wrote {out}: booster AUC") and "mlp8 AUC" in summary
    page = out.read_text()
    section = page.split("<h2>The frontier: quality against serving latency</h2>")[1]
    section = section.split("<h2>")[0]
    for name in ("mlp8", "mlp32", "booster"):
        assert f"<tr><td>{name}</td>" in section
    assert section.count('<img alt="" src="data:image/png;base64,') == 1
    assert "mlp8 alone (baseline)" in page and "Pick: " in section


def test_metrics_json_records_each_nets_own_best_epoch(run):
    model_dir, _, _ = run
    metrics = json.loads((model_dir / "metrics.json").read_text())
    history = json.loads((model_dir / "history.json").read_text())
    for tower in ("booster", "mlp8", "mlp32"):
        best = max(history, key=lambda r: r[f"val_{tower}_auc"])
        assert metrics[tower]["best_epoch"] == best["epoch"]


def test_predict_scores_the_chosen_light_net_at_its_best_epoch(run, tmp_path):
    import pandas as pd

    from rocketctr.scoring.metrics import auc
    from rocketctr.scoring.predict import predict

    model_dir, _, data = run
    scored = evaluate_run(model_dir, [str(data[1])])["towers"]
    for light in ("mlp8", "mlp32"):
        out = tmp_path / f"{light}.csv"
        summary = predict([str(data[1])], out, model_dir=model_dir, tower="both", light=light)
        assert summary["columns"][-4:] == [
            "booster_probability", "booster_logit", f"{light}_probability", f"{light}_logit"
        ]  # fmt: skip
        frame = pd.read_csv(out)
        for tower in (light, "booster"):  # the booster as the run keeps it, whichever light
            assert auc(frame["label"], frame[f"{tower}_probability"]) == pytest.approx(
                scored[tower]["auc"], abs=1e-6
            )


def test_evaluate_scores_every_net_alike_whichever_light_net_is_selected(run):
    model_dir, _, data = run
    default = evaluate_run(model_dir, [str(data[1])])
    for light in ("mlp8", "mlp32"):
        chosen = evaluate_run(model_dir, [str(data[1])], light=light)
        assert chosen["light"] == light
        for tower in ("booster", "mlp8", "mlp32"):
            assert chosen["towers"][tower]["auc"] == default["towers"][tower]["auc"], tower
