"""Parquet: streamed record batch by record batch with pyarrow, never a whole file.

Each file is read with `ParquetFile.iter_batches` (only the columns the dataset yields plus
the label) inside `tf.data.Dataset.from_generator`, which yields whole column batches; the
conversion per batch is vectorised pyarrow compute. Categorical columns of any type become
strings (integers as their decimal string), nulls become "" (categorical) or NaN (dense).
Numeric columns stored as strings are checked in-graph like text. Row numbers in messages
are 1-based row indices within the file.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs
import pyarrow.parquet as pq
import tensorflow as tf

from rocketctr.data.bad_row_report import BadRowError
from rocketctr.data.checks import (
    ParsedChunk,
    check_finite,
    check_present,
    first_of,
    label_values,
    parse_number,
)
from rocketctr.data.reader import Reader


def _is_numeric(arrow_type: pa.DataType) -> bool:
    return (
        pa.types.is_integer(arrow_type)
        or pa.types.is_floating(arrow_type)
        or pa.types.is_boolean(arrow_type)
        or pa.types.is_decimal(arrow_type)
    )


def _is_text(arrow_type: pa.DataType) -> bool:
    return pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type)


def _is_bytes(arrow_type: pa.DataType) -> bool:
    return pa.types.is_binary(arrow_type) or pa.types.is_large_binary(arrow_type)


def _is_list(arrow_type: pa.DataType) -> bool:
    return pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type)


def open_parquet(path: str) -> pq.ParquetFile:
    """Opens a local path, or a URI (gs://, s3://, hdfs://) through pyarrow's filesystems.

    Raises:
        BadRowError: the file is not a readable Parquet file (truncated, corrupt footer).
    """
    try:
        if "://" not in path:
            return pq.ParquetFile(path)
        filesystem, inner_path = pyarrow.fs.FileSystem.from_uri(path)
        return pq.ParquetFile(filesystem.open_input_file(inner_path))
    except (pa.ArrowInvalid, pa.ArrowIOError) as e:
        raise BadRowError(f"{path}: not a readable Parquet file ({_first_line(e)})") from None


def _first_line(error: Exception) -> str:
    """The error's first line, its control characters escaped (pyarrow quotes the bytes of
    a corrupt page raw)."""
    text = str(error).strip()
    line = text.splitlines()[0] if text else type(error).__name__
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in line)


class ParquetReader(Reader):
    """Reads Parquet files whose column names include the schema's label and features."""

    unit = "row"

    def __init__(self, *args, **kwargs) -> None:  # Reader's arguments
        super().__init__(*args, **kwargs)
        # Numeric columns travel as float32; a numeric column that the first file stores as
        # text travels as strings and is checked in-graph.
        with open_parquet(self.paths[0]) as parquet_file:
            first = parquet_file.schema_arrow
        self._check_columns(first, self.paths[0])
        self._as_float = {
            column: _is_numeric(first.field(column).type)
            for column in self.read_columns
            if column == self.schema.label or not self.schema.is_string_column(column)
        }
        specs = {
            column: tf.TensorSpec([None], tf.float32 if self._as_float.get(column) else tf.string)
            for column in self.read_columns
        }
        self._signature = (
            tf.TensorSpec([], tf.int64),  # file index
            tf.TensorSpec([], tf.int64),  # row number of the batch's first row, 1-based
            specs,
        )

    def _check_columns(self, arrow_schema: pa.Schema, path: str) -> None:
        missing = [c for c in self.read_columns if c not in arrow_schema.names]
        if missing:
            raise BadRowError(
                f"{path}: missing column(s) {missing} required by schema "
                f"{self.schema.source or self.schema.name!r}. Columns in the file: "
                f"{arrow_schema.names}"
            )
        for column in self.read_columns:
            arrow_type = arrow_schema.field(column).type
            numeric_column = column == self.schema.label or not self.schema.is_string_column(column)
            if numeric_column and not (_is_numeric(arrow_type) or _is_text(arrow_type)):
                raise BadRowError(
                    f"{path}: column {column!r} must be numeric or a string of numbers. "
                    f"Received type: {arrow_type}"
                )
            if column in self.schema.multi_valued_columns and _is_list(arrow_type):
                if not (
                    _is_text(arrow_type.value_type)
                    or _is_bytes(arrow_type.value_type)
                    or pa.types.is_integer(arrow_type.value_type)
                ):
                    raise BadRowError(
                        f"{path}: multi-valued column {column!r} must be a list of strings or "
                        f"integers, or a string of values. Received type: {arrow_type}"
                    )
            elif pa.types.is_nested(arrow_type):
                raise BadRowError(
                    f"{path}: column {column!r} must hold one value per row. "
                    f"Received type: {arrow_type}"
                )

    def file_chunks(self, file_index: tf.Tensor) -> tf.data.Dataset:
        return tf.data.Dataset.from_generator(
            self._generate, args=(file_index,), output_signature=self._signature
        )

    def _generate(self, file_index: np.int64) -> Iterator[tuple]:
        path = self.paths[int(file_index)]
        with open_parquet(path) as parquet_file:  # closed also when iteration stops early
            self._check_columns(parquet_file.schema_arrow, path)
            first_row = 1
            batches = parquet_file.iter_batches(
                batch_size=self.rows_per_chunk, columns=self.read_columns
            )
            while True:
                try:
                    batch = next(batches, None)
                except (pa.ArrowException, OSError) as e:  # corrupt pages, bad compression
                    # tf.data hands this message on (a BadRowError would lose its class).
                    raise ValueError(
                        f"{path}: the Parquet data from row {first_row:,} on cannot be read "
                        f"(corrupt file? {_first_line(e)})"
                    ) from None
                if batch is None:
                    return
                columns = {c: self._to_numpy(batch.column(c), c, path) for c in self.read_columns}
                yield file_index, first_row, columns
                first_row += batch.num_rows

    def _to_numpy(self, array: pa.Array, column: str, path: str) -> np.ndarray:
        try:
            if _is_list(array.type):  # a multi-valued column: its values, joined
                separator = self.schema.multi_valued_columns[column].separator
                values = pc.cast(array, pa.list_(pa.string()))
                # A null value is an empty one (dropped in the graph), not a null row.
                values = pa.ListArray.from_arrays(
                    values.offsets, pc.fill_null(values.values, ""), mask=values.is_null()
                )
                array = pc.binary_join(values, separator)
            if self._as_float.get(column):
                return pc.cast(array, pa.float32()).to_numpy(zero_copy_only=False)  # null: NaN
            if not _is_bytes(array.type):
                array = pc.cast(array, pa.string())  # ints as their decimal string
            empty = b"" if _is_bytes(array.type) else ""
            return pc.fill_null(array, empty).to_numpy(zero_copy_only=False)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
            raise BadRowError(
                f"{path}: column {column!r} of type {array.type} cannot be read like the "
                f"first file's ({self.paths[0]}): {e}"
            ) from e

    def parse(
        self, file_index: tf.Tensor, first_row: tf.Tensor, columns: dict[str, tf.Tensor]
    ) -> ParsedChunk:
        label = self.schema.label
        row_numbers = first_row + tf.range(tf.size(columns[label], out_type=tf.int64))
        checks, features = {}, {}
        for column in self.read_columns:
            index = self.column_index[column]
            values = columns[column]
            if column != label and self.schema.is_string_column(column):
                features[column] = values
            elif values.dtype == tf.float32:
                features[column] = values
                checks[index] = (
                    check_present(values, column, index)
                    if column == label
                    else check_finite(values, column, index)
                )
            else:
                features[column], checks[index] = parse_number(
                    values, column, index, required=column == label
                )
        label_index = self.column_index[label]
        labels, value_check = label_values(
            features.pop(label), label, label_index, self.label_values
        )
        checks[label_index] = first_of(checks[label_index], value_check)
        return ParsedChunk(
            file_index=file_index,
            starts_file=tf.equal(first_row, 1),
            row_numbers=row_numbers,
            features={c: features[c] for c in self.output_columns},
            labels=labels,
            checks=[checks[i] for i in sorted(checks)],
        )
