"""The cost of walking a plain TFRecord file's record headers, against one training pass.

    python benchmarks/tfrecord_walk.py [--rows 1048576] [--rounds 3]

Before a plain (uncompressed) TFRecord file is first read, the reader walks its record
headers to check that the records end where the file does (`tfrecord.check_records`):
TensorFlow's own reader stops quietly at a record header cut short. This times, on one
synthetic Criteo-shaped TFRecord file, the walk (made afresh each round) and a
training-style pass (`input_pipeline.read_pass`: shuffle, checks, batch 4096), and prints
rows/s of each and the walk's time as a share of one pass (medians over rounds). The walk
runs once per file and process; a run reads its files once per epoch.
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
from rocketctr.data import tfrecord
from rocketctr.data.synthetic import generate
from rocketctr.features.schema import load_schema


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1 << 20)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    schema = dataclasses.replace(load_schema("criteo"), format="tfrecord")
    walks, passes = [], []
    with tempfile.TemporaryDirectory(prefix="rocketctr_walk_") as tmp:
        path = input_pipeline.write_tfrecord(generate(args.rows, seed=0), Path(tmp) / "r.tfr")
        size = path.stat().st_size
        for round_index in range(args.rounds):
            tfrecord._WALKED.clear()  # walked afresh (the pass below finds it walked)
            start = time.perf_counter()
            tfrecord.check_records([str(path)], [""])
            walks.append(time.perf_counter() - start)
            start = time.perf_counter()
            rows = input_pipeline.read_pass(schema, path, 4096, seed=round_index)
            passes.append(time.perf_counter() - start)
    assert rows == args.rows
    print(f"{args.rows:,} records, {size / 2**20:,.0f} MiB ({size / args.rows:,.0f} bytes each)")
    print("      walk: " + ", ".join(f"{args.rows / s:,.0f}" for s in walks) + " records/s")
    print("a pass    : " + ", ".join(f"{args.rows / s:,.0f}" for s in passes) + " rows/s")
    walk, one_pass = statistics.median(walks), statistics.median(passes)
    print(f"walk / one pass (medians): {walk:.2f} s / {one_pass:.2f} s = {walk / one_pass:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
