"""The statistics pass: vocabularies, numeric buckets and standardize, through training,
resume and export."""

from __future__ import annotations

import json

import rocketctr  # noqa: F401  (selects Keras 2 before TensorFlow loads)

# isort: split
import numpy as np
import pytest
import tensorflow as tf
import yaml

from rocketctr import serving
from rocketctr.config.core import Config, ConfigError
from rocketctr.features import statistics as feature_stats
from rocketctr.features.processor import FeatureProcessor
from rocketctr.features.schema import SchemaError, parse_schema
from rocketctr.training.train import train

SPEC = {
    "name": "stats",
    "format": "tsv",
    "columns": ["y", "city", "tags", "n", "price"],
    "label": "y",
    "dense": [{"name": "price", "transform": "standardize"}],
    "categorical": [
        {"name": "city", "vocabulary": {"min_count": 2}},
        {"name": "tags", "vocabulary": {}, "multi_valued": {"separator": "|", "max_length": 3}},
        {"name": "n", "buckets": [0, 1, 10]},
        {"name": "n_q", "source": "n", "quantiles": 4},
    ],
    "user_id": "city",
}
ROWS = [  # city counts: paris 3, rome 2, oslo 1 (below min_count 2)
    ("1", "paris", "a|b", "-1", "1"),
    ("0", "rome", "b", "0", "2"),
    ("1", "paris", "", "0.5", "3"),
    ("0", "oslo", "c|b|b", "1", ""),
    ("1", "rome", "a", "10", "4"),
    ("0", "paris", "b|", "", "5"),
    ("1", "", "", "2", "6"),  # city missing, twice: still not a line of the vocabulary
    ("0", "", "a", "3", "7"),
]


def _write(directory, rows=ROWS, spec=SPEC):
    directory.mkdir(parents=True, exist_ok=True)
    data = directory / "rows.tsv"
    data.write_text("".join("\t".join(r) + "\n" for r in rows))
    schema_path = directory / "stats.yaml"
    schema_path.write_text(yaml.safe_dump(spec))
    return str(data), str(schema_path)


def test_the_pass_counts_thresholds_orders_and_is_deterministic(tmp_path):
    data, _ = _write(tmp_path)
    schema = parse_schema(SPEC)
    stats = feature_stats.compute(schema, [data])
    assert stats["city"]["values"] == ["paris", "rome"]  # oslo: 1 < min_count 2
    assert stats["tags"]["values"] == ["b", "a", "c"]  # 5, 2, 1 values; "" dropped
    values = [-1, 0, 0.5, 1, 10, 2, 3]  # n's numbers; a missing one takes no part
    assert stats["n_q"]["boundaries"] == list(np.quantile(values, [0.25, 0.5, 0.75]))
    prices = np.array([1, 2, 3, 4, 5, 6, 7], np.float64)
    assert stats["price"]["mean"] == pytest.approx(prices.mean())
    assert stats["price"]["std"] == pytest.approx(prices.std())
    assert feature_stats.compute(schema, [data]) == stats


def test_ids_buckets_and_standardize_by_hand(tmp_path):
    data, _ = _write(tmp_path)
    schema = parse_schema(SPEC)
    feature_stats.save(feature_stats.compute(schema, [data]), schema, tmp_path)
    resolved = feature_stats.resolve(schema, tmp_path)
    # city: 2 values + OOV + missing; tags: 3 + OOV (empty values are dropped); n: 3 + 2
    assert [f.num_rows for f in resolved.categorical] == [4, 4, 5, 5]
    processor = FeatureProcessor(resolved)
    features = {
        "city": tf.constant(["paris", "rome", "oslo", ""]),
        "tags": tf.constant(["c|a", "", "zzz", "b"]),
        "n": tf.constant([-1.0, 1.0, 10.5, np.nan]),
        "price": tf.constant([3.0, 5.0, np.nan, 1.0]),
    }
    ids, dense = processor(features)
    ids = ids.numpy()  # fields: city, n, n_q, then the multi-valued tags' 3 slots
    np.testing.assert_array_equal(ids[:, 0], [0, 1, 2, 3])  # paris, rome, OOV, missing
    # buckets [0, 1, 10]: (-inf, 0) 0, [0, 1) 1, [1, 10) 2, [10, inf) 3, missing 4
    np.testing.assert_array_equal(ids[:, 1] - 8, [0, 2, 3, 4])
    # tags (rows 4..7: b, a, c, OOV): c|a, none, unseen, b
    np.testing.assert_array_equal(ids[:, 3:], [[6, 5, -1], [-1, -1, -1], [7, -1, -1], [4, -1, -1]])
    std = np.std([1, 2, 3, 4, 5, 6, 7])  # mean 4
    np.testing.assert_allclose(dense.numpy()[:, 0], [-1 / std, 1 / std, 0.0, -3 / std], rtol=1e-6)


def test_schema_checks(tmp_path):
    for change, match in (
        ({"vocabulary": {"min_count": 0}}, "min_count.*positive"),
        ({"vocabulary": {}, "hash_buckets": 3}, "needs exactly one of"),
        ({"buckets": [1, 1]}, "increasing finite numbers"),
        ({"quantiles": 1}, "quantiles.*>= 2"),
    ):
        spec = json.loads(json.dumps(SPEC))
        spec["categorical"][0] = {"name": "city", **change}
        with pytest.raises(SchemaError, match=match):
            parse_schema(spec)
    with pytest.raises(SchemaError, match="statistics pass"):
        _ = parse_schema(SPEC).categorical[0].num_rows


def _config(schema_path: str, **train) -> Config:
    return Config.from_dict(
        {
            "schema": schema_path,
            "model": {
                "embedding_dim": 4,
                "booster": {"name": "dcn", "hidden_units": [8], "num_cross_layers": 1},  # fmt: skip
                "light": {"name": "mlp", "hidden_units": [4]},
            },
            "train": {"batch_size": 4, "num_epochs": 1, **train},
        }
    )


def test_a_run_stores_its_pass_exports_the_vocabularies_and_resume_reuses_them(tmp_path):
    data, schema_path = _write(tmp_path / "in")
    run = tmp_path / "run"
    result = train(_config(schema_path), [data], [data], run, verbose=0)
    assert (run / "vocabularies" / "city.txt").read_text() == "paris\nrome\n"
    record = json.loads((run / "feature_stats.json").read_text())
    assert record["features"]["city"]["size"] == 2
    path = serving.export_light(result.model, tmp_path / "export")  # verified
    assets = sorted(p.name for p in (path / "assets").iterdir())
    assert assets == ["city.txt", "tags.txt"]
    served = tf.saved_model.load(str(path)).signatures["serving_default"]
    unseen = {
        "city": tf.constant(["berlin", "paris", "oslo"]),  # unseen, known, below min_count
        "tags": tf.constant(["q|r", "a", ""]),
        "n": tf.constant([7.0, np.inf, np.nan]),
        "price": tf.constant([1.0, np.nan, 9.0]),
    }
    np.testing.assert_allclose(
        served(**unseen)["logits"].numpy(),
        result.model.light_logits(unseen).numpy(),
        atol=1e-6,
    )
    # Resume on other rows: the stored vocabulary is what the tables mean; no recount.
    other, _ = _write(
        tmp_path / "other",
        rows=[("1", "berlin", "z", "3", "9")] * 4 + [("0", "berlin", "z", "3", "9")] * 4,
    )
    train(_config(schema_path, num_epochs=2), [other], [other], run, verbose=0)
    assert (run / "vocabularies" / "city.txt").read_text() == "paris\nrome\n"
    # A vocabulary file changed since is refused.
    (run / "vocabularies" / "city.txt").write_text("paris\nrome\nberlin\n")
    with pytest.raises(SchemaError, match="city.txt is changed since the statistics pass"):
        train(_config(schema_path, num_epochs=3), [data], [data], run, verbose=0)


def test_a_changed_threshold_is_refused_on_resume(tmp_path):
    data, schema_path = _write(tmp_path / "in")
    run = tmp_path / "run"
    train(_config(schema_path), [data], [data], run, verbose=0)
    spec = json.loads(json.dumps(SPEC))
    spec["categorical"][0]["vocabulary"]["min_count"] = 1
    _, changed = _write(tmp_path / "changed", spec=spec)
    with pytest.raises(ConfigError, match="vocabulary"):
        train(_config(changed, num_epochs=2), [data], [data], run, verbose=0)


def test_text_in_a_bucketed_column_is_a_malformed_row(tmp_path):
    rows = [*ROWS, ("1", "rome", "a", "ten", "6")]
    data, _ = _write(tmp_path, rows=rows)
    with pytest.raises(Exception, match=r"rows.tsv:9: column `n` \(index 3\): expected a number"):
        feature_stats.compute(parse_schema(SPEC), [data])
    assert parse_schema(SPEC).is_string_column("n") is False  # served as DT_FLOAT


def test_a_vocabulary_no_value_reaches_is_refused_before_anything_is_stored(tmp_path):
    data, schema_path = _write(tmp_path / "in")
    spec = json.loads(json.dumps(SPEC))
    spec["categorical"][0]["vocabulary"]["min_count"] = 4  # paris, the most frequent: 3
    with pytest.raises(feature_stats.FeatureStatsError) as refused:
        feature_stats.compute(parse_schema(spec), [data])
    assert str(refused.value) == (
        "Feature 'city' (column 'city'): no value reaches its vocabulary min_count of 4 in the "
        "training files (the most frequent, 'paris', is seen 3 times), so its vocabulary would "
        "be empty. Nothing of the statistics pass was stored: lower min_count, or hash the field."
    )
    # A column that is empty on every row: no count at all.
    empty, _ = _write(tmp_path / "empty", rows=[(r[0], "", *r[2:]) for r in ROWS])
    with pytest.raises(feature_stats.FeatureStatsError, match="hold no value of it"):
        feature_stats.compute(parse_schema(SPEC), [empty])
    # Through training: refused before the pass is stored, so the corrected schema's pass is
    # made (not the empty one reused) and the run trains.
    _, too_strict = _write(tmp_path / "strict", spec=spec)
    run = tmp_path / "run"
    with pytest.raises(SchemaError, match="min_count of 4"):
        train(_config(too_strict), [data], [data], run, verbose=0)
    assert not (run / feature_stats.STATS_FILE).exists()
    assert not (run / feature_stats.VOCABULARY_DIR).exists()
    train(_config(schema_path), [data], [data], run, verbose=0)
    assert (run / "vocabularies" / "city.txt").read_text() == "paris\nrome\n"
