"""Fixtures shared across test folders."""

import pytest

from rocketctr.data import synthetic


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """(train, eval) paths of 6,000 / 1,000 synthetic Criteo-shaped rows, per test module."""
    directory = tmp_path_factory.mktemp("synthetic")
    return synthetic.ensure_synthetic_criteo(directory, 6000, 1000)
