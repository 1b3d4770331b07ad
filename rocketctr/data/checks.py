"""Vectorised row checks shared by all readers, and the bad-row policy that applies them.

Every reader turns one chunk of a file (a few thousand lines or records) into a
`ParsedChunk`: raw feature tensors, labels, and a list of `RowCheck`s (a bool mask of bad
rows plus a way to describe the first one). `finish_chunk` then either refuses the chunk
with an error naming file, line, column and value, or drops the bad rows and counts them.
Messages are only built on the failure branch of a `tf.cond`, so clean data pays for the
masks and nothing else.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import tensorflow as tf

from rocketctr.data.bad_row_report import FileCounters

BAD_ROW_POLICIES = ("error", "skip")

# What tf.strings.to_number would accept, minus what we refuse: hex ("0x10"), surrounding
# spaces, inf. Checked with regex_full_match first because to_number fails the whole batch on
# one bad string, without saying which.
NUMBER = r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
# A dense value may also be spelled NaN (pandas and numpy write that for missing).
NUMBER_OR_NAN = NUMBER + r"|(?i:nan)"
_INFINITY = r"[+-]?(?i:inf|infinity)"

# Values shown in messages are cut to this many bytes; a broken line can be megabytes long.
_MAX_SHOWN_BYTES = 80


@dataclass(frozen=True)
class RowCheck:
    """A per-row validity test.

    Attributes:
        bad: bool [n], true for rows that fail the test.
        describe: maps a row position (int32 scalar) to a string scalar saying what is wrong
            with that row, e.g. "column `I3` (index 3): expected a number, received `abc`".
            Only called on the failure path.
    """

    bad: tf.Tensor
    describe: Callable[[tf.Tensor], tf.Tensor]


@dataclass(frozen=True)
class ParsedChunk:
    """One chunk of one file, parsed but not yet checked.

    Attributes:
        file_index: int64 scalar, index of the file in the dataset's file list.
        starts_file: bool scalar, true for the first chunk of a file (counts passes).
        row_numbers: int64 [n], 1-based line (text, header counted) or record number.
        features: raw columns, each [n]: tf.string, or tf.float32 with NaN for missing.
        labels: float32 [n], 1.0 or 0.0 (see `label_values`).
        checks: tests in the order errors are reported: structure first, then columns in
            file order.
    """

    file_index: tf.Tensor
    starts_file: tf.Tensor
    row_numbers: tf.Tensor
    features: dict[str, tf.Tensor]
    labels: tf.Tensor
    checks: list[RowCheck]


def first_of(*checks: RowCheck) -> RowCheck:
    """One check of several on the same column: bad if any is; described by the first bad."""

    def describe(row: tf.Tensor) -> tf.Tensor:
        message = checks[-1].describe(row)
        for check in reversed(checks[:-1]):
            message = tf.where(check.bad[row], check.describe(row), message)
        return message

    return RowCheck(tf.reduce_any(tf.stack([c.bad for c in checks]), axis=0), describe)


def show(value: tf.Tensor) -> tf.Tensor:
    """A string scalar quoted for a message, shortened if long.

    Backticks, because `tf.debugging.Assert` escapes quote characters (`\\'`) in its output.
    """
    short = tf.strings.substr(value, 0, _MAX_SHOWN_BYTES)
    # Bytes that are not UTF-8 would make the message itself unreadable (Python fails to
    # decode TensorFlow's error text): shown as U+FFFD.
    short = tf.strings.unicode_transcode(short, "UTF-8", "UTF-8", errors="replace")
    ellipsis = tf.where(tf.strings.length(value) > _MAX_SHOWN_BYTES, "...", "")
    return tf.strings.join(["`", short, ellipsis, "`"])


def column_problem(column: str, index: int, *parts: tf.Tensor | str) -> tf.Tensor:
    """The string scalar "column `name` (index i): " followed by `parts`."""
    return tf.strings.join([f"column `{column}` (index {index}): ", *parts])


def parse_number(
    values: tf.Tensor, column: str, index: int, *, required: bool
) -> tuple[tf.Tensor, RowCheck]:
    """Parses a string column to float32 and checks it, without failing on bad values.

    Args:
        values: string [n].
        column: column name, for messages.
        index: the column's position in `schema.columns`, for messages.
        required: the label must be a number; a dense feature may be empty or NaN
            (missing, read as NaN). Either must be finite in float32: "inf", "1e39" or a
            40-digit integer is refused, it would turn the model into NaN.

    Returns:
        (float32 [n] with NaN where missing or bad, the check).
    """
    if required:
        is_number = tf.strings.regex_full_match(values, NUMBER)
        bad = tf.logical_not(is_number)
    else:
        is_number = tf.strings.regex_full_match(values, NUMBER_OR_NAN)
        bad = tf.logical_not(is_number | tf.equal(values, ""))
    numbers = tf.strings.to_number(tf.where(is_number, values, "nan"), tf.float32)
    overflow = tf.math.is_inf(numbers)

    def describe(row: tf.Tensor) -> tf.Tensor:
        infinite = overflow[row] | tf.strings.regex_full_match(values[row], _INFINITY)
        expected = tf.where(infinite, "expected a finite float32 number", "expected a number")
        return column_problem(column, index, expected, ", received ", show(values[row]))

    return tf.where(overflow, float("nan"), numbers), RowCheck(bad | overflow, describe)


def check_finite(values: tf.Tensor, column: str, index: int) -> RowCheck:
    """Checks that a float column (a typed dense feature) holds no +-inf; NaN is missing."""

    def describe(row: tf.Tensor) -> tf.Tensor:
        return column_problem(
            column, index, "expected a finite number, received ", tf.strings.as_string(values[row])
        )

    return RowCheck(tf.math.is_inf(values), describe)


def check_present(values: tf.Tensor, column: str, index: int, received: str = "null") -> RowCheck:
    """Checks that a float column (an already-typed label) has no NaN, i.e. no missing value."""

    def describe(row: tf.Tensor) -> tf.Tensor:
        del row  # every failing value is NaN
        return column_problem(column, index, f"expected a number, received {received}")

    return RowCheck(tf.math.is_nan(values), describe)


# Label values a reader accepts: clicks are 0/1; libfm files write -1 for negatives.
BINARY_LABELS = (0.0, 1.0)
LIBFM_LABELS = (-1.0, 0.0, 1.0)


def label_values(
    numbers: tf.Tensor, column: str, index: int, allowed: tuple[float, ...]
) -> tuple[tf.Tensor, RowCheck]:
    """Labels 1.0 (the raw label is positive) or 0.0, and a check that it is one of `allowed`.

    A label of 2, 0.5 or (outside libfm) -1 is malformed: mapping it to a click or not would
    silently change what is learned. NaN (missing or not a number) is left to the reader's
    own check, which says what was received.
    """
    ok = tf.reduce_any(tf.equal(numbers[:, None], tf.constant(allowed, tf.float32)), axis=1)
    names = " or ".join(f"{v:g}" for v in allowed)

    def describe(row: tf.Tensor) -> tf.Tensor:
        return column_problem(
            column,
            index,
            f"expected a label {names}, received ",
            tf.strings.as_string(numbers[row], shortest=True),
        )

    bad = tf.logical_not(ok | tf.math.is_nan(numbers))
    return tf.cast(numbers > 0, tf.float32), RowCheck(bad, describe)


def fail_unless(ok: tf.Tensor, message: Callable[[], tf.Tensor]) -> tf.Tensor:
    """Fails iteration with `message()` unless `ok`; returns a bool to depend on.

    The message is built in the false branch only. Surfaces as
    `tf.errors.InvalidArgumentError: ... assertion failed: [<message>]`.
    """

    def fail() -> tf.Tensor:
        assertion = tf.debugging.Assert(False, [message()], summarize=1)
        with tf.control_dependencies([assertion]):
            return tf.constant(False)

    return tf.cond(ok, lambda: tf.constant(True), fail)


def finish_chunk(
    chunk: ParsedChunk,
    *,
    bad_rows: str,
    paths: tf.Tensor,
    counters: FileCounters | None,
) -> tuple[dict[str, tf.Tensor], tf.Tensor]:
    """Applies the bad-row policy to a parsed chunk.

    Args:
        chunk: the parsed chunk.
        bad_rows: "error" fails on the first malformed row; "skip" drops malformed rows and
            counts them in `counters`.
        paths: string [num_files], the dataset's files, to name them in messages.
        counters: per-file counters to update, or None (only allowed with "error").

    Returns:
        (features, labels) of the rows kept.
    """
    num_rows = tf.shape(chunk.labels)[0]
    if chunk.checks:
        bad = tf.stack([check.bad for check in chunk.checks], axis=1)  # [n, num_checks]
    else:
        bad = tf.zeros([num_rows, 0], tf.bool)
    row_is_bad = tf.reduce_any(bad, axis=1)
    features, labels = chunk.features, chunk.labels
    updates: list[tf.Operation | tf.Tensor] = []

    if bad_rows == "error":

        def message() -> tf.Tensor:
            row = tf.argmax(tf.cast(row_is_bad, tf.int32), output_type=tf.int32)
            which = tf.argmax(tf.cast(bad[row], tf.int32), output_type=tf.int32)
            problems = tf.stack([check.describe(row) for check in chunk.checks])
            return tf.strings.join(
                [
                    paths[chunk.file_index],
                    ":",
                    tf.strings.as_string(chunk.row_numbers[row]),
                    ": ",
                    problems[which],
                    " (to drop and count such rows instead, use bad_rows=skip)",
                ]
            )

        updates.append(fail_unless(tf.logical_not(tf.reduce_any(row_is_bad)), message))
        skipped_rows = tf.zeros([0], tf.int64)
    elif bad_rows == "skip":
        keep = tf.logical_not(row_is_bad)
        features = {name: tf.boolean_mask(value, keep) for name, value in features.items()}
        labels = tf.boolean_mask(labels, keep)
        skipped_rows = tf.boolean_mask(chunk.row_numbers, row_is_bad)
    else:
        raise ValueError(
            f"`bad_rows` must be one of {list(BAD_ROW_POLICIES)}. Received: {bad_rows!r}"
        )

    if counters is not None:
        updates.extend(counters.update(chunk.file_index, chunk.starts_file, num_rows, skipped_rows))
    # Outputs depend on the checks and counter updates so they run before a batch leaves.
    with tf.control_dependencies(updates):
        features = {name: tf.identity(value) for name, value in features.items()}
        labels = tf.identity(labels)
    return features, labels
