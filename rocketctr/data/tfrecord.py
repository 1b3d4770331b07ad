"""TFRecord files of `tf.train.Example`, as TFX ExampleGen writes them.

GZIP is detected per file, by a `.gz` suffix or the gzip magic bytes. A plain file's record
headers are walked before it is first read (`check_records`): TensorFlow's reader stops
quietly at a record header cut short. Each column's kind
(bytes, int64 or float list) is taken from the first record that has it (first file first),
because TFX's CsvExampleGen writes integer columns as int64 where a schema may call them
categorical. Records are parsed a chunk at a time with `tf.io.parse_example` into ragged
features, so a missing feature ("" / NaN) and a repeated one (malformed) can be told apart;
the repeated values of a multi-valued column are joined by its separator. Row numbers in
messages are 1-based record indices within the file.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Sequence

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
_KINDS = ("bytes_list", "float_list", "int64_list")  # tensorflow.Feature's oneof, in order
_DTYPE_KINDS = {dtype: kind for kind, dtype in _KIND_DTYPES.items()}
# Records looked at to find each column's kind before falling back to the schema's view.
_MAX_RECORDS_TO_INFER_KINDS = 1000
# Every TFRecord file a reader of this process opened, and its compression: a DataLossError
# (a truncated or corrupt record) names no file, so `damaged_file` looks for it here.
_OPENED: dict[str, str] = {}


# A record: its data's length (uint64, little-endian) and the length's masked CRC32C, the
# data, the data's masked CRC32C.
_LENGTH = struct.Struct("<Q")
_HEADER_BYTES, _FRAMING_BYTES = 12, 16
_WALK_BLOCK = 1 << 20  # bytes read at a time by the walk
# Plain TFRecord files walked whole, by (path, size, mtime): once per process, not once
# per dataset built on them (train, eval and export build several).
_WALKED: set[tuple[str, int, int]] = set()


def check_records(paths: Sequence[str], compression_types: Sequence[str]) -> None:
    """Refuses a TFRecord file whose records do not end where the file ends, naming it, the
    records that are whole and the byte where the cut one starts, before anything is read.

    TensorFlow's reader ends quietly at a record header cut short (a file cut in the last
    1 to 11 bytes of a header), so the records after the cut would vanish with nothing
    said; a cut further into a record fails only when the reader gets there, mid-epoch.
    Each plain file's record lengths are walked once here (a read of the file, no parse,
    no checksum: a corrupt record is found by the reader's checksums, see `damaged_file`);
    a GZIP file's are walked by `check_whole` as it decompresses the file to check it. A
    file cut exactly between two records is a whole file of fewer records: nothing tells.

    Raises:
        BadRowError: naming the file and where its records stop adding up.
    """
    check_whole(paths, compression_types, lambda: RecordWalk(" of its decompressed data"))
    started, walked = time.monotonic(), 0
    for path, compression in zip(paths, compression_types, strict=True):
        if compression:
            continue
        stat = tf.io.gfile.stat(path)
        key = (path, stat.length, stat.mtime_nsec)
        if key in _WALKED:
            continue
        walk = RecordWalk()
        with tf.io.gfile.GFile(path, "rb") as f:
            while block := f.read(_WALK_BLOCK):
                walk.feed(block)
        problem = walk.problem()
        if problem:
            raise BadRowError(f"{path}: {problem}; replace it, or leave it out of the inputs.")
        _WALKED.add(key)
        walked += stat.length
    seconds = time.monotonic() - started
    if seconds > 10:  # say where the time went
        print(
            f"Walked the records of {walked / 2**30:.1f} GiB of TFRecord files in {seconds:.0f} s."
        )


class RecordWalk:
    """Follows the records of a TFRecord byte stream fed in blocks of any size: each
    record's length, not its bytes (`check_records`).

    Args:
        where: how a message qualifies a byte offset (" of its decompressed data").
    """

    def __init__(self, where: str = "") -> None:
        self.where = where
        self.records = 0  # whole records so far
        self.offset = 0  # where the record in progress starts
        self._header = b""  # the start of a header cut by the end of a block
        self._length = 0  # the data length of the record in progress
        self._rest = 0  # its bytes after the header still to come

    def feed(self, data: bytes) -> None:
        at, size = 0, len(data)
        if self._header:  # the rest of a header
            at = min(_HEADER_BYTES - len(self._header), size)
            self._header += data[:at]
            if len(self._header) < _HEADER_BYTES:
                return
            self._length = _LENGTH.unpack_from(self._header)[0]
            self._rest, self._header = self._length + _FRAMING_BYTES - _HEADER_BYTES, b""
        if self._rest:  # the rest of a record
            if size - at < self._rest:
                self._rest -= size - at
                return
            at += self._rest
            self._rest, self.records = 0, self.records + 1
            self.offset += self._length + _FRAMING_BYTES
        base, records, unpack = self.offset - at, self.records, _LENGTH.unpack_from
        while at + _HEADER_BYTES <= size:  # records whose header is in this block
            length = unpack(data, at)[0]
            end = at + length + _FRAMING_BYTES
            if end > size:  # runs on into the next block
                self._length, self._rest = length, end - size
                break
            at, records = end, records + 1
        else:
            self._header = data[at:]  # b"" at a record boundary
        self.records, self.offset = records, base + at

    def problem(self) -> str | None:
        """Where the stream ended in a record (to call at its end), or None."""
        if self._header:
            end = self.offset + len(self._header)
            return (
                f"the TFRecord file is truncated after record {self.records:,}: it ends at byte "
                f"{end:,}{self.where}, {len(self._header)} byte(s) into the {_HEADER_BYTES}-byte "
                f"header of record {self.records + 1:,}"
            )
        if self._rest:
            runs = self._length + _FRAMING_BYTES
            return (
                f"the TFRecord file is truncated or corrupt after record {self.records:,}: "
                f"record {self.records + 1:,} starts at byte {self.offset:,}{self.where} and "
                f"runs {runs:,} bytes, past the end at byte {self.offset + runs - self._rest:,}"
            )
        return None


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
        check_records(self.paths, self._compression_types)  # check_whole too, for GZIP
        for path, compression in zip(self.paths, self._compression_types, strict=True):
            _OPENED.pop(path, None)  # re-inserted: the most recent last
            _OPENED[path] = compression
        self._compression = tf.constant(self._compression_types)
        self.dtypes = self._infer_dtypes()
        # For `_kind_check`: a tensorflow.Feature's first byte is its oneof's tag (field 1,
        # 2 or 3, length-delimited: wire type 2); an empty Feature has none.
        self._tag_kinds = _table([bytes([field << 3 | 2]) for field in (1, 2, 3)], [0, 1, 2])
        columns = list(self.read_columns)
        self._column_kinds = _table(
            columns, [_KINDS.index(_DTYPE_KINDS[self.dtypes[c]]) for c in columns]
        )
        self._column_indices = _table(columns, [self.column_index[c] for c in columns])

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
        # A record storing a column as another kind would fail the whole chunk's parse: it is
        # a bad row (checked below), parsed as an empty record meanwhile.
        kind_check = self._kind_check(serialized)
        serialized = tf.where(kind_check.bad, tf.constant(b""), serialized)
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
            # A record of the wrong kind was parsed as empty: its kind is what to report.
            checks=[kind_check] + [check for _, check in checks],
        )

    def _kind_check(self, serialized: tf.Tensor) -> RowCheck:
        """The records that store a column as another kind than its own (the kind of the
        first records, see `_infer_dtypes`), read from the protos' wire format: each
        feature's key and the tag byte that opens its value (which list it holds)."""
        _, (features,) = tf.io.decode_proto(
            serialized, "tensorflow.Example", ["features"], [tf.string]
        )
        _, (entries,) = tf.io.decode_proto(
            tf.reshape(features, [-1]), "tensorflow.Features", ["feature"], [tf.string]
        )
        _, (keys, values) = tf.io.decode_proto(
            entries, "tensorflow.Features.FeatureEntry", ["key", "value"], [tf.string, tf.string]
        )
        keys, values = keys[..., 0], values[..., 0]  # [N, entries]
        stored = self._tag_kinds.lookup(tf.strings.substr(values, 0, 1))  # -1: no value
        expected = self._column_kinds.lookup(keys)  # -1: not a column read here
        wrong = (expected >= 0) & (stored >= 0) & tf.not_equal(stored, expected)
        first = tf.argmax(tf.cast(wrong, tf.int32), axis=1, output_type=tf.int32)  # first wrong

        def describe(row: tf.Tensor) -> tf.Tensor:
            key = keys[row, first[row]]
            return tf.strings.join(
                [
                    "column `",
                    key,
                    "` (index ",
                    tf.strings.as_string(self._column_indices.lookup(key)),
                    "): expected ",
                    tf.gather(list(_KINDS), expected[row, first[row]]),
                    ", received ",
                    tf.gather(list(_KINDS), stored[row, first[row]]),
                ]
            )

        return RowCheck(tf.reduce_any(wrong, axis=1), describe)


def _table(keys: list, values: list[int]) -> tf.lookup.StaticHashTable:
    """A string -> int64 table, -1 for keys it does not hold."""
    initializer = tf.lookup.KeyValueTensorInitializer(
        tf.constant(keys, tf.string), tf.constant(values, tf.int64)
    )
    return tf.lookup.StaticHashTable(initializer, default_value=-1)


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
