"""TFRecord reads with and without the per-record kind check, interleaved in one process.

    python benchmarks/tfrecord_kind_check.py [--rows 131072] [--rounds 3]

The reader checks, for every record, that each column is stored as the kind (bytes, float
or int64 list) of the file's first records, so that one mistyped record is a bad row
rather than a failed chunk (`TFRecordReader._kind_check`). This times a training-style
pass (`input_pipeline.read_pass`: shuffle, checks, batch 4096) over the same synthetic
Criteo-shaped TFRecord file with the check as shipped and with it replaced by a no-op, and
prints rows/s of each and their ratio (median over rounds).
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import input_pipeline  # noqa: E402  (imports rocketctr before TensorFlow)

# isort: split
import tensorflow as tf

from rocketctr.data import tfrecord
from rocketctr.data.checks import RowCheck
from rocketctr.data.synthetic import generate
from rocketctr.features.schema import load_schema


def _no_check(self, serialized: tf.Tensor) -> RowCheck:
    return RowCheck(tf.zeros_like(serialized, tf.bool), lambda row: tf.constant(""))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=131072)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    schema = dataclasses.replace(load_schema("criteo"), format="tfrecord")
    shipped = tfrecord.TFRecordReader._kind_check
    rates: dict[str, list[float]] = {"with the check": [], "without": []}
    with tempfile.TemporaryDirectory(prefix="rocketctr_kinds_") as tmp:
        path = input_pipeline.write_tfrecord(generate(args.rows, seed=0), Path(tmp) / "r.tfr")
        for round_index in range(args.rounds):
            for name, check in (("with the check", shipped), ("without", _no_check)):
                tfrecord.TFRecordReader._kind_check = check
                start = time.perf_counter()
                rows = input_pipeline.read_pass(schema, path, 4096, seed=round_index)
                rates[name].append(rows / (time.perf_counter() - start))
    tfrecord.TFRecordReader._kind_check = shipped
    for name, values in rates.items():
        print(f"{name:>15}: " + ", ".join(f"{v:,.0f}" for v in values) + " rows/s")
    ratio = statistics.median(rates["with the check"]) / statistics.median(rates["without"])
    print(f"with / without (medians): {ratio:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
