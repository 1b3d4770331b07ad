"""FeatureProcessor: hand-worked values, and the vectorized graph against a per-field
reference on the real Criteo, Avazu and Frappe samples."""

import rocketctr  # noqa: F401  (selects Keras 2 before TensorFlow loads)

# isort: split
import numpy as np
import pytest
import tensorflow as tf

from rocketctr.data import make_dataset
from rocketctr.features.processor import HASH_SPACE, FeatureProcessor
from rocketctr.features.schema import CategoricalFeature, DenseFeature, load_schema, parse_schema
from tests.helpers import SHARED_DATA


# ------------------------------------------------------------- per-field reference
# One feature at a time, as rocketctr did before the processor was vectorized (hashing
# version 1 differs in the hashed line only, see _hash_v1). Written independently of
# rocketctr.features.processor so that the equivalence tests can fail.
def _parse_int(raw):
    if raw.dtype.is_integer:
        return tf.cast(raw, tf.int64), tf.ones_like(raw, tf.bool)
    valid = tf.strings.regex_full_match(raw, r"\s*-?[0-9]{1,18}\s*")
    return tf.strings.to_number(tf.where(valid, raw, "0"), out_type=tf.int64), valid


def _days_from_civil(year, month, day):
    year = year - tf.cast(month <= 2, tf.int64)
    era = tf.math.floordiv(year, 400)
    yoe = year - era * 400
    doy = (153 * tf.math.floormod(month + 9, 12) + 2) // 5 + day - 1
    return era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468


def _reference_ids(feature: CategoricalFeature, raw: tf.Tensor) -> tf.Tensor:
    if feature.hash_buckets:
        text = raw if raw.dtype == tf.string else tf.strings.as_string(raw)
        return tf.strings.to_hash_bucket_fast(text, HASH_SPACE) % feature.hash_buckets
    if feature.derive:
        stamp, valid = _parse_int(raw)
        hour, day = stamp % 100, (stamp // 100) % 100
        month, year = (stamp // 10_000) % 100, 2000 + stamp // 1_000_000
        valid &= (hour < 24) & (day >= 1) & (day <= 31) & (month >= 1) & (month <= 12)
        if feature.derive == "hour_of_day":
            value = hour
        else:
            value = tf.math.floormod(_days_from_civil(year, month, day) + 3, 7)
    else:
        value, valid = _parse_int(raw)
        value = value - feature.id_offset
    in_range = valid & (value >= 0) & (value < feature.num_ids)
    return tf.where(in_range, value, tf.cast(feature.num_ids, tf.int64))


def _reference_dense(feature: DenseFeature, raw: tf.Tensor) -> tf.Tensor:
    x = tf.cast(raw, tf.float32)
    missing = tf.logical_not(tf.math.is_finite(x))
    x = tf.where(missing, 0.0, x)
    if feature.clip_max is not None:
        x = tf.minimum(x, feature.clip_max)
    if feature.transform == "log1p":
        x = tf.math.log1p(tf.maximum(x, 0.0))
    return tf.where(missing, 0.0, x)


def _reference(schema, features, names=None):
    """(ids [B, F], dense [B, D]) of the per-field reference, table offsets included."""
    names = set(schema.feature_names if names is None else names)
    offsets, total = {}, 0
    for f in schema.categorical:
        offsets[f.name], total = total, total + f.num_rows
    ids = [
        _reference_ids(f, tf.reshape(features[f.column], [-1])) + offsets[f.name]
        for f in schema.categorical
        if f.name in names
    ]
    dense = [
        _reference_dense(f, tf.reshape(features[f.name], [-1]))
        for f in schema.dense
        if f.name in names
    ]
    n = tf.shape(ids[0])[0]
    return tf.stack(ids, 1).numpy(), (tf.stack(dense, 1) if dense else tf.zeros([n, 0])).numpy()


def _hash_v1(feature, raw):
    """Hashing version 1: one to_hash_bucket_fast per field, with its own bucket count."""
    return tf.strings.to_hash_bucket_fast(raw, feature.hash_buckets)


def _assert_same_as_reference(schema, features, names=None):
    ids, dense = (t.numpy() for t in FeatureProcessor(schema, names)(features))
    want_ids, want_dense = _reference(schema, features, names)
    np.testing.assert_array_equal(ids, want_ids)
    # The same float ops on the same values. Within 1 ulp, not bit for bit: TensorFlow's
    # float32 log1p gives the last few elements of a tensor (those past its last full SIMD
    # packet) by another code path, 1 ulp apart at times, so even the per-field graph's
    # bits depend on where a value sits in the batch (see the next test).
    np.testing.assert_array_max_ulp(dense, want_dense, maxulp=1)
    assert dense.size == 0 or np.mean(dense == want_dense) > 0.999
    return ids, dense


def test_log1p_bits_depend_on_the_position_in_the_tensor_by_at_most_1_ulp():
    value = np.float32(np.expm1(3.178053855895996))
    logs = tf.math.log1p(np.full(17, value, np.float32)).numpy()
    np.testing.assert_array_max_ulp(logs, np.full(17, logs[0]), maxulp=1)


def _schema(categorical, dense=(), **extra):
    columns = ["label"] + sorted(
        {c.get("source", c["name"]) for c in categorical} | {d["name"] for d in dense}
    )
    return parse_schema(
        {"name": "t", "format": "csv", "columns": columns, "label": "label",
         "categorical": list(categorical), "dense": list(dense), **extra}
    )  # fmt: skip


def _one(schema, raw, kind=tf.string):
    """Local ids of the only categorical feature for raw values [B]."""
    column = schema.categorical[0].column
    ids, _ = FeatureProcessor(schema)({column: tf.constant(raw, kind)})
    return ids.numpy()[:, 0]


# ------------------------------------------------------------------ hand-worked values
def test_hashed_ids_are_the_63_bit_hash_modulo_the_bucket_count():
    schema = _schema([{"name": "C1", "hash_buckets": 1000}, {"name": "C2", "hash_buckets": 7}])
    raw = ["68fd1e64", "", "68fd1e64", "80e26c9b"]
    ids, _ = FeatureProcessor(schema)({"C1": tf.constant(raw), "C2": tf.constant(raw)})
    full = tf.strings.to_hash_bucket_fast(raw, HASH_SPACE).numpy()
    np.testing.assert_array_equal(ids.numpy()[:, 0], full % 1000)
    np.testing.assert_array_equal(ids.numpy()[:, 1], 1000 + full % 7)  # C2's block at 1000
    assert ids.numpy()[0, 0] == ids.numpy()[2, 0] and ids.numpy()[:, 0].min() >= 0
    assert ids.numpy()[:, 0].max() < 1000 and ids.numpy()[:, 1].max() < 1007


def test_integer_ids_with_offset_and_oov():
    schema = _schema([{"name": "item", "num_ids": 5, "id_offset": 957}])
    raw = ["957", "961", "962", "956", "", "abc", " 958 "]
    np.testing.assert_array_equal(_one(schema, raw), [0, 4, 5, 5, 5, 5, 1])
    # int64 input (TFX writes integer columns as int64) takes the same path.
    np.testing.assert_array_equal(_one(schema, [957, 961, 999], tf.int64), [0, 4, 5])


def test_hour_of_day_and_weekday_from_avazu_hour():
    schema = _schema(
        [
            {"name": "hour_of_day", "num_ids": 24, "source": "hour", "derive": "hour_of_day"},
            {"name": "weekday", "num_ids": 7, "source": "hour", "derive": "weekday"},
        ]
    )
    # 2014-10-21 was a Tuesday, 2014-10-26 a Sunday, 2000-02-29 a Tuesday (Monday = 0).
    raw = tf.constant(["14102100", "14102623", "00022905", "garbage", "14132100"])
    ids, _ = FeatureProcessor(schema)({"hour": raw})
    np.testing.assert_array_equal(ids.numpy()[:, 0], [0, 23, 5, 24, 24])
    np.testing.assert_array_equal(ids.numpy()[:, 1], 25 + np.array([1, 6, 1, 7, 7]))


def test_dense_clip_log1p_and_missing_per_column():
    schema = _schema(
        [{"name": "C1", "hash_buckets": 3}],
        [
            {"name": "I1", "transform": "log1p"},
            {"name": "I2", "clip_max": 10.0},
            {"name": "I3"},
            {"name": "I4", "transform": "log1p", "clip_max": np.e - 1},
            {"name": "I5", "clip_max": -2.0},
        ],
    )
    # Rows 5 and 6: +-inf, which readers refuse, is served as missing (not NaN scores).
    inf = [np.inf, -np.inf]
    raw = {
        "C1": tf.constant(["a"] * 6),
        "I1": tf.constant([0.0, np.e - 1, -3.0, np.nan, *inf]),
        "I2": tf.constant([5.0, 50.0, -50.0, np.nan, *inf]),
        "I3": tf.constant([5.0, 50.0, -50.0, np.nan, *inf]),
        "I4": tf.constant([0.0, 100.0, -1.0, np.nan, *inf]),
        "I5": tf.constant([5.0, -3.0, 0.0, np.nan, *inf]),  # missing stays 0, not the clip
    }
    _, dense = FeatureProcessor(schema)(raw)
    want = [[0, 5, 5, 0, -2], [1, 10, 50, 1, -3], [0, -50, -50, 0, -2]] + [[0] * 5] * 3
    np.testing.assert_allclose(dense.numpy(), want, atol=1e-6)
    _assert_same_as_reference(schema, raw)


def test_mixed_kinds_come_back_in_schema_order_and_input_types():
    schema = _schema(
        [
            {"name": "a", "num_ids": 3},
            {"name": "b", "hash_buckets": 5},
            {"name": "hod", "num_ids": 24, "source": "t", "derive": "hour_of_day"},
            {"name": "c", "num_ids": 4, "id_offset": 10},
            {"name": "d", "hash_buckets": 2},
        ],
        [{"name": "x", "transform": "log1p"}],
    )
    features = {
        "a": tf.constant([0, 2, 7], tf.int64),  # integer ids as int64, the others as text
        "b": tf.constant([[3], [4], [3]], tf.int64),  # hashed as decimal text; [B, 1]
        "t": tf.constant(["14102105", "x", "14102123"]),
        "c": tf.constant(["10", "13", "9"]),
        "d": tf.constant(["u", "", "u"]),
        "x": tf.constant([1.0, np.nan, 3.0], tf.float64),
    }
    ids, dense = _assert_same_as_reference(schema, features)
    np.testing.assert_array_equal(ids[:, 0], [0, 2, 3])
    np.testing.assert_array_equal(ids[:, 2], 4 + 5 + np.array([5, 24, 23]))
    np.testing.assert_array_equal(ids[:, 3], 4 + 5 + 25 + np.array([0, 3, 4]))
    assert ids[0, 1] == ids[2, 1] == 4 + tf.strings.to_hash_bucket_fast("3", HASH_SPACE) % 5
    assert dense.shape == (3, 1)


def test_processor_offsets_are_the_same_for_a_feature_subset():
    schema = load_schema("frappe")
    full = FeatureProcessor(schema)
    subset = FeatureProcessor(schema, ["item", "city"])
    features = {c: tf.constant(["958"]) for c in schema.input_columns}
    features["city"] = tf.constant(["5150"])
    full_ids, _ = full(features)
    subset_ids, dense = subset({"item": features["item"], "city": features["city"]})
    names = [f.name for f in schema.categorical]
    np.testing.assert_array_equal(
        subset_ids.numpy()[0], full_ids.numpy()[0][[names.index("item"), names.index("city")]]
    )
    # user block: 957 + 1 OOV rows, so item id 958 (local 1) is row 958 + 1.
    assert subset_ids.numpy()[0][0] == 958 + 1
    assert full.num_table_rows == sum(f.num_ids + 1 for f in schema.categorical)
    assert dense.shape == (1, 0)


def test_processor_names_missing_columns():
    schema = load_schema("frappe")
    with pytest.raises(KeyError, match="Missing input columns"):
        FeatureProcessor(schema)({"user": tf.constant(["1"])})


def test_the_criteo_graph_hashes_all_fields_in_one_op():
    schema = load_schema("criteo")
    processor = FeatureProcessor(schema)
    specs = {
        c: tf.TensorSpec([None], tf.string if schema.is_string_column(c) else tf.float32)
        for c in schema.input_columns
    }
    graph = tf.function(processor).get_concrete_function(specs).graph
    skip = {"Placeholder", "Const", "Identity"}
    ops = [op.type for op in graph.get_operations() if op.type not in skip]
    assert ops.count("StringToHashBucketFast") == 1
    assert ops.count("Log1p") == 1 and ops.count("IsFinite") == 1
    # 26 hashed fields and 13 dense columns; one op per field, as before, would be >= 39.
    assert len(ops) <= 10, ops


# ----------------------------------------------------------------- real samples
@pytest.fixture(scope="module")
def shared_data():
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA} (kept outside the repository)")
    return SHARED_DATA


def _read_all(schema, path, batch_size=100_000):
    features, _ = next(iter(make_dataset(schema, str(path), batch_size)))
    return features


def test_criteo_sample_matches_the_per_field_reference(shared_data):
    schema = load_schema("criteo")
    features = _read_all(schema, shared_data / "criteo" / "criteo_kaggle_train_head9999.txt")
    assert features["C1"].shape == (9999,)
    ids, dense = _assert_same_as_reference(schema, features)
    assert (features["C22"].numpy() == b"").any() and np.isnan(features["I12"].numpy()).any()
    assert (dense == 0).any() and dense.max() > 5  # log1p of large counts
    # The light net's serving subset: the same rows.
    light = [f"C{i}" for i in range(1, 27)] + ["I1", "I5"]
    _assert_same_as_reference(schema, features, light)
    # Hashing version 1 put about half of the values in another row (those whose 64-bit
    # fingerprint is >= HASH_SPACE): a version-1 table is not readable by version 2.
    c3 = schema.categorical[2]
    old = _hash_v1(c3, features["C3"]).numpy()
    assert 0.3 < np.mean(old != ids[:, 2] - 3000) < 0.7


def test_criteo_sample_as_integer_ids_and_clipped_dense(shared_data):
    """The same file read with every feature kind the schema allows: integer ids with an
    offset (I1, I2 may be negative or missing), clip with and without log1p, none."""
    criteo = load_schema("criteo")
    schema = parse_schema(
        {
            "name": "criteo_kinds",
            "format": "tsv",
            "columns": list(criteo.columns),
            "label": "label",
            "dense": [
                {"name": "I3", "clip_max": 100.0},
                {"name": "I4", "transform": "log1p", "clip_max": 20.0},
                {"name": "I5"},
                {"name": "I6", "transform": "log1p"},
            ],
            "categorical": [
                {"name": "I1", "num_ids": 30},
                {"name": "C1", "hash_buckets": 100},
                {"name": "I2", "num_ids": 100, "id_offset": -3},
                {"name": "C2", "hash_buckets": 1000},
            ],
        }
    )
    features = _read_all(schema, shared_data / "criteo" / "criteo_kaggle_train_head9999.txt")
    ids, dense = _assert_same_as_reference(schema, features)
    i1 = ids[:, 0]
    assert (i1 == 30).any() and (i1 < 30).any()  # missing/large -> OOV; small -> own row
    assert (features["I2"].numpy().astype(str).astype(object) == "-1").any()
    assert dense[:, 0].max() == 100.0 and dense[:, 1].max() <= np.log1p(20.0) + 1e-6


def test_avazu_sample_matches_the_per_field_reference(shared_data):
    schema = load_schema("avazu")
    features = _read_all(schema, shared_data / "avazu" / "avazu_train_head8999.csv")
    ids, _ = _assert_same_as_reference(schema, features)
    names = [f.name for f in schema.categorical]
    base = ids[:, names.index("hour_of_day")]
    hours = np.array([int(h[-2:]) for h in features["hour"].numpy()])
    np.testing.assert_array_equal(base - base.min() + hours.min(), hours)
    weekday = ids[:, names.index("weekday")] - ids[:, names.index("weekday")].min()
    assert set(weekday) <= set(range(7))


def test_frappe_validation_matches_the_per_field_reference(shared_data):
    schema = load_schema("frappe")
    features = _read_all(schema, shared_data / "frappe" / "frappe.validation.libfm")
    assert features["user"].shape == (57722,)
    ids, _ = _assert_same_as_reference(schema, features)
    # libfm indices are global: each field's value minus its id_offset is its local id.
    items = features["item"].numpy().astype(int)
    np.testing.assert_array_equal(ids[:, 1], 958 + items - 957)


def test_a_model_with_derived_fields_checkpoints(tmp_path):
    # Avazu's hour_of_day and weekday share one source column; the processor's grouping of
    # them once broke every checkpoint save of such a model (a tracked dict mutated after
    # assignment), so no Avazu run could save its first epoch.
    from rocketctr.config.core import Config
    from rocketctr.model.cotrain import build_model

    model = build_model(Config.from_dict({"model": {"embedding_dim": 2}}), load_schema("avazu"))
    path = tf.train.Checkpoint(model=model).save(str(tmp_path / "ckpt"))
    assert tf.train.list_variables(path)
