import numpy as np
import pytest

from rocketctr.scoring import metrics


def test_auc_by_hand_with_ties():
    # Pairs (pos, neg): (0.9,0.1) win, (0.9,0.5) win, (0.5,0.1) win, (0.5,0.5) tie -> 3.5/4.
    assert metrics.auc([1, 1, 0, 0], [0.9, 0.5, 0.5, 0.1]) == pytest.approx(0.875)
    assert np.isnan(metrics.auc([1, 1], [0.2, 0.3]))


def test_logloss_by_hand():
    expected = -(np.log(0.8) + np.log(0.7)) / 2
    assert metrics.logloss([1, 0], [0.8, 0.3]) == pytest.approx(expected)


def test_gauc_weights_users_by_impressions_and_skips_single_class():
    labels = [1, 0, 0, 1, 0, 1, 1]
    scores = [0.9, 0.1, 0.8, 0.2, 0.3, 0.5, 0.6]
    users = ["a", "a", "b", "b", "b", "c", "c"]
    # a: AUC 1.0 over 2 rows; b: positive 0.2 beats neither 0.8 nor 0.3 -> 0.0 over 3 rows;
    # c: one class only, skipped.
    value, n_users = metrics.gauc(labels, scores, users)
    assert n_users == 2
    assert value == pytest.approx((1.0 * 2 + 0.0 * 3) / 5)
