"""Training's guards for large tables: how many epoch checkpoints are kept
(`train.keep_checkpoints`), and one warning for an embedding optimizer that updates every
row on every step."""

from __future__ import annotations

import rocketctr  # noqa: F401  (selects Keras 2 before TensorFlow loads)

# isort: split
import pytest
import yaml

from rocketctr.config.core import Config, ConfigError
from rocketctr.runs.rundir import checkpoint_paths
from rocketctr.training.train import train

ROWS = "".join(f"{i % 2}\t{i % 5}\tv{i % 3}\tw{i % 4}\n" for i in range(16))


def _setup(tmp_path, buckets: int = 10):
    data = tmp_path / "rows.tsv"
    data.write_text(ROWS)
    schema = tmp_path / "small.yaml"
    schema.write_text(yaml.safe_dump({
        "name": "small", "format": "tsv", "columns": ["label", "I1", "C1", "C2"],
        "label": "label", "dense": [{"name": "I1"}],
        "categorical": [{"name": "C1", "hash_buckets": buckets}, {"name": "C2", "hash_buckets": 7}],
    }))  # fmt: skip
    return str(data), str(schema)


def _config(schema: str, **train_keys) -> Config:
    return Config.from_dict(
        {
            "schema": schema,
            "model": {
                "embedding_dim": 2,
                "booster": {"name": "dcn", "hidden_units": [4], "num_cross_layers": 1},
                "light": {"name": "mlp", "hidden_units": [2]},
            },
            "train": {"batch_size": 8, "checkpoint_every_steps": 0, **train_keys},
        }
    )


def test_keep_checkpoints_keeps_that_many_and_may_change_on_resume(tmp_path):
    data, schema = _setup(tmp_path)
    run = tmp_path / "run"
    train(_config(schema, num_epochs=3, keep_checkpoints=1), [data], [data], run, verbose=0)
    assert [p.rsplit("-", 1)[1] for p in checkpoint_paths(run / "checkpoints")] == ["6"]
    # Keeping more (or fewer) does not change what a checkpoint means: the run resumes.
    train(_config(schema, num_epochs=5, keep_checkpoints=2), [data], [data], run, verbose=0)
    assert [p.rsplit("-", 1)[1] for p in checkpoint_paths(run / "checkpoints")] == ["8", "10"]


def test_keep_checkpoints_is_at_least_one():
    with pytest.raises(ConfigError, match=r"^Config key train.keep_checkpoints must be >= 1\. "):
        Config().replace({"train.keep_checkpoints": 0})
    assert Config().train.keep_checkpoints == 3


@pytest.mark.parametrize(
    ("optimizer", "buckets", "warned"),
    [
        ("adam", 1_000_001, True),  # 1,000,008 rows with C2's
        ("ftrl", 1_000_001, True),
        ("adam", 999_990, False),  # 999,997 rows: not above 1M
        ("lazy_adam", 1_000_001, False),
        ("adagrad", 1_000_001, False),
    ],
)
def test_a_dense_update_optimizer_on_a_table_above_1m_rows_warns_once(
    tmp_path, capsys, optimizer, buckets, warned
):
    data, schema = _setup(tmp_path, buckets)
    rate = {"name": optimizer, "learning_rate": 0.01}
    config = _config(schema, num_epochs=1, embedding_optimizer=rate)
    train(config, [data], [data], tmp_path / "run", verbose=0)
    lines = [line for line in capsys.readouterr().out.splitlines() if "embedding_optimizer" in line]
    if not warned:
        assert lines == []
        return
    assert lines == [
        f"WARNING: train.embedding_optimizer {optimizer} updates all {buckets + 7:,} rows of "
        "the embedding table on every step, not only the rows the batch read (adam at 10M "
        "rows: 4.3x slower per step than adagrad or lazy_adam, and 2.7 GB more RAM); use "
        "lazy_adam (Adam on the rows read) or adagrad."
    ]
