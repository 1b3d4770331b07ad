"""The PFD flavour of the synthetic generator: privileged dwell time, CTR and CVR tasks."""

import numpy as np
import pytest

from rocketctr.data import synthetic
from rocketctr.metrics import auc
from rocketctr.schema import load_schema


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
