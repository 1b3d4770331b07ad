"""What a file-format reader provides to `make_dataset`, and helpers readers share.

A reader turns one file into a dataset of chunks (`file_chunks`), and one chunk into a
`ParsedChunk` (`parse`). `make_dataset` interleaves the files, maps `parse` plus the bad-row
policy in parallel, and rebatches, so a new format is one small class.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence

import tensorflow as tf

from rocketctr.data.checks import ParsedChunk
from rocketctr.schema import Schema

_GZIP_MAGIC = b"\x1f\x8b\x08"  # gzip header: magic bytes + "deflate" method


def output_columns(schema: Schema) -> list[str]:
    """Feature columns a dataset yields: the model's inputs plus the user id (for GAUC)."""
    columns = list(schema.input_columns)
    if schema.user_id is not None and schema.user_id not in columns:
        columns.append(schema.user_id)
    return columns


def compression_type(path: str, *, sniff: bool) -> str:
    """The TF compression type: GZIP for `*.gz` (or, with `sniff`, gzip magic bytes), else ""."""
    if path.endswith((".gz", ".gzip")):
        return "GZIP"
    if sniff:
        with tf.io.gfile.GFile(path, "rb") as f:
            if f.read(len(_GZIP_MAGIC)) == _GZIP_MAGIC:
                return "GZIP"
    return ""


class Reader(abc.ABC):
    """Reads one file format for `make_dataset`.

    Args:
        schema: the dataset layout.
        paths: the files, already expanded and sorted.
        rows_per_chunk: rows parsed together; large enough to amortise per-op overhead.
    """

    # What row numbers in messages count: "line" (header included) or "record".
    unit = "line"

    def __init__(self, schema: Schema, paths: Sequence[str], rows_per_chunk: int):
        self.schema = schema
        self.paths = list(paths)
        self.rows_per_chunk = rows_per_chunk
        self.paths_tensor = tf.constant(self.paths)
        self.column_index = {column: i for i, column in enumerate(schema.columns)}
        # Feature columns the dataset yields, and what is read: the label first, then those.
        self.output_columns = output_columns(schema)
        self.read_columns = [schema.label] + [c for c in self.output_columns if c != schema.label]

    def _enumerated_chunks(self, records: tf.data.Dataset, file_index: tf.Tensor):
        """(file_index, chunk_index, chunk) of `rows_per_chunk` lines or records of one file."""
        return (
            records.batch(self.rows_per_chunk)
            .enumerate()
            .map(lambda chunk_index, chunk: (file_index, chunk_index, chunk))
        )

    @abc.abstractmethod
    def file_chunks(self, file_index: tf.Tensor) -> tf.data.Dataset:
        """The chunks of file `file_index` (int64 scalar), as tuples `parse` accepts."""

    @abc.abstractmethod
    def parse(self, *chunk: tf.Tensor) -> ParsedChunk:
        """Parses one element of `file_chunks` (runs inside a tf.data map function)."""
