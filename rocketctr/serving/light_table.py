"""The embedding rows a light export holds: only its own features' rows, optionally quantized.

Training keeps one shared table, every categorical feature owning a contiguous block of
rows at an offset from its position in the full schema (`FeatureProcessor`). An export
copies only the blocks of the light net's own features, next to each other in schema
order, so no row of a privileged (booster-only) feature ships:

    training table   [C1 | C2 (privileged) | C3 ...]      ids = local id + full offset
    exported table   [C1 | C3 ...]                        ids + (light offset − full offset)

The remap is one add of a per-field vector inside the exported graph; the feature processor
in front of it is the training one, unchanged.

Storage (`export.embedding_dtype`): float32 as trained; bfloat16 (rounded to nearest);
int8 with one float32 scale per row (max |value| / 127, values rounded to the nearest
step). Rows are turned back into float32 at lookup, so the tower sees float32 as in
training.

Memory: the exported table is made once, at its final size and dtype, and filled a block
of rows at a time (`BLOCK_BYTES` of float32 read from the training table, converted, written
in place), so an export never holds a second whole copy in numpy or in a temporary tensor.
When the light net reads every row in float32, the export's variable is made from the
training variable's value and shares its buffer (TensorFlow copies a buffer with two owners
only before a write), so nothing is copied; unless a gather has ever read the training
table (training does; a restored run has not): TensorFlow then copies it for the read.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from rocketctr.features.schema import Schema

ROWS = "light_rows"
SCALES = "light_row_scales"
_STORAGE = {"float32": tf.float32, "bfloat16": tf.bfloat16, "int8": tf.int8}
BLOCK_BYTES = 4 * 2**20  # float32 rows read from the training table per step


def light_rows(schema: Schema, feature_names: Sequence[str]) -> int:
    """Rows of the exported table: the blocks of the given categorical features."""
    names = set(feature_names)
    return sum(f.num_rows for f in schema.categorical if f.name in names)


def expected_variables(
    table_name: str, num_rows: int, dim: int, dtype: str
) -> dict[str, tuple[tuple[int, ...], tf.DType]]:
    """{variable name: (shape, dtype)} of a `LightTable` export, without building one."""
    out = {f"{table_name}/{ROWS}:0": ((num_rows, dim), _STORAGE[dtype])}
    if dtype == "int8":
        out[f"{table_name}/{SCALES}:0"] = ((num_rows,), tf.float32)
    return out


def quantize_int8(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """float32 rows [R, d] -> (int8 rows [R, d], float32 scales [R]); row ≈ int8 · scale."""
    scales = np.abs(values).max(axis=1) / 127.0
    scales[scales == 0] = 1.0  # an all-zero row stays zero with any scale
    quantized = np.clip(np.rint(values / scales[:, None]), -127, 127).astype(np.int8)
    return quantized, scales.astype(np.float32)


class LightTable(tf.Module):
    """The light features' rows of a trained table, as an export stores and reads them.

    Args:
        table: the training `Embedding` layer the light net reads (shared or its own).
        schema: the dataset schema (its categorical order defines the full offsets).
        feature_names: the light net's categorical features.
        dtype: "float32", "bfloat16" or "int8".
    """

    def __init__(
        self, table, schema: Schema, feature_names: Sequence[str], dtype: str = "float32"
    ) -> None:
        super().__init__(name="light_table")
        if dtype not in _STORAGE:
            raise ValueError(f"dtype must be one of {list(_STORAGE)}. Received: {dtype!r}")
        self.dtype = dtype
        names = set(feature_names)
        full_offset, light_offset, full_rows, num_rows = {}, {}, 0, 0
        ranges = []  # [start, stop) of each light block in the training table, merged
        for f in schema.categorical:
            full_offset[f.name] = full_rows
            if f.name in names:
                light_offset[f.name] = num_rows
                if ranges and ranges[-1][1] == full_rows:
                    ranges[-1] = (ranges[-1][0], full_rows + f.num_rows)
                else:
                    ranges.append((full_rows, full_rows + f.num_rows))
                num_rows += f.num_rows
            full_rows += f.num_rows
        self.num_rows = num_rows
        # A sequence reads its item feature's rows (a light sequence's item is light too).
        for f in schema.categorical:
            if f.sequence_of and f.name in names:
                full_offset[f.name] = full_offset[f.sequence_of]
                light_offset[f.name] = light_offset[f.sequence_of]
        self._shift = {n: light_offset[n] - full_offset[n] for n in light_offset}
        self.rows, self.scales = _copy_rows(table, ranges, num_rows, dtype)

    @property
    def variables_to_export(self) -> list[tf.Variable]:
        return [self.rows] + ([self.scales] if self.scales is not None else [])

    def lookup(self, ids: tf.Tensor, feature_names: Sequence[str]) -> tf.Tensor:
        """Row ids of the training layout [B, S] -> float32 embeddings [B, S, d].

        Args:
            ids: what a `FeatureProcessor` over `feature_names` returns (full offsets).
            feature_names: the feature of each of the S slots of `ids` (the processor's
                `slot_names`); all light features.
        """
        shift = tf.constant(np.asarray([self._shift[n] for n in feature_names], np.int64))
        ids = tf.maximum(ids + shift, 0)  # an empty slot (-1) reads a row the pooling masks
        rows = tf.gather(self.rows, ids)
        if self.scales is not None:
            return tf.cast(rows, tf.float32) * tf.gather(self.scales, ids)[..., None]
        return tf.cast(rows, tf.float32) if self.dtype != "float32" else rows


def _copy_rows(
    table, ranges: Sequence[tuple[int, int]], num_rows: int, dtype: str
) -> tuple[tf.Variable, tf.Variable | None]:
    """(rows, int8 scales or None): the rows of `ranges` of the training table, in `dtype`.

    Made once at their final size and filled block by block, so that no whole copy of the
    table exists beside them; every row as trained (float32, all rows) is not copied.
    """
    source, name = table.table, table.name
    dim = int(source.shape[1])
    every_row = list(ranges) == [(0, source.shape[0])]
    # (A ShardedVariable, the table split over parameter servers, is read block by block.)
    if dtype == "float32" and every_row and isinstance(source, tf.Variable):
        return tf.Variable(source.read_value(), trainable=False, name=f"{name}/{ROWS}"), None
    scales = None
    if dtype == "int8":
        scales = tf.Variable(tf.zeros([num_rows]), trainable=False, name=f"{name}/{SCALES}")
    rows = tf.Variable(
        tf.zeros([num_rows, dim], _STORAGE[dtype]), trainable=False, name=f"{name}/{ROWS}"
    )
    step, at = max(1, BLOCK_BYTES // (4 * dim)), 0
    for start, stop in ranges:
        for begin in range(start, stop, step):
            end = min(begin + step, stop)
            # embedding_lookup reads a ShardedVariable (parameter servers) as well, and
            # only these rows of a variable.
            block = tf.nn.embedding_lookup(source, tf.range(begin, end, dtype=tf.int64))
            if dtype == "int8":
                values, block_scales = quantize_int8(block.numpy())
                _write(scales, at, tf.constant(block_scales))
                block = tf.constant(values)
            _write(rows, at, tf.cast(block, _STORAGE[dtype]))
            at += end - begin
    return rows, scales


def _write(variable: tf.Variable, at: int, values: tf.Tensor) -> None:
    """variable[at : at + len(values)] = values, in place.

    The op writes into the variable's own buffer (nothing else refers to it); slicing the
    variable in Python (`variable[a:b].assign`) would first read it, and a buffer with two
    readers is copied whole before the write.
    """
    rank = len(values.shape)
    tf.raw_ops.ResourceStridedSliceAssign(
        ref=variable.handle,
        begin=[at] + [0] * (rank - 1),
        end=[at + int(values.shape[0])] + [int(d) for d in values.shape[1:]],
        strides=[1] * rank,
        value=values,
    )
