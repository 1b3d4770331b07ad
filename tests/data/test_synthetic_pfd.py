"""The PFD flavour of the synthetic generator: privileged dwell time, CTR and CVR tasks."""

import numpy as np
import pytest

from rocketctr.data import synthetic
from rocketctr.features.schema import load_schema
from rocketctr.scoring.metrics import auc


def test_rows_follow_the_schema_and_dwell_time_is_strongly_predictive():
    schema = load_schema("synthetic_pfd")
    ctr = synthetic.generate_pfd(5000, seed=3)
    assert list(ctr.columns) == list(schema.columns)
    assert 0.2 < ctr["label"].mean() < 0.5
    # The privileged signal alone ranks clicks far better than chance...
    assert auc(ctr["label"].to_numpy(), ctr["dwell_time"].to_numpy()) > 0.75
    cvr = synthetic.generate_pfd(5000, seed=3, task="cvr")
    assert cvr["label"].mean() < ctr["label"].mean()  # conversions are rarer than clicks
    assert auc(cvr["label"].to_numpy(), cvr["dwell_time"].to_numpy()) > 0.75
    # ...and the catalogue lists every item with the attributes rows carry.
    items = synthetic.pfd_item_catalogue().set_index("item_id")
    assert len(items) == synthetic.PFD_NUM_ITEMS
    joined = items.loc[ctr["item_id"]]
    np.testing.assert_array_equal(joined["item_brand"].to_numpy(), ctr["item_brand"].to_numpy())
    with pytest.raises(ValueError, match="task must be one of"):
        synthetic.generate_pfd(10, task="ltv")


def test_ensure_synthetic_pfd_writes_once(tmp_path):
    train, evaluation = synthetic.ensure_synthetic_pfd(tmp_path, 50, 20, seed=1)
    assert train.read_text().splitlines()[0] == ",".join(synthetic.PFD_COLUMNS)
    assert len(evaluation.read_text().splitlines()) == 21
    mtime = train.stat().st_mtime_ns
    assert synthetic.ensure_synthetic_pfd(tmp_path, 50, 20, seed=1)[0].stat().st_mtime_ns == mtime


def test_click_sequences_plant_an_effect_of_earlier_clicks_of_the_candidates_category():
    schema = load_schema("synthetic_sequence")
    plain = synthetic.generate_pfd(20000, seed=3)
    rows = synthetic.generate_pfd(20000, seed=3, sequence=True)
    assert list(rows.columns) == list(schema.columns)
    assert rows["user_id"].equals(plain["user_id"])  # the same impressions' users
    clicks = rows["click_sequence"].str.split("|").map(lambda v: [i for i in v if i])
    lengths = clicks.map(len)
    assert lengths.min() == 0 and lengths.max() == synthetic.SEQUENCE_LENGTH
    category = synthetic.pfd_item_catalogue().set_index("item_id")["item_category"]
    matches = np.array(
        [
            sum(category[i] == c for i in items)
            for items, c in zip(clicks, rows["item_category"], strict=True)
        ]
    )
    labels = rows["label"].to_numpy()
    # Every match adds SEQUENCE_EFFECT to the logit: clicks rise with the matches.
    none, some, many = (labels[m].mean() for m in (matches == 0, matches == 1, matches >= 3))
    assert none + 0.05 < some < many - 0.05
    assert 0.1 < (matches > 0).mean() < 0.6
    # The category sequence lists the clicks' categories, one for one.
    categories = rows["click_category_sequence"].str.split("|").map(lambda v: [c for c in v if c])
    assert categories.tolist() == clicks.map(lambda items: [category[i] for i in items]).tolist()


def test_ensure_synthetic_writes_sequences_for_their_schema(tmp_path):
    train, _ = synthetic.ensure_synthetic("synthetic_sequence", tmp_path, 30, 10)
    assert train.name == "pfd_ctr_sequence_train_30_s0.csv"
    assert train.read_text().splitlines()[0].endswith(",click_sequence,click_category_sequence")
