"""TFRecord files of `tf.train.Example`, as TFX ExampleGen writes them.

GZIP is detected per file, by a `.gz` suffix or the gzip magic bytes. Each column's kind
(bytes, int64 or float list) is taken from the first record that has it (first file first),
because TFX's CsvExampleGen writes integer columns as int64 where a schema may call them
categorical. Records are parsed a chunk at a time with `tf.io.parse_example` into ragged
features, so a missing feature ("" / NaN) and a repeated one (malformed) can be told apart;
the repeated values of a multi-valued column are joined by its separator. Row numbers in
messages are 1-based record indices within the file.
"""

from __future__ import annotations

import tensorflow as tf

from rocketctr.data.bad_row_report import BadRowError
from rocketctr.data.checks import (
    ParsedChunk,
    RowCheck,
    check_finite,
    column_problem,
    label_values,
    parse_number,
)
from rocketctr.data.raw_values import first_values, joined_values, raw_values
from rocketctr.data.reader import Reader, check_whole, compression_type

_KIND_DTYPES = {"bytes_list": tf.string, "int64_list": tf.int64, "float_list": tf.float32}
# Records looked at to find each column's kind before falling back to the schema's view.
_MAX_RECORDS_TO_INFER_KINDS = 1000
# Every TFRecord file a reader of this process opened, and its compression: a DataLossError
# (a truncated or corrupt record) names no file, so `damaged_file` looks for it here.
_OPENED: dict[str, str] = {}


def damaged_file() -> tuple[str, int, tf.errors.DataLossError] | None:
    """The truncated or corrupt TFRecord file among those this process read: (its path, the
    records that read whole before the damage, the error); None if none is found. Reads
    them again, the most recently opened first: call it only after a DataLossError."""
    for path, compression in reversed(list(_OPENED.items())):
        records = 0
        try:
            for _ in tf.data.TFRecordDataset(path, compression_type=compression):
                records += 1
        except tf.errors.DataLossError as e:
            return path, records, e
    return None


class TFRecordReader(Reader):
    """Reads TFRecord files of serialized `tf.train.Example` protos, plain or GZIP."""

    unit = "record"

    def __init__(self, *args, **kwargs) -> None:  # Reader's arguments
        super().__init__(*args, **kwargs)
        self._compression_types = [compression_type(p, sniff=True) for p in self.paths]
        check_whole(self.paths, self._compression_types)
        for path, compression in zip(self.paths, self._compression_types, strict=True):
            _OPENED.pop(path, None)  # re-inserted: the most recent last
            _OPENED[path] = compression
        self._compression = tf.constant(self._compression_types)
        self.dtypes = self._infer_dtypes()

    def _infer_dtypes(self) -> dict[str, tf.DType]:
        """Each column's stored dtype, from the first record that has the column.

        Raises:
            BadRowError: a column of the schema is in none of the records looked at (a
                misnamed feature would otherwise read as missing in every row), as a
                Parquet file without the column is refused.
        """
        kinds: dict[str, str] = {}
        names: set[str] = set()  # every feature key seen, for the message
        seen = 0
        for path, compression in zip(self.paths, self._compression_types, strict=True):
            records = tf.data.TFRecordDataset(path, compression_type=compression)
            for record in records.take(_MAX_RECORDS_TO_INFER_KINDS - seen):
                seen += 1
                feature = tf.train.Example.FromString(record.numpy()).features.feature
                names.update(feature.keys())
                for column in self.read_columns:
                    if column not in kinds and column in feature:
                        kinds[column] = feature[column].WhichOneof("kind")
                if len(kinds) == len(self.read_columns):
                    break
            if len(kinds) == len(self.read_columns) or seen >= _MAX_RECORDS_TO_INFER_KINDS:
                break
        missing = [c for c in self.read_columns if c not in kinds]
        if missing and seen:
            files = self.paths[0] + (
                f" and {len(self.paths) - 1} more" if len(self.paths) > 1 else ""
            )
            raise BadRowError(
                f"{files}: feature(s) {missing} required by schema "
                f"{self.schema.source or self.schema.name!r} are in none of the first {seen:,} "
                f"records (misnamed?). Features in them: {sorted(names)}"
            )
        dtypes = {}
        for column in self.read_columns:
            if kinds.get(column) in _KIND_DTYPES:
                dtypes[column] = _KIND_DTYPES[kinds[column]]
            else:  # only values of no kind (empty features) so far: the schema's view
                string = column != self.schema.label and self.schema.is_string_column(column)
                dtypes[column] = tf.string if string else tf.float32
        return dtypes

    def file_chunks(self, file_index: tf.Tensor) -> tf.data.Dataset:
        records = tf.data.TFRecordDataset(
            self.paths_tensor[file_index], compression_type=self._compression[file_index]
        )
        return self._enumerated_chunks(records, file_index)

    def parse(
        self, file_index: tf.Tensor, chunk_index: tf.Tensor, serialized: tf.Tensor
    ) -> ParsedChunk:
        num_rows = tf.size(serialized, out_type=tf.int64)
        row_numbers = chunk_index * self.rows_per_chunk + tf.range(num_rows) + 1
        parsed = tf.io.parse_example(
            serialized, {c: tf.io.RaggedFeature(self.dtypes[c]) for c in self.read_columns}
        )
        checks: list[tuple[int, RowCheck]] = []  # (column index, check)
        features = {}
        multi_valued = self.schema.multi_valued_columns
        for column in self.read_columns:
            index = self.column_index[column]
            ragged = parsed[column]
            if column in multi_valued:  # repeated values are its values
                features[column] = joined_values(ragged, multi_valued[column].separator)
                continue
            checks.append((index, _single_value_check(ragged.row_lengths(), column, index)))
            values, present = first_values(ragged)
            string = column != self.schema.label and self.schema.is_string_column(column)
            if not string and values.dtype == tf.string:  # numbers stored as bytes: validate
                required = column == self.schema.label
                features[column], check = parse_number(values, column, index, required=required)
                checks.append((index, check))
            else:
                features[column] = raw_values(values, present, string)
                if column == self.schema.label:
                    checks.append((index, _present_check(present, column, index)))
                elif not string:  # a stored inf would turn the model into NaN
                    checks.append((index, check_finite(features[column], column, index)))
        label_index = self.column_index[self.schema.label]
        labels, value_check = label_values(
            features.pop(self.schema.label), self.schema.label, label_index, self.label_values
        )
        checks.append((label_index, value_check))
        # Report in column order; within a column the value-count check comes first (stable).
        checks.sort(key=lambda item: item[0])
        return ParsedChunk(
            file_index=file_index,
            starts_file=tf.equal(chunk_index, 0),
            row_numbers=row_numbers,
            features={c: features[c] for c in self.output_columns},
            labels=labels,
            checks=[check for _, check in checks],
        )


def _single_value_check(counts: tf.Tensor, column: str, index: int) -> RowCheck:
    """A feature with several values is malformed here: every column is one value per row."""

    def describe(row: tf.Tensor) -> tf.Tensor:
        return column_problem(
            column, index, "expected one value, received ", tf.strings.as_string(counts[row])
        )

    return RowCheck(counts > 1, describe)


def _present_check(present: tf.Tensor, column: str, index: int) -> RowCheck:
    def describe(row: tf.Tensor) -> tf.Tensor:
        del row
        return column_problem(column, index, "expected a number, received no value")

    return RowCheck(tf.logical_not(present), describe)
