"""Per-file counts of rows read and malformed rows skipped (docs/invariants.md, 6).

`make_dataset` updates the counters from inside the tf.data pipeline, so they are current
whenever the dataset has been (partly) iterated; read them with `rows_read()`, `skipped()`
or `summary()` afterwards.
"""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf

# tf.Variable would become a MirroredVariable under `strategy.scope()`, and those cannot be
# scatter-updated from a tf.data function. These counters are host-side bookkeeping, never
# model state, so they are plain resource variables whatever scope make_dataset runs in.
from tensorflow.python.ops.resource_variable_ops import ResourceVariable

_NO_LINE = tf.int64.max


class BadRowError(ValueError):
    """Input that `make_dataset` refuses before iteration (e.g. a file missing a column).

    Malformed rows found during iteration with `bad_rows="error"` surface as
    `tf.errors.InvalidArgumentError` with the same `file:line: column ...` message, because
    they are detected inside the tf.data graph.
    """


class FileCounters:
    """Counters for one `make_dataset` call: one slot per file, updated in-graph."""

    def __init__(self, paths: Sequence[str], unit: str):
        self.paths = list(paths)
        self.unit = unit  # "line" or "record": what the numbers in messages count
        with tf.init_scope():  # the counters must outlive any tf.function that builds data
            zeros = tf.zeros([len(self.paths)], tf.int64)
            self.read = ResourceVariable(zeros, trainable=False, name="rows_read")
            self.skipped = ResourceVariable(zeros, trainable=False, name="rows_skipped")
            self.passes = ResourceVariable(zeros, trainable=False, name="passes")
            self.first_skipped = ResourceVariable(
                tf.fill([len(self.paths)], _NO_LINE), trainable=False, name="first_skipped"
            )

    def update(
        self,
        file_index: tf.Tensor,
        starts_file: tf.Tensor,
        num_read: tf.Tensor,
        skipped_rows: tf.Tensor,
    ) -> list[tf.Operation]:
        """Adds one chunk's counts; returns the update ops (callers depend on them).

        Args:
            file_index: int64 scalar, index into `paths`.
            starts_file: bool scalar, true for the first chunk of a pass over the file.
            num_read: int scalar, data rows in the chunk (header excluded).
            skipped_rows: int64 [k], line/record numbers of the rows dropped.
        """
        index = [[file_index]]
        first = tf.reduce_min(tf.concat([skipped_rows, [_NO_LINE]], axis=0))
        return [
            self.read.scatter_nd_add(index, [tf.cast(num_read, tf.int64)]),
            self.skipped.scatter_nd_add(index, [tf.size(skipped_rows, out_type=tf.int64)]),
            self.passes.scatter_nd_add(index, [tf.cast(starts_file, tf.int64)]),
            self.first_skipped.scatter_nd_min(index, [first]),
        ]

    def reset(self) -> None:
        for counter in (self.read, self.skipped, self.passes):
            counter.assign(tf.zeros_like(counter))
        self.first_skipped.assign(tf.fill([len(self.paths)], _NO_LINE))


class BadRowReport:
    """Per-file counts of rows read and malformed rows skipped by `make_dataset`.

    Pass one to `make_dataset(..., report=report)`; after iterating, `summary()` says which
    files had malformed rows. Counts accumulate over every pass: a dataset iterated for three
    epochs (or a validation set read once per epoch) reads each row three times, and the
    summary says so. One report may collect several datasets; counts are merged by path.

    Example:
        report = BadRowReport()
        ds = make_dataset(schema, "train-*.csv", 1024, bad_rows="skip", report=report)
        model.fit(ds)
        print(report.summary())  # "train-3.csv: skipped 3 of 9,000 rows (malformed), ..."
    """

    def __init__(self) -> None:
        self._counters: list[FileCounters] = []

    def track(self, paths: Sequence[str], unit: str) -> FileCounters:
        """Creates counters for one dataset's files (called by `make_dataset`)."""
        counters = FileCounters(paths, unit)
        self._counters.append(counters)
        return counters

    def _merged(self, name: str) -> dict[str, int]:
        merged: dict[str, int] = {}
        for counters in self._counters:
            for path, value in zip(counters.paths, getattr(counters, name).numpy(), strict=True):
                merged[path] = merged.get(path, 0) + int(value)
        return merged

    def rows_read(self) -> dict[str, int]:
        """Data rows read per file path (header lines excluded; every pass counted)."""
        return self._merged("read")

    def skipped(self) -> dict[str, int]:
        """Malformed rows dropped per file path (0 for clean files; every pass counted)."""
        return self._merged("skipped")

    def first_skipped(self) -> dict[str, int]:
        """The first line (or record) number skipped, for each file with skipped rows.

        Print it with `sed -n Np file` (text) to see the row; rerunning with
        `bad_rows="error"` names the offending column and value.
        """
        first: dict[str, int] = {}
        for counters in self._counters:
            for path, value in zip(counters.paths, counters.first_skipped.numpy(), strict=True):
                if value != _NO_LINE:
                    first[path] = min(first.get(path, _NO_LINE), int(value))
        return first

    def passes(self) -> dict[str, int]:
        """How many times each file was started (epochs, or re-reads of an eval set)."""
        return self._merged("passes")

    def summary(self) -> str:
        """One line per file with skipped rows, or 'no bad rows (...)' if there were none."""
        read, skipped, passes = self.rows_read(), self.skipped(), self.passes()
        first = self.first_skipped()
        units = {path: c.unit for c in self._counters for path in c.paths}
        lines = []
        for path, count in skipped.items():
            if count == 0:
                continue
            reread = f" read in {passes[path]} passes" if passes[path] > 1 else ""
            lines.append(
                f"{path}: skipped {count:,} of {read[path]:,} rows{reread} (malformed), "
                f"first at {units[path]} {first[path]}"
            )
        if lines:
            return "\n".join(lines)
        num_files = len(read)
        most, fewest = max(passes.values(), default=0), min(passes.values(), default=0)
        reread = ""
        if most > 1:  # say so, or 24,000 rows from an 8,000-row file would puzzle
            reread = f", {most} passes" if most == fewest else f", up to {most} passes"
        return (
            f"no bad rows ({sum(read.values()):,} rows read from {num_files} "
            f"file{'' if num_files == 1 else 's'}{reread})"
        )

    def reset(self) -> None:
        """Zeroes every counter (e.g. to count one evaluation pass on its own)."""
        for counters in self._counters:
            counters.reset()

    def __repr__(self) -> str:
        return f"BadRowReport({self.summary()!r})"
