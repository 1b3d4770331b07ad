import numpy as np
import pytest
import tensorflow as tf

from rocketctr.layers.features import FeatureProcessor, categorical_ids, dense_values
from rocketctr.schema import CategoricalFeature, DenseFeature, load_schema


def test_hashed_ids_match_the_tf_op_and_stay_in_range():
    feature = CategoricalFeature("C1", hash_buckets=1000)
    raw = tf.constant(["68fd1e64", "", "68fd1e64", "80e26c9b"])
    ids = categorical_ids(feature, raw).numpy()
    np.testing.assert_array_equal(ids, tf.strings.to_hash_bucket_fast(raw, 1000).numpy())
    assert ids[0] == ids[2] and ids.min() >= 0 and ids.max() < 1000


def test_integer_ids_with_offset_and_oov():
    feature = CategoricalFeature("item", num_ids=5, id_offset=957)
    raw = tf.constant(["957", "961", "962", "956", "", "abc", " 958 "])
    np.testing.assert_array_equal(categorical_ids(feature, raw).numpy(), [0, 4, 5, 5, 5, 5, 1])
    # int64 input (TFX writes integer columns as int64) takes the same path.
    ints = tf.constant([957, 961, 999], tf.int64)
    np.testing.assert_array_equal(categorical_ids(feature, ints).numpy(), [0, 4, 5])


def test_hour_of_day_and_weekday_from_avazu_hour():
    hour = CategoricalFeature("hour_of_day", num_ids=24, source="hour", derive="hour_of_day")
    weekday = CategoricalFeature("weekday", num_ids=7, source="hour", derive="weekday")
    # 2014-10-21 was a Tuesday, 2014-10-26 a Sunday, 2000-02-29 a Tuesday (Monday = 0).
    raw = tf.constant(["14102100", "14102623", "00022905", "garbage", "14132100"])
    np.testing.assert_array_equal(categorical_ids(hour, raw).numpy(), [0, 23, 5, 24, 24])
    np.testing.assert_array_equal(categorical_ids(weekday, raw).numpy(), [1, 6, 1, 7, 7])


def test_dense_log1p_clips_negatives_and_zeroes_missing():
    feature = DenseFeature("I1", transform="log1p")
    raw = tf.constant([0.0, np.e - 1, -3.0, np.nan])
    np.testing.assert_allclose(dense_values(feature, raw).numpy(), [0.0, 1.0, 0.0, 0.0], atol=1e-6)
    clipped = DenseFeature("I2", clip_max=10.0)
    np.testing.assert_allclose(
        dense_values(clipped, tf.constant([5.0, 50.0, np.nan])), [5.0, 10.0, 0.0]
    )


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
