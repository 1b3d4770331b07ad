"""benchmarks/quality.py: gap-closed arithmetic, aggregation, and its core on tiny data."""

import importlib.util
import math
import sys
from pathlib import Path

import pytest

from rocketctr.config.core import Config
from rocketctr.data.synthetic import generate, write_criteo_tsv

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _load_quality():
    sys.path.insert(0, str(BENCHMARKS))
    spec = importlib.util.spec_from_file_location("quality", BENCHMARKS / "quality.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


quality = _load_quality()


def test_search_grid_points_are_the_product_or_a_seeded_sample():
    sys.path.insert(0, str(BENCHMARKS))
    spec = importlib.util.spec_from_file_location("search", BENCHMARKS / "search.py")
    search = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(search)
    grid = ["distill.methods.kd.weight=0.3,1", "distill.ramp=linear,step,linear"]
    points = search.grid_points(grid, None, 0)
    assert len(points) == 6
    assert points[0] == {"distill.methods.kd.weight": 0.3, "distill.ramp": "linear"}
    assert isinstance(points[-1]["distill.methods.kd.weight"], int)  # YAML: "1" is an int
    sample = search.grid_points(grid, 4, seed=1)
    assert len(sample) == 4 and all(p in points for p in sample)
    assert sample == search.grid_points(grid, 4, seed=1)


def test_gap_closed_on_hand_made_numbers():
    assert quality.gap_closed(0.70, 0.73, 0.80) == pytest.approx(0.3)
    assert quality.gap_closed(0.70, 0.80, 0.80) == pytest.approx(1.0)
    assert quality.gap_closed(0.70, 0.69, 0.80) == pytest.approx(-0.1)
    assert math.isnan(quality.gap_closed(0.80, 0.81, 0.80))  # no gap to close


def test_summarize_means_stds_and_gaps():
    aucs = {  # seed 0: gap .10, closed .02 -> 20 %; seed 1: gap .20, closed .10 -> 50 %
        ("light", 0): 0.70, ("distilled_kd", 0): 0.72, ("booster", 0): 0.80,
        ("light", 1): 0.60, ("distilled_kd", 1): 0.70, ("booster", 1): 0.80,
    }  # fmt: skip
    runs = [
        {"variant": v, "seed": s, "auc": a, "logloss": 0.5, "gauc": float("nan"), "seconds": 1.0}
        for (v, s), a in aucs.items()
    ]
    result = quality.summarize(runs, {"light": None, "distilled_kd": "light", "booster": None})
    mean, std = result["summary"]["light"]["auc"]
    assert mean == pytest.approx(0.65)
    assert std == pytest.approx(math.sqrt(2 * 0.05**2))  # sample std of (0.70, 0.60)
    gap = result["gap_closed"]["distilled_kd"]
    # of means: (0.71 - 0.65) / (0.80 - 0.65) = 0.4
    assert gap["of_means"] == pytest.approx(0.4)
    assert gap["per_seed"][0] == pytest.approx(0.35)
    assert gap["per_seed"][1] == pytest.approx(math.sqrt(2 * 0.15**2))
    # lift .71 − .65; stds: distilled sqrt(2)·.01, light sqrt(2)·.05; pooled = their RMS
    assert gap["lift"] == pytest.approx(0.06)
    assert gap["lift_in_std"] == pytest.approx(0.06 / math.sqrt((0.02**2 + 0.1**2) / 4))
    assert math.isnan(result["summary"]["light"]["gauc"][0])


def test_time_to_quality_on_hand_made_curves():
    def run(variant, curve, seed=0):
        return {"variant": variant, "seed": seed, "curve": curve, "train_seconds": curve[-1][0]}

    runs = [
        run("distilled", [[10, 0.70], [20, 0.78], [30, 0.80]]),  # reaches 0.78 at 20 s
        run("two_stage", [[4, 0.75], [8, 0.78], [12, 0.77]]),  # best 0.78 at 8 s
        run("booster", [[10, 0.8], [22, 0.81]]),
    ]
    speed = quality.time_to_quality(runs)
    assert speed["target_auc"][0] == pytest.approx(0.78)
    assert speed["ratio_to_target"][0] == pytest.approx(20 / (22 + 8))
    assert speed["ratio_full_runs"][0] == pytest.approx(30 / (22 + 12))
    assert quality.time_to_quality(runs[:2]) == {}  # no teacher run


@pytest.mark.slow  # 8 small trainings of the benchmark harness (~3 min); `pytest -m slow`
def test_run_quality_trains_every_variant_for_every_seed(tmp_path):
    train_file = write_criteo_tsv(generate(256, seed=0), tmp_path / "train.tsv")
    eval_file = write_criteo_tsv(generate(128, seed=1), tmp_path / "eval.tsv")
    config = Config.from_dict(
        {
            "model": {
                "embedding_dim": 4,
                "booster": {"name": "dcn", "hidden_units": [8], "num_cross_layers": 1},
                "light": {"name": "mlp", "hidden_units": [4]},
            },
            "train": {"batch_size": 64, "num_epochs": 1, "steps_per_epoch": 3},
        }
    )
    # A few variants keep the test short (each run builds and traces a model); two_stage
    # first: its teacher, the booster run of the same seed, must still train before it.
    variants = {k: quality.VARIANTS[k] for k in ("two_stage", "light", "distilled", "booster")}
    result = quality.run_quality(
        config,
        [str(train_file)],
        [str(eval_file)],
        seeds=[0, 1],
        work_dir=tmp_path / "runs",
        variants=variants,
    )
    order = [(r["variant"], r["seed"]) for r in result["runs"]]
    assert sorted(order) == sorted((v, s) for v in variants for s in (0, 1))
    assert order.index(("booster", 1)) < order.index(("two_stage", 1))
    assert set(result["time_to_quality"]["seeds"]) == {0, 1}
    assert result["time_to_quality"]["ratio_full_runs"][0] > 0
    for run in result["runs"]:
        assert 0.0 <= run["auc"] <= 1.0 and run["logloss"] > 0
        assert ("cotrained_booster_auc" in run) == (run["variant"] == "distilled")
        assert len(run["curve"]) == 1 and run["train_seconds"] > 0
    light = [r["auc"] for r in result["runs"] if r["variant"] == "light"]
    assert result["summary"]["light"]["auc"][0] == pytest.approx(sum(light) / 2)
    assert set(result["gap_closed"]) == {"distilled", "two_stage"}
    summary = result["summary"]
    # Serving cost from the layer shapes: the light MLP-4 is far cheaper than the DCN.
    assert 0 < summary["light"]["serving_mflops"][0] < summary["booster"]["serving_mflops"][0]
    expected = quality.gap_closed(
        summary["light"]["auc"][0], summary["distilled"]["auc"][0], summary["booster"]["auc"][0]
    )
    assert result["gap_closed"]["distilled"]["of_means"] == pytest.approx(expected, nan_ok=True)


def test_merge_compares_light_alone_settings_only_where_light_alone_ran():
    def payload(variants, baseline):
        return {
            "config": {"schema": "frappe"},
            "overrides": {"light alone": baseline, "model.embedding_l2": 0.01},
            "runs": [{"variant": v} for v in variants],
        }

    tuned = {"train.light_optimizer": {"name": "adam", "learning_rate": 0.1}}
    with_light = payload(["light", "distilled"], tuned)
    booster_only = payload(["booster"], {})
    assert quality.mergeable([booster_only, with_light])
    assert not quality.mergeable([payload(["light"], {}), with_light])
    other = payload(["booster"], {})
    other["overrides"]["model.embedding_l2"] = 0.0
    assert not quality.mergeable([other, with_light])
