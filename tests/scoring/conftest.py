"""Fixtures of the scoring tests: a co-trained run of tiny nets on a schema with users."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from rocketctr.training import train
from tests.helpers import tiny_config, write_rows

USERS_SCHEMA = {
    "name": "tiny_users",
    "format": "tsv",
    "columns": ["label", "user", "item", "x"],
    "label": "label",
    "dense": [{"name": "x"}],
    "categorical": [{"name": "user", "hash_buckets": 50}, {"name": "item", "hash_buckets": 50}],
    "user_id": "user",
}
# 12 hand-made rows, 3 users: u1 and u2 have both classes, u3 clicks every time.
EVAL_ROWS = [
    (1, "u1", "a", 2.0), (0, "u1", "b", -1.0), (0, "u1", "c", 0.5), (1, "u1", "d", 1.5),
    (0, "u2", "a", -2.0), (1, "u2", "e", 0.1), (0, "u2", "f", -0.3), (0, "u2", "g", 0.9),
    (1, "u3", "a", 1.0), (1, "u3", "b", 0.0), (1, "u3", "h", -0.5), (0, "u4", "z", 0.2),
]  # fmt: skip


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny schema with users, training rows where x and the item carry the label, the
    hand-made eval file, and a co-trained run with its export.

    Returns:
        {"schema": schema path, "train": train file, "eval": eval file, "eval_rows": its
        rows as (label, user, item, x), "config": the run's config, "run": its model dir}.
    """
    directory = tmp_path_factory.mktemp("tiny")
    schema_path = directory / "schema.yaml"
    schema_path.write_text(yaml.safe_dump(USERS_SCHEMA))
    rng = np.random.default_rng(0)
    rows = []
    for _ in range(1500):
        x, item = rng.normal(), f"i{rng.integers(0, 20)}"
        logit = 1.5 * x + (0.8 if item < "i10" else -0.8)
        label = int(rng.random() < 1 / (1 + np.exp(-logit)))
        rows.append((label, f"u{rng.integers(0, 30)}", item, round(x, 3)))
    train_file = write_rows(directory / "train.tsv", rows)
    eval_file = write_rows(directory / "eval.tsv", EVAL_ROWS)
    config = tiny_config(schema=str(schema_path), train={"batch_size": 64, "num_epochs": 2})
    model_dir = directory / "run"
    result = train.train(config, [train_file], [eval_file], model_dir, verbose=0)
    # Hand-made eval rows for the metric definitions: the net need not rank well on them
    # (the export gate is tested in tests/serving/test_gate.py).
    train.export_trained(result, [eval_file], model_dir / "export", force=True)
    return {
        "schema": schema_path,
        "train": train_file,
        "eval": eval_file,
        "eval_rows": EVAL_ROWS,
        "config": config,
        "run": model_dir,
    }
