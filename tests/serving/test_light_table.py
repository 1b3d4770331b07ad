"""The export's table: filled block by block, the same bytes as one whole copy, in no more
memory than the rows it stores."""

from __future__ import annotations

import dataclasses

import rocketctr  # noqa: F401  (selects Keras 2 before TensorFlow loads)

# isort: split
import numpy as np
import pytest
import tensorflow as tf

from rocketctr.config.core import Config
from rocketctr.features.schema import load_schema
from rocketctr.layers.embedding import Embedding
from rocketctr.model.cotrain import build_model
from rocketctr.serving import light_table

SCHEMA = load_schema("criteo")
DIM = 4


def _table(schema, seed: int = 0) -> Embedding:
    rows = sum(f.num_rows for f in schema.categorical)
    table = Embedding(rows, DIM, name="shared_embedding")
    table.build(None)
    table.table.assign(tf.random.stateless_normal([rows, DIM], seed=[seed, 1]))
    return table


def _whole_copy(table, schema, names, dtype):
    """What the exporter stored before it copied by blocks: one gather of every light row,
    then the whole array converted."""
    blocks, start = [], 0
    for f in schema.categorical:
        if f.name in names:
            blocks.append(np.arange(start, start + f.num_rows))
        start += f.num_rows
    values = tf.nn.embedding_lookup(table.table, np.concatenate(blocks)).numpy()
    if dtype == "int8":
        return light_table.quantize_int8(values)
    return tf.cast(values, light_table._STORAGE[dtype]).numpy(), None


def _memory():
    try:
        return tf.config.experimental.get_memory_info("CPU:0")
    except ValueError:  # an allocator that keeps no statistics (oneDNN off)
        pytest.skip("TensorFlow's CPU allocator keeps no memory statistics here")


@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "int8"])
def test_blocks_store_the_bytes_of_one_whole_copy(dtype, monkeypatch):
    # C1, C3 and C20 privileged: the light rows are three ranges of the training table, and
    # blocks of 12,345 rows straddle the features' boundaries.
    schema = dataclasses.replace(SCHEMA, privileged=("C1", "C3", "C20"))
    names = [f.name for f in schema.categorical if f.name not in schema.privileged]
    table = _table(schema)
    monkeypatch.setattr(light_table, "BLOCK_BYTES", 12_345 * 4 * DIM)
    exported = light_table.LightTable(table, schema, names, dtype)
    rows, scales = _whole_copy(table, schema, names, dtype)
    assert exported.rows.dtype == light_table._STORAGE[dtype]
    assert exported.rows.shape == (672_675 - 2_000 - 100_000 - 10, DIM)
    assert exported.rows.numpy().tobytes() == rows.tobytes()
    if dtype == "int8":
        assert exported.scales.numpy().tobytes() == scales.tobytes()
    else:
        assert exported.scales is None


def test_the_training_table_is_read_one_block_at_a_time(monkeypatch):
    schema = dataclasses.replace(SCHEMA, privileged=("C3",))  # 572,675 rows stay
    names = [f.name for f in schema.categorical if f.name not in schema.privileged]
    table = _table(schema, seed=2)
    monkeypatch.setattr(light_table, "BLOCK_BYTES", 50_000 * 4 * DIM)
    lookup, reads = tf.nn.embedding_lookup, []

    def counted(params, ids, *args, **kwargs):
        reads.append(int(tf.size(ids)))
        return lookup(params, ids, *args, **kwargs)

    monkeypatch.setattr(tf.nn, "embedding_lookup", counted)
    for dtype in ("float32", "bfloat16", "int8"):
        reads.clear()
        light_table.LightTable(table, schema, names, dtype)
        # C1, C2 (3,000 rows), then C4... (569,675): 1 + 12 blocks, none above 50,000 rows.
        assert sum(reads) == 572_675 and max(reads) == 50_000 and len(reads) == 13, dtype


def test_every_row_in_float32_shares_the_training_buffer():
    table = _table(SCHEMA, seed=3)  # no privileged feature: the light net reads every row
    names = [f.name for f in SCHEMA.categorical]
    before = _memory()["current"]
    exported = light_table.LightTable(table, SCHEMA, names, "float32")
    assert _memory()["current"] - before < 2**20  # 672,675 x 4 floats (10 MiB) not copied
    assert exported.rows.name == "shared_embedding/light_rows:0"
    np.testing.assert_array_equal(exported.rows.numpy(), table.table.numpy())
    # The training table can still change; the export keeps what it took (copy on write).
    kept = exported.rows.numpy().copy()
    table.table.assign_add(tf.ones_like(table.table))
    np.testing.assert_array_equal(exported.rows.numpy(), kept)


def test_a_scoring_only_model_has_no_optimizer_slots_and_no_initial_table():
    config = Config.from_dict(
        {
            "model": {
                "embedding_dim": DIM,
                "booster": {"name": "dcn", "hidden_units": [8], "num_cross_layers": 1},
                "light": {"name": "mlp", "hidden_units": [4]},
            }
        }
    )
    scoring, trained = build_model(config, SCHEMA, train=False), build_model(config, SCHEMA)
    table_bytes = 672_675 * DIM * 4

    def optimizer_bytes(model):
        variables = [v for opt in model.all_optimizers for v in opt.variables()]
        return sum(v.shape.num_elements() * v.dtype.size for v in variables)

    assert optimizer_bytes(scoring) < 1024  # step counters at most
    assert optimizer_bytes(trained) > table_bytes  # Adagrad: one accumulator per row
    # Restored next: no initial value, so a restore takes the table's memory once.
    assert not scoring.embedding.table.is_initialized()
    assert scoring.embedding.table.name == trained.embedding.table.name
    assert scoring.embedding.table.shape == trained.embedding.table.shape == (672_675, DIM)
