"""`make_dataset`: file globs -> a streamed tf.data pipeline of raw feature batches."""

from __future__ import annotations

import importlib
import os
from collections.abc import Sequence

import tensorflow as tf

from rocketctr.data.bad_row_report import BadRowError, BadRowReport
from rocketctr.data.checks import BAD_ROW_POLICIES, finish_chunk
from rocketctr.data.reader import Reader
from rocketctr.features.schema import FORMATS, Schema


def reader_class(file_format: str) -> type[Reader]:
    """The `Reader` of a file format (the schema's `FORMATS` names it)."""
    if file_format not in FORMATS:
        raise ValueError(f"No reader for format {file_format!r}. Known: {sorted(FORMATS)}")
    module, _, name = FORMATS[file_format].rpartition(".")
    return getattr(importlib.import_module(module), name)


# Rows parsed per string-op call. Large enough to amortise per-op overhead, small enough
# that a chunk of wide rows stays a few MB. Read at call time, so tests can lower it.
ROWS_PER_CHUNK = 4096
# Files read concurrently. Fixed, not AUTOTUNE: the interleave order (hence the row order)
# must not depend on the machine's core count. Parsing parallelism is AUTOTUNE'd separately.
MAX_FILES_IN_FLIGHT = 8
_SHUFFLE_KEY = "__shuffle_key"  # a column of random row keys, only inside the pipeline
# With `row_sources`: each row's file (index into the expanded file list) and line/record.
SOURCE_FILE, SOURCE_ROW = "__source_file", "__source_row"


def expand_patterns(patterns: str | Sequence[str]) -> list[str]:
    """Expands file globs with tf.io.gfile (local, gs://, ...): sorted per pattern, deduped.

    Raises:
        FileNotFoundError: naming the first pattern that matches no file.
        BadRowError: a pattern matches a directory.
    """
    if isinstance(patterns, str):
        patterns = [patterns]
    if not patterns:
        raise ValueError(f"`patterns` must name at least one file glob. Received: {patterns!r}")
    paths: dict[str, None] = {}  # ordered set: a file matched twice is read once
    for pattern in patterns:
        matches = sorted(tf.io.gfile.glob(pattern))
        if not matches:
            raise FileNotFoundError(f"No files match the pattern {pattern!r}")
        directories = [m for m in matches if tf.io.gfile.isdir(m)]
        if directories:
            raise BadRowError(
                f"{directories[0]} is a directory, not a data file: give the files in it, e.g. "
                f"{os.path.join(directories[0], '*')}"
            )
        paths.update(dict.fromkeys(matches))
    return list(paths)


def make_dataset(
    schema: Schema,
    patterns: str | Sequence[str],
    batch_size: int,
    *,
    bad_rows: str = "error",
    shuffle: bool = False,
    shuffle_buffer_rows: int = 65536,
    seed: int = 0,
    num_epochs: int | None = 1,
    first_pass: int | tf.Variable | None = None,
    report: BadRowReport | None = None,
    keep_columns: Sequence[str] = (),
    in_file_order: bool = False,
    row_sources: bool = False,
) -> tf.data.Dataset:
    """Streams `(features, labels)` batches from files in `schema.format`.

    Parsing is batched and vectorised (string ops on chunks of lines, `parse_example` on
    chunks of records, pyarrow record batches for Parquet). Features are raw: categorical
    values stay strings and are hashed or parsed in the model, so training and serving run
    the same ops.

    Args:
        schema: layout of the files and the columns to deliver.
        patterns: one file glob or several (tf.io.gfile.glob syntax); each must match.
        batch_size: rows per batch; only the last batch may be smaller.
        bad_rows: "error" (default) fails iteration at the first malformed row with
            `tf.errors.InvalidArgumentError` naming `file:line`, column and value; "skip"
            drops malformed rows and counts them per file in `report` (required then).
            Malformed: wrong column count, a label that is not a number, or a dense value
            that is neither a number nor empty.
        shuffle: shuffle the file order and the rows (through a buffer of
            `shuffle_buffer_rows` rows), anew for every pass over the files: the order of
            pass p is a function of `(seed, p)` alone. Without shuffle the order is fixed:
            up to `MAX_FILES_IN_FLIGHT` files are read round-robin, `ROWS_PER_CHUNK` rows at
            a time.
        shuffle_buffer_rows: rows in the shuffle buffer.
        seed: seed of the file and row shuffles.
        num_epochs: passes over the files; None repeats forever.
        first_pass: the index p of the first pass of an iteration (later passes count up
            from it). A variable is read each time an iteration starts: a resumed training
            run sets it to the epoch it resumes, and replays that epoch's order exactly.
            None (default): every iteration (Keras starts one per epoch) starts at a new
            pass index drawn from `seed`, so it gets a new order, reproducibly.
        report: per-file counts of rows read and skipped; see `BadRowReport.summary`.
        keep_columns: more raw columns to deliver (e.g. a request id to pass through to
            predictions): strings, or floats for dense features.
        in_file_order: read the files one after another, so the rows come in the order of
            the files and of their lines (scoring); without shuffle, training and evaluation
            read several files at once.
        row_sources: also deliver `SOURCE_FILE` (int64, the row's file: an index into
            `expand_patterns(patterns)`) and `SOURCE_ROW` (int64, its 1-based line or record
            number, as bad-row messages count them).

    Returns:
        A dataset of `(features, labels)`. `features` maps every column in
        `schema.input_columns`, plus `schema.user_id` and `schema.request_id` if set and
        `keep_columns`, to a [B] tensor: tf.string for string columns (missing: ""),
        tf.float32 for dense ones (missing: NaN). `labels` is float32 [B], 1.0 where the raw
        label is > 0 (libfm's -1 becomes 0.0).

    Raises:
        ValueError: an unknown `bad_rows` or out-of-range argument, or "skip" without a
            report (skipped rows must be counted somewhere).
        FileNotFoundError: a pattern that matches no file.
        BadRowError: a Parquet file missing a column, or of a type that cannot be read.
    """
    if bad_rows not in BAD_ROW_POLICIES:
        raise ValueError(
            f"`bad_rows` must be one of {list(BAD_ROW_POLICIES)}. Received: {bad_rows!r}"
        )
    if bad_rows == "skip" and report is None:
        raise ValueError(
            'bad_rows="skip" needs `report=BadRowReport()` so that skipped rows are counted '
            "and can be reported. Received: report=None"
        )
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"`batch_size` must be a positive integer. Received: {batch_size!r}")
    if not isinstance(shuffle_buffer_rows, int) or shuffle_buffer_rows < 1:
        raise ValueError(
            f"`shuffle_buffer_rows` must be a positive integer. Received: {shuffle_buffer_rows!r}"
        )
    if num_epochs is not None and (not isinstance(num_epochs, int) or num_epochs < 1):
        raise ValueError(
            f"`num_epochs` must be None or a positive integer. Received: {num_epochs!r}"
        )
    if report is not None and not isinstance(report, BadRowReport):
        raise ValueError(f"`report` must be a BadRowReport or None. Received: {report!r}")

    paths = expand_patterns(patterns)
    reader = reader_class(schema.format)(schema, paths, ROWS_PER_CHUNK, keep_columns)
    counters = report.track(paths, reader.unit) if report is not None else None

    def file_stream(pass_index: tf.Tensor) -> tf.data.Dataset:
        files = tf.data.Dataset.range(len(paths))
        if shuffle:
            keys = tf.random.stateless_uniform([len(paths)], seed=_pass_seed(seed, pass_index))
            files = tf.data.Dataset.from_tensor_slices(tf.cast(tf.argsort(keys), tf.int64))
        return files.map(lambda file_index: (pass_index, file_index))

    def pass_chunks(pass_index: tf.Tensor, file_index: tf.Tensor) -> tf.data.Dataset:
        return reader.file_chunks(file_index).map(lambda *chunk: (pass_index, *chunk))

    def parse_and_check(pass_index: tf.Tensor, *chunk: tf.Tensor):
        parsed = reader.parse(*chunk)
        if row_sources:
            parsed.features[SOURCE_FILE] = tf.fill(tf.shape(parsed.row_numbers), parsed.file_index)
            parsed.features[SOURCE_ROW] = parsed.row_numbers
        if shuffle:  # each row's sort key for the block shuffle, a function of (seed, pass, row)
            chunk_seed = tf.random.experimental.stateless_fold_in(
                tf.random.experimental.stateless_fold_in(
                    _pass_seed(seed, pass_index), parsed.file_index
                ),
                tf.reduce_sum(parsed.row_numbers[:1]),  # the chunk's first row
            )
            parsed.features[_SHUFFLE_KEY] = tf.random.stateless_uniform(
                tf.shape(parsed.labels), seed=chunk_seed
            )
        return finish_chunk(parsed, bad_rows=bad_rows, paths=reader.paths_tensor, counters=counters)

    # Only the small stream of (pass, file) pairs is built per iteration (a flat_map around
    # the whole pipeline would cost a third of its throughput); reading and parsing stay
    # one pipeline, files of consecutive passes in flight together.
    files = _passes(first_pass, num_epochs, seed).flat_map(file_stream)
    chunks = files.interleave(
        pass_chunks,
        cycle_length=1 if in_file_order else min(len(paths), MAX_FILES_IN_FLIGHT),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    rows = chunks.map(parse_and_check, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if shuffle:
        rows = _shuffle_rows(rows, shuffle_buffer_rows)
    # Chunks are ragged after skipping (and at file ends); rebatch makes every batch
    # full-sized except the last, in one copy.
    return rows.rebatch(batch_size).prefetch(tf.data.AUTOTUNE)


def _passes(
    first_pass: int | tf.Variable | None, num_epochs: int | None, seed: int
) -> tf.data.Dataset:
    """The pass indices of one iteration, [p, p + num_epochs), p read when it starts."""
    if first_pass is None:
        # A new first pass for each iteration, a reproducible sequence given `seed`. (A
        # seed generator, not a variable: datasets built on parameter-server workers must
        # not capture variables.)
        starts = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).take(1)
        starts = starts.map(lambda x: tf.math.floormod(x, 2**40))
    else:
        starts = tf.data.Dataset.from_tensors(tf.constant(0, tf.int64)).map(
            lambda _: tf.cast(tf.convert_to_tensor(first_pass), tf.int64)
        )

    def indices(first: tf.Tensor) -> tf.data.Dataset:
        stop = tf.int64.max if num_epochs is None else first + num_epochs
        return tf.data.Dataset.range(first, stop)

    return starts.flat_map(indices)


def _pass_seed(seed: int, pass_index: tf.Tensor) -> tf.Tensor:
    """The stateless seed [2] of one pass's shuffles."""
    return tf.stack([tf.constant(seed, tf.int64), tf.cast(pass_index, tf.int64)])


def _shuffle_rows(rows: tf.data.Dataset, buffer_rows: int) -> tf.data.Dataset:
    """Shuffles rows through a buffer of `buffer_rows` rows by their `_SHUFFLE_KEY`.

    The buffer is filled with the next `buffer_rows` rows and emitted sorted by the rows'
    random keys, a uniformly random order (a block shuffle) that depends only on the keys.
    `unbatch().shuffle(buffer_rows).batch()` would slide the buffer row by row instead, but
    pays tf.data's per-element cost for every row of every column, over ten times slower
    than parsing on Criteo-width rows.
    """

    def permute(features: dict[str, tf.Tensor], labels: tf.Tensor) -> tuple:
        features = dict(features)
        order = tf.argsort(features.pop(_SHUFFLE_KEY))
        return {c: tf.gather(v, order) for c, v in features.items()}, tf.gather(labels, order)

    return rows.rebatch(buffer_rows).map(permute, num_parallel_calls=tf.data.AUTOTUNE)
