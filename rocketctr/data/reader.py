"""What a file-format reader provides to `make_dataset`, and helpers readers share.

A reader turns one file into a dataset of chunks (`file_chunks`), and one chunk into a
`ParsedChunk` (`parse`). `make_dataset` interleaves the files, maps `parse` plus the bad-row
policy in parallel, and rebatches, so a new format is one small class.
"""

from __future__ import annotations

import abc
import concurrent.futures
import os
import time
import zlib
from collections.abc import Callable, Sequence
from typing import Protocol

import tensorflow as tf

from rocketctr.data.bad_row_report import BadRowError
from rocketctr.data.checks import BINARY_LABELS, ParsedChunk
from rocketctr.features.schema import Schema

_GZIP_MAGIC = b"\x1f\x8b\x08"  # gzip header: magic bytes + "deflate" method


def output_columns(schema: Schema, keep: Sequence[str] = ()) -> list[str]:
    """Feature columns a dataset yields: the model's inputs plus the user id (for GAUC), the
    request id (ranking distillation) and the raw `keep` columns."""
    columns = list(schema.input_columns)
    ids = [c for c in (schema.user_id, schema.request_id) if c]
    for column in ids + list(keep):
        if column not in columns:
            columns.append(column)
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


# Files found whole, by (path, size, mtime): a file is decompressed once per process to check
# it, not once per dataset built on it (train, eval and export build several).
_WHOLE_FILES: set[tuple[str, int, int, bool]] = set()  # (..., checked by `inflated` too)
_READ_BYTES = 1 << 16
_MAX_INFLATED_BYTES = 1 << 22  # per decompress call: a bound on memory for any ratio


class Inflated(Protocol):
    """A check of a GZIP file's decompressed bytes, fed in blocks (`check_whole`)."""

    def feed(self, data: bytes) -> None: ...

    def problem(self) -> str | None:
        """What is wrong with the bytes fed, at their end; None if nothing."""


def check_whole(
    paths: Sequence[str],
    compression_types: Sequence[str],
    inflated: Callable[[], Inflated] | None = None,
) -> None:
    """Refuses a truncated or corrupt GZIP file, naming it, before anything is read.

    TensorFlow's GZIP reader ends quietly where a truncated file ends, so a file cut short
    by an interrupted copy would train on its first part with nothing said. Each file is
    decompressed once here (in parallel; concatenated gzip members are fine) to check that
    its last member is complete, and its decompressed bytes are fed to `inflated()` (a
    check of their own, e.g. TFRecord framing) when given.

    Raises:
        BadRowError: naming the file and what is wrong with it.
    """
    todo = []
    for path, compression in zip(paths, compression_types, strict=True):
        if compression != "GZIP":
            continue
        stat = tf.io.gfile.stat(path)
        key = (path, stat.length, stat.mtime_nsec, inflated is not None)
        if key not in _WHOLE_FILES:
            todo.append(key)
    if not todo:
        return
    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(min(len(todo), os.cpu_count() or 1)) as pool:
        problems = list(pool.map(lambda key: _gzip_problem(key[0], inflated), todo))
    seconds = time.monotonic() - started
    if seconds > 10:  # say where the time went
        size = sum(key[1] for key in todo) / 2**30
        print(f"Checked {len(todo)} gzip file(s), {size:.1f} GiB, whole in {seconds:.0f} s.")
    for key, problem in zip(todo, problems, strict=True):
        if problem:
            raise BadRowError(f"{key[0]}: {problem}. Copy the file again, or leave it out.")
        _WHOLE_FILES.add(key)


def _gzip_problem(path: str, inflated: Callable[[], Inflated] | None = None) -> str | None:
    """What is wrong with a GZIP file ("truncated ...", "corrupt ..."), or None if whole."""
    inflater = zlib.decompressobj(wbits=31)
    check = inflated() if inflated is not None else None
    offset = 0
    with tf.io.gfile.GFile(path, "rb") as f:
        while block := f.read(_READ_BYTES):
            offset += len(block)
            data = block
            while data:
                try:
                    out = inflater.decompress(data, _MAX_INFLATED_BYTES)
                    if check is not None:
                        check.feed(out)
                except zlib.error as e:
                    return f"corrupt gzip data before byte {offset:,} ({e})"
                if inflater.eof:  # a member ended; another may follow
                    data = inflater.unused_data
                    if data:
                        inflater = zlib.decompressobj(wbits=31)
                else:
                    data = inflater.unconsumed_tail
    if offset == 0:
        return "empty file, not gzip data (truncated to 0 bytes?)"
    if not inflater.eof:
        return (
            f"truncated gzip file: the compressed data ends at byte {offset:,} before its "
            "end-of-stream marker, so the file was cut short (an interrupted copy?)"
        )
    return check.problem() if check is not None else None


class Reader(abc.ABC):
    """Reads one file format for `make_dataset`.

    Args:
        schema: the dataset layout.
        paths: the files, already expanded and sorted.
        rows_per_chunk: rows parsed together; large enough to amortise per-op overhead.
        keep_columns: more columns to deliver as they are (strings, or floats for dense
            features), e.g. ids to pass through to predictions: for text formats columns of
            `schema.columns`, for Parquet and tf.Example any column by name.
    """

    # What row numbers in messages count: "line" (header included) or "record".
    unit = "line"
    # Raw label values accepted (see checks.label_values).
    label_values = BINARY_LABELS

    def __init__(
        self,
        schema: Schema,
        paths: Sequence[str],
        rows_per_chunk: int,
        keep_columns: Sequence[str] = (),
    ):
        self.schema = schema
        self.paths = list(paths)
        self.rows_per_chunk = rows_per_chunk
        self.paths_tensor = tf.constant(self.paths)
        self.column_index = {column: i for i, column in enumerate(schema.columns)}
        for column in keep_columns:  # Parquet and tf.Example read any column by name
            self.column_index.setdefault(column, len(self.column_index))
        # Feature columns the dataset yields, and what is read: the label first, then those.
        self.output_columns = output_columns(schema, keep_columns)
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
