"""Line-based formats: delimited text (Criteo TSV, Avazu CSV) and libfm.

Lines are read with `TextLineDataset`, batched per file, and parsed a chunk at a time with
string ops (split into a RaggedTensor, row lengths checked, numbers validated by regex
before `to_number`). Batching per file keeps file and line number known in-graph:
line = chunk_index * rows_per_chunk + position + 1, header line included, so an error's
line number is what `sed -n Np file` prints.

Delimited fields are split on the delimiter as-is: quoted fields containing the delimiter
(RFC 4180 quoting) are not supported; such a row has too many columns and is reported.
"""

from __future__ import annotations

import abc

import tensorflow as tf

from rocketctr.data.checks import (
    LIBFM_LABELS,
    NUMBER,
    ParsedChunk,
    RowCheck,
    column_problem,
    fail_unless,
    first_of,
    label_values,
    parse_number,
    show,
)
from rocketctr.data.reader import Reader, check_whole, compression_type

_BYTE_ORDER_MARK = "\ufeff"


class _LineReader(Reader):
    """Reads files line by line; subclasses split a line into one token per column."""

    def __init__(self, *args, **kwargs) -> None:  # Reader's arguments
        super().__init__(*args, **kwargs)
        schema = self.schema
        unknown = [c for c in self.output_columns if c not in schema.columns]
        if unknown:  # kept columns a text file has no position for
            raise ValueError(
                f"Columns {unknown} are not columns of schema {schema.source or schema.name!r}; "
                f"its columns: {list(schema.columns)}"
            )
        compression = [compression_type(p, sniff=False) for p in self.paths]
        check_whole(self.paths, compression)
        self._compression = tf.constant(compression)

    def file_chunks(self, file_index: tf.Tensor) -> tf.data.Dataset:
        lines = tf.data.TextLineDataset(
            self.paths_tensor[file_index], compression_type=self._compression[file_index]
        )
        return self._enumerated_chunks(lines, file_index)

    def parse(self, file_index: tf.Tensor, chunk_index: tf.Tensor, lines: tf.Tensor) -> ParsedChunk:
        row_numbers = (
            chunk_index * self.rows_per_chunk
            + tf.range(tf.size(lines, out_type=tf.int64), dtype=tf.int64)
            + 1
        )
        starts_file = tf.equal(chunk_index, 0)
        # A UTF-8 byte-order mark (Excel, Notepad) is not part of line 1's first value.
        lines = tf.cond(
            starts_file,
            lambda: tf.concat(
                [tf.strings.regex_replace(lines[:1], "^" + _BYTE_ORDER_MARK, ""), lines[1:]], 0
            ),
            lambda: lines,
        )
        if self.schema.header:
            header_ok = self._check_header(file_index, starts_file, lines)
            start = tf.cast(starts_file, tf.int32)  # drop line 1 of each file
            with tf.control_dependencies([header_ok]):
                lines = tf.identity(lines[start:])
            row_numbers = row_numbers[start:]

        tokens = self.split(lines)
        width = len(self.schema.columns)
        counts = tokens.row_lengths()
        # Short rows are padded and long rows cut, so every column can be read; the count
        # check below marks those rows bad either way.
        table = tokens.to_tensor(default_value="", shape=[None, width])

        def describe_count(row: tf.Tensor) -> tf.Tensor:
            return tf.strings.join(
                [
                    f"expected {self.count_description()}, received ",
                    tf.strings.as_string(counts[row]),
                ]
            )

        checks = [RowCheck(tf.not_equal(counts, width), describe_count)]
        features, column_checks = {}, {}
        for column in self.output_columns:
            index = self.column_index[column]
            features[column], check = self.read_column(table[:, index], column, index)
            if check is not None:
                column_checks[index] = check
        label_index = self.column_index[self.schema.label]
        label_numbers, label_check = parse_number(
            table[:, label_index], self.schema.label, label_index, required=True
        )
        labels, value_check = label_values(
            label_numbers, self.schema.label, label_index, self.label_values
        )
        column_checks[label_index] = first_of(label_check, value_check)
        checks += [column_checks[i] for i in sorted(column_checks)]  # report in file order
        return ParsedChunk(
            file_index=file_index,
            starts_file=starts_file,
            row_numbers=row_numbers,
            features=features,
            labels=labels,
            checks=checks,
        )

    def _check_header(
        self, file_index: tf.Tensor, starts_file: tf.Tensor, lines: tf.Tensor
    ) -> tf.Tensor:
        """Fails unless line 1 of the file names `schema.columns` in order."""
        expected = self.schema.delimiter.join(self.schema.columns)
        ok = tf.logical_or(tf.logical_not(starts_file), tf.equal(lines[0], expected))

        def message() -> tf.Tensor:
            return tf.strings.join(
                [
                    self.paths_tensor[file_index],
                    ":1: the header does not match the schema "
                    f"columns ({self.schema.source or self.schema.name}): expected `{expected}`, "
                    "received ",
                    show(lines[0]),
                ]
            )

        return fail_unless(ok, message)

    def count_description(self) -> str:
        return f"{len(self.schema.columns)} columns"

    @abc.abstractmethod
    def split(self, lines: tf.Tensor) -> tf.RaggedTensor:
        """Tokens of each line, one per column when well formed: string [n, None]."""

    @abc.abstractmethod
    def read_column(
        self, tokens: tf.Tensor, column: str, index: int
    ) -> tuple[tf.Tensor, RowCheck | None]:
        """A feature column from its tokens: (string or float32 [n], check or None)."""


class DelimitedReader(_LineReader):
    """CSV/TSV: `schema.delimiter`-separated fields in `schema.columns` order.

    Empty fields are missing: "" for categorical columns, NaN for dense ones.
    """

    def split(self, lines: tf.Tensor) -> tf.RaggedTensor:
        return tf.strings.split(lines, sep=self.schema.delimiter)

    def read_column(
        self, tokens: tf.Tensor, column: str, index: int
    ) -> tuple[tf.Tensor, RowCheck | None]:
        if self.schema.is_string_column(column):
            return tokens, None
        return parse_number(tokens, column, index, required=False)


class LibfmReader(_LineReader):
    """libfm / libsvm: `label idx:val idx:val ...`, one `idx:val` token per field, in order.

    Tokens are separated by runs of whitespace (trailing spaces are common in these files).
    A categorical field's value is its index string ("1244" for "1244:1"); a field with
    `num_ids` owns the indices `id_offset .. id_offset + num_ids - 1` of the file's global
    index, and an index outside them is malformed (a file that does not match the schema,
    not an unseen id). A dense field's value is the number after the colon. Labels are 1,
    and 0 or -1.
    """

    _TOKEN = r"[^:\s]+:(?:" + NUMBER + ")"
    _ID_TOKEN = r"-?[0-9]{1,18}:(?:" + NUMBER + ")"  # an integer-id field's: an integer index
    label_values = LIBFM_LABELS

    def __init__(self, *args, **kwargs) -> None:  # Reader's arguments
        super().__init__(*args, **kwargs)
        # Integer-id fields read from their own column (a derived field reads another's).
        self._id_fields = {
            f.column: f for f in self.schema.categorical if f.num_ids is not None and not f.derive
        }

    def count_description(self) -> str:
        return f"{len(self.schema.columns)} tokens (label + {len(self.schema.columns) - 1} fields)"

    def split(self, lines: tf.Tensor) -> tf.RaggedTensor:
        return tf.strings.split(lines)

    def read_column(
        self, tokens: tf.Tensor, column: str, index: int
    ) -> tuple[tf.Tensor, RowCheck | None]:
        field = self._id_fields.get(column)
        token = self._TOKEN if field is None else self._ID_TOKEN
        well_formed = tf.strings.regex_full_match(tokens, token)

        def describe(row: tf.Tensor) -> tf.Tensor:
            return column_problem(
                column, index, "expected `index:value`, received ", show(tokens[row])
            )

        check = RowCheck(tf.logical_not(well_formed), describe)
        if self.schema.is_string_column(column):
            ids = tf.strings.regex_replace(tokens, ":.*", "")
            if field is None:
                return ids, check
            return ids, first_of(check, self._id_range_check(ids, well_formed, field, index))
        values = tf.strings.regex_replace(tokens, "^[^:]*:", "")
        numbers, value_check = parse_number(
            tf.where(well_formed, values, ""), column, index, required=False
        )
        return numbers, first_of(check, value_check)

    @staticmethod
    def _id_range_check(ids: tf.Tensor, well_formed: tf.Tensor, field, index: int) -> RowCheck:
        first, last = field.id_offset, field.id_offset + field.num_ids - 1
        value = tf.strings.to_number(tf.where(well_formed, ids, "0"), tf.int64)
        inside = (value >= first) & (value <= last)

        def describe(row: tf.Tensor) -> tf.Tensor:
            return column_problem(
                field.column,
                index,
                "received index ",
                show(ids[row]),
                f", outside the field range {first}..{last} (id_offset {field.id_offset}, "
                f"num_ids {field.num_ids})",
            )

        return RowCheck(well_formed & tf.logical_not(inside), describe)
