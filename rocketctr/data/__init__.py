"""Streaming tf.data input: raw files -> batches of raw features and 0/1 labels.

`make_dataset(schema, patterns, batch_size)` reads Criteo/Avazu-style TSV/CSV, libfm,
Parquet and TFRecord (tf.Example) files. Malformed rows are refused with an error naming
file, line, column and value, or skipped and counted in a `BadRowReport`.
"""

from rocketctr.data.bad_row_report import BadRowError, BadRowReport
from rocketctr.data.dataset import make_dataset

__all__ = ["BadRowError", "BadRowReport", "make_dataset"]
