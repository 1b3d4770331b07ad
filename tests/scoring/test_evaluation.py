"""`rocketctr evaluate` and `predict`: metrics checked by hand, the export against the
checkpoint, row order and count, every mode, and a run's files left as they were."""

import hashlib
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from rocketctr.config.core import ConfigError
from rocketctr.scoring.evaluation import evaluate_run, run_history
from rocketctr.scoring.predict import predict
from rocketctr.training import train
from tests.helpers import SHARED_DATA, tiny_config, write_rows


def _by_hand(labels, probs, users, near=0.0):
    """AUC, logloss, GAUC and ECE from their definitions, pair by pair. With `near` > 0, the
    AUC and GAUC are (lowest, highest) over every order of the pairs within `near` of a tie."""

    def pair_auc(y, p):
        pos = [pi for yi, pi in zip(y, p, strict=True) if yi]
        neg = [pi for yi, pi in zip(y, p, strict=True) if not yi]

        def wins(tie):
            return sum(1.0 if a - b > near else tie if abs(a - b) <= near else 0.0
                       for a in pos for b in neg)  # fmt: skip

        if near:
            return wins(0.0) / (len(pos) * len(neg)), wins(1.0) / (len(pos) * len(neg))
        return wins(0.5) / (len(pos) * len(neg))

    logloss = -np.mean(
        [np.log(p) if y else np.log(1 - p) for y, p in zip(labels, probs, strict=True)]
    )
    groups = {}
    for y, p, u in zip(labels, probs, users, strict=True):
        groups.setdefault(u, []).append((y, p))
    both = {u: g for u, g in groups.items() if 0 < sum(y for y, _ in g) < len(g)}
    weights = [len(g) / sum(len(g) for g in both.values()) for g in both.values()]
    per_user = [np.asarray(pair_auc(*zip(*g, strict=True))) for g in both.values()]
    gauc = sum(w * a for w, a in zip(weights, per_user, strict=True))
    # 12 rows, 20 buckets: one row per bucket, so ECE is the mean |p - y|.
    ece = np.mean([abs(p - y) for y, p in zip(labels, probs, strict=True)])
    return {
        "auc": pair_auc(labels, probs),
        "logloss": logloss,
        "gauc": gauc,
        "gauc_users": len(both),
        "ece": ece,
    }


def test_evaluate_metrics_match_their_definitions_and_the_export_matches_the_checkpoint(
    tiny, tmp_path
):
    result = evaluate_run(tiny["run"], [tiny["eval"]])
    assert set(result["towers"]) == {"booster", "light"}
    scores = tmp_path / "scores.parquet"
    predict([tiny["eval"]], scores, model_dir=tiny["run"], tower="both", keep=["user"])
    frame = pd.read_parquet(scores)
    assert list(frame["user"]) == [r[1] for r in tiny["eval_rows"]] and list(frame["label"]) == [
        r[0] for r in tiny["eval_rows"]
    ]
    # `predict` scored both towers from the checkpoint, as evaluate does without an export.
    from_checkpoint = evaluate_run(tiny["run"], [tiny["eval"]], export_base=tmp_path / "none")
    assert from_checkpoint["export_parity"] is None
    for tower in ("booster", "light"):
        expected = _by_hand(frame["label"], frame[f"{tower}_probability"], frame["user"])
        got = from_checkpoint["towers"][tower]
        for key, value in expected.items():
            assert got[key] == pytest.approx(value, abs=1e-6), (tower, key)
        assert got["gauc_users"] == 2  # u3 and u4 have one class only
        assert got["rows"] == 12 and got["observed_ctr"] == pytest.approx(6 / 12)
        assert got["mean_prediction"] == pytest.approx(frame[f"{tower}_probability"].mean())
        assert len(got["calibration"]) == 12
    # By default the light net is scored through the export, which agrees with the
    # checkpoint within 1e-5 per row: so do its metrics, but a tied pair of rows (a tiny net
    # with dead units scores some rows alike) may come out in either order.
    parity = result["export_parity"]
    assert parity["export"] == str(tiny["run"] / "export" / "1")
    assert parity["rows"] == 12 and parity["max_abs_diff"] <= 1e-5
    exported = result["towers"]["light"]
    assert exported["scored_with"] == f"export {parity['export']}"
    assert result["towers"]["booster"] == from_checkpoint["towers"]["booster"]
    for key in ("logloss", "ece", "mean_prediction"):
        assert exported[key] == pytest.approx(from_checkpoint["towers"]["light"][key], abs=1e-5)
    bounds = _by_hand(frame["label"], frame["light_probability"], frame["user"], near=1e-5)
    for key in ("auc", "gauc"):
        low, high = bounds[key]
        assert low - 1e-9 <= exported[key] <= high + 1e-9, (key, exported[key], bounds[key])


def _fingerprint(directory, times=True):
    return {
        str(p.relative_to(directory)): (
            p.stat().st_mtime_ns if times else None,
            hashlib.sha256(p.read_bytes()).hexdigest(),
        )
        for p in sorted(directory.rglob("*"))
        if p.is_file() and p.name != "lock"
    }


def test_scoring_a_run_writes_nothing_into_it(tiny, tmp_path):
    before = _fingerprint(tiny["run"])
    evaluate_run(tiny["run"], [tiny["train"]])
    predict([tiny["train"]], tmp_path / "p.csv", model_dir=tiny["run"])
    assert _fingerprint(tiny["run"]) == before
    # `train` on the finished run with other eval files scores them, and keeps the run's
    # metrics, history, checkpoints and recorded eval files (config and schema are written
    # again, the same).
    other = write_rows(tmp_path / "other.tsv", tiny["eval_rows"][:6])
    result = train.train(tiny["config"], [tiny["train"]], [other], tiny["run"], verbose=0)
    assert result.metrics["light"]["rows"] == 6
    after = _fingerprint(tiny["run"], times=False)
    assert after == _fingerprint(tiny["run"], times=False) and after == {
        k: (None, digest) for k, (_, digest) in before.items()
    }
    for name in ("metrics.json", "history.json", "eval_data.json"):
        assert (tiny["run"] / name).stat().st_mtime_ns == before[name][0]


def test_predict_through_the_export_equals_the_checkpoint_and_csv_equals_parquet(tiny, tmp_path):
    predict([tiny["eval"]], tmp_path / "a.parquet", model_dir=tiny["run"], keep=["item", "x"])
    summary = predict([tiny["eval"]], tmp_path / "b.csv", export_dir=tiny["run"] / "export")
    assert summary["scored_with"] == str(tiny["run"] / "export" / "1")
    assert summary["columns"] == ["label", "light_probability", "light_logit"]
    a, b = pd.read_parquet(tmp_path / "a.parquet"), pd.read_csv(tmp_path / "b.csv")
    assert list(a.columns) == ["item", "x", "label", "light_probability", "light_logit"]
    assert list(a["item"]) == [r[2] for r in tiny["eval_rows"]]
    np.testing.assert_allclose(a["x"], [r[3] for r in tiny["eval_rows"]], rtol=1e-6)
    np.testing.assert_allclose(a["light_probability"], b["light_probability"], atol=1e-5)
    with pytest.raises(ConfigError, match="light net only"):
        predict([tiny["eval"]], tmp_path / "c.csv", export_dir=tiny["run"] / "export", tower="both")
    with pytest.raises(ConfigError, match=r"\.parquet or \.csv"):
        predict([tiny["eval"]], tmp_path / "c.json", model_dir=tiny["run"])
    with pytest.raises(ValueError, match=r"Columns \['request'\] are not columns"):
        predict([tiny["eval"]], tmp_path / "c.csv", model_dir=tiny["run"], keep=["request"])
    # A malformed row under bad_rows=error, after a first batch was written: the error, and
    # no file, not even a partial one.
    bad = write_rows(tmp_path / "bad.tsv", tiny["eval_rows"] * 10 + [(1, "u1", "a")])
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"bad.tsv:121: expected 4 columns"):
        predict([bad], tmp_path / "c.csv", model_dir=tiny["run"], batch_size=16)
    assert not list(tmp_path.glob("*c.csv*"))  # nothing left behind, not even hidden


def test_predict_never_replaces_its_input_and_an_existing_output_only_when_asked(tiny, tmp_path):
    data = tmp_path / "rows.tsv"
    shutil.copy(tiny["eval"], data)
    before = data.read_bytes()
    # The same file by other names (a hard link, a symbolic link): refused, untouched.
    os.link(data, tmp_path / "rows.csv")
    os.symlink(data, tmp_path / "link.parquet")
    for output in (tmp_path / "rows.csv", tmp_path / "link.parquet"):
        with pytest.raises(
            ConfigError,
            match=r"is one of the input files .*rows.tsv\): scoring "
            r"would replace it",
        ):
            predict([str(data)], output, model_dir=tiny["run"], overwrite=True)
    assert data.read_bytes() == before
    # An existing output: refused without --overwrite, replaced with it.
    out = tmp_path / "scores.csv"
    out.write_text("keep me\n")
    with pytest.raises(ConfigError, match="scores.csv exists; pass --overwrite to replace it"):
        predict([str(data)], out, model_dir=tiny["run"])
    assert out.read_text() == "keep me\n"
    summary = predict([str(data)], out, model_dir=tiny["run"], overwrite=True)
    assert summary["rows"] == 12 and len(pd.read_csv(out)) == 12
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "link.parquet",
        "rows.csv",
        "rows.tsv",
        "scores.csv",
    ]


def test_a_predict_whose_output_appears_meanwhile_leaves_it_alone(tiny, tmp_path, monkeypatch):
    """Two predicts to one output: each writes its own partial file, and the one that
    finishes second is refused rather than replacing the other's file."""
    import rocketctr.scoring.predict as predict_module

    out = tmp_path / "scores.parquet"
    check = predict_module.check_output

    def other_writer_finishes_first(output, patterns, overwrite):
        check(output, patterns, overwrite)
        output.write_text("the other predict's rows")

    monkeypatch.setattr(predict_module, "check_output", other_writer_finishes_first)
    with pytest.raises(ConfigError, match="appeared while scoring"):
        predict([tiny["eval"]], out, model_dir=tiny["run"])
    assert out.read_text() == "the other predict's rows"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scores.parquet"]  # no partial left


def test_a_booster_only_run_is_evaluated_and_scored(tiny, tmp_path):
    model_dir = tmp_path / "booster"
    config = tiny["config"].replace({"distill.mode": "booster_only"})
    train.train(config, [tiny["train"]], [tiny["eval"]], model_dir, verbose=0)
    result = evaluate_run(model_dir, [tiny["eval"]])
    assert list(result["towers"]) == ["booster"] and result["export_parity"] is None
    assert 0.5 < result["towers"]["booster"]["auc"] <= 1.0
    with pytest.raises(ConfigError, match=r"no light net \(distill.mode 'booster_only'\)"):
        evaluate_run(model_dir, [tiny["eval"]], tower="light")
    summary = predict([tiny["eval"]], tmp_path / "b.parquet", model_dir=model_dir, tower="booster")
    assert summary["rows"] == 12
    scores = pd.read_parquet(tmp_path / "b.parquet")
    assert 0 < scores["booster_probability"].min() <= scores["booster_probability"].max() < 1


def _criteo_run(tmp_path_factory):
    from rocketctr.data import synthetic

    directory = tmp_path_factory.mktemp("criteo_run")
    train_file, eval_file = synthetic.ensure_synthetic_criteo(directory, 3000, 500)
    config = tiny_config(train={"batch_size": 256, "num_epochs": 1})
    result = train.train(config, [str(train_file)], [str(eval_file)], directory / "run", verbose=0)
    # 3,000 rows, one epoch: scoring mechanics, not a net that ranks (see test_gate.py).
    train.export_trained(result, [str(eval_file)], directory / "run" / "export", force=True)
    return directory / "run"


@pytest.fixture(scope="module")
def criteo_run(tmp_path_factory):
    return _criteo_run(tmp_path_factory)


@pytest.mark.skipif(not SHARED_DATA.exists(), reason="needs ../shared/data (real CTR samples)")
def test_predict_keeps_row_order_and_count_on_the_criteo_sample(criteo_run, tmp_path, monkeypatch):
    import rocketctr.data.dataset as dataset

    monkeypatch.setattr(dataset, "ROWS_PER_CHUNK", 256)  # many chunks: files would interleave
    lines = (
        (SHARED_DATA / "criteo" / "criteo_kaggle_train_head9999.txt").read_text().splitlines(True)
    )
    first, second = tmp_path / "a.tsv", tmp_path / "b.tsv"
    first.write_text("".join(lines[:3000]))
    second.write_text("".join(lines[3000:4000]))
    expected = [line.split("\t")[14] for line in lines[:4000]]  # C1 of every row, in order
    out = tmp_path / "scores.parquet"
    summary = predict([str(first), str(second)], out, model_dir=criteo_run, keep=["C1"])
    frame = pd.read_parquet(out)
    assert summary["rows"] == len(frame) == 4000
    assert list(frame["C1"]) == expected
    assert list(frame["label"]) == [float(line.split("\t")[0]) for line in lines[:4000]]

    # With malformed rows under skip: they are left out and counted, the rest keep order.
    short = "\t".join(lines[5].split("\t")[:10]) + "\n"
    bad_label = "x" + lines[6][1:]
    dirty = lines[:100] + [short] + lines[100:2000] + [bad_label, short] + lines[2000:3000]
    first.write_text("".join(dirty))
    summary = predict(
        [str(first)],
        out,
        export_dir=criteo_run / "export",
        keep=["C1"],
        bad_rows="skip",
        source=True,
        overwrite=True,
    )
    frame = pd.read_parquet(out)
    assert summary["rows"] == len(frame) == 3000
    assert list(frame["C1"]) == expected[:3000]
    # Each row's file and line, to join back on: the malformed lines 101, 2002, 2003 are gone.
    assert list(frame.columns[:3]) == ["C1", "source_file", "source_line"]
    assert set(frame["source_file"]) == {str(first)}
    lines = [*range(1, 101), *range(102, 2002), *range(2004, 3004)]
    assert list(frame["source_line"]) == lines
    assert "a.tsv: skipped 3 of 3,003 rows (malformed), first at line 101" in summary["bad_rows"]


@pytest.mark.integration
def test_cli_evaluate_and_predict(tiny, tmp_path):
    def cli(*args):
        proc = subprocess.run(
            [sys.executable, "-m", "rocketctr.cli", *args],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        return proc.stdout

    out = cli(
        "evaluate",
        f"--model_dir={tiny['run']}",
        f"--data={tiny['eval']}",
        f"--output={tmp_path / 'm.json'}",
    )
    saved = json.loads((tmp_path / "m.json").read_text())
    # It names the weights it scored: the epoch model selection kept, and the checkpoint
    # that holds them (the run's last, saved at the last epoch's step).
    history = json.loads((tiny["run"] / "history.json").read_text())
    kept = max(history, key=lambda r: r["val_light_auc"])["epoch"]
    checkpoints = sorted((tiny["run"] / "checkpoints").glob("ckpt-*.index"))
    newest = max(checkpoints, key=lambda p: int(p.name[5:-6])).with_suffix("")
    assert (
        f"Scored the weights of epoch {kept}, kept by model selection (val_light_auc): "
        f"{newest} (global step {saved['global_step']:,})"
    ) in out
    assert saved["kept_epoch"] == kept and saved["completed_epochs"] == 2
    assert "light: scored through the export" in out
    header = next(line for line in out.splitlines() if line.startswith("tower"))
    assert header.split() == [
        "tower",
        "auc",
        "logloss",
        "gauc",
        "users",
        "ece",
        "pred",
        "ctr",
        "obs",
        "ctr",
    ]
    light = next(line for line in out.splitlines() if line.startswith("light "))
    assert light.split()[1] == f"{saved['towers']['light']['auc']:.4f}"
    assert light.split()[4] == "2"  # GAUC users, and a warning that 2 users say little
    assert "WARNING: GAUC averages over 2 users" in out
    out = cli(
        "predict",
        f"--model_dir={tiny['run']}",
        f"--data={tiny['eval']}",
        f"--output={tmp_path / 'p.csv'}",
        "--keep=user",
        "--tower=both",
    )
    assert "Wrote 12 rows" in out
    assert list(pd.read_csv(tmp_path / "p.csv").columns) == [
        "user",
        "label",
        "booster_probability",
        "booster_logit",
        "light_probability",
        "light_logit",
    ]


def test_an_unreadable_history_is_empty_and_named_when_asked(tmp_path, capsys):
    assert run_history(tmp_path) == []  # none
    (tmp_path / "history.json").write_text("[{")
    assert run_history(tmp_path) == [] and capsys.readouterr().out == ""
    assert run_history(tmp_path, unreadable="The report has no training curves.") == []
    out = capsys.readouterr().out
    assert out.startswith("WARNING: ") and "history.json" in out
    assert out.rstrip().endswith("The report has no training curves.")
    (tmp_path / "history.json").write_text('[{"epoch": 1}]')
    assert run_history(tmp_path) == [{"epoch": 1}]
