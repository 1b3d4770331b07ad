"""Input pipeline: rows/s from Criteo TSV, Parquet and TFRecord into training batches.

    /work/venv/bin/python benchmarks/input_pipeline.py
    /work/venv/bin/python benchmarks/input_pipeline.py --rows 262144 --rounds 3
    /work/venv/bin/python benchmarks/input_pipeline.py --tags --out input_pipeline_tags

The same synthetic Criteo-shaped rows (`rocketctr.data.synthetic`) are written to a temp
dir as raw Criteo TSV, Parquet (pandas/pyarrow; nullable integer counts) and TFRecord of
`tf.train.Example` (label and counts as int64, absent when missing; categoricals as bytes).
Each file is read through `make_dataset` exactly as `rocketctr.training.train.train` reads training
data (shuffle on, 65,536-row buffer, `bad_rows="error"` checks, batch 4096), and batches
are pulled with a plain loop (one Python step per batch, never per row).

In the same run, interleaved with the reads, the co-training step of the reference
configuration (DCN 3 crosses ∥ MLP 1024-512-256, MLP-64 light, emb 16, Adagrad tables,
no XLA) is timed on in-memory batches. "read / train" is rows/s read over examples/s
trained: above 1 the reader keeps up with training on its own; note that in a real run
the two share the machine's cores, so the margin needed is larger than 1.

With `--tags`, every row also has a multi-valued `tags` field (0-8 Zipf-distributed tokens
of 100,000; hashed, mean-pooled, max_length 8): "|"-joined in TSV, a Parquet list column,
repeated bytes in TFRecord; the co-training step then reads it too.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402  (benchmarks/common.py; imports rocketctr before TensorFlow)

# isort: split
import numpy as np
import pandas as pd
import tensorflow as tf

from rocketctr.data import make_dataset
from rocketctr.data.synthetic import generate, write_criteo_tsv
from rocketctr.features.schema import load_schema, parse_schema
from rocketctr.model.cotrain import build_model

TAGS = {
    "name": "tags",
    "hash_buckets": 100_000,
    "multi_valued": {"separator": "|", "max_length": 8, "pooling": "mean"},
}


def tag_lists(num_rows: int, seed: int = 0) -> list[list[str]]:
    """0-8 tokens a row, Zipf-distributed over 100,000."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(0, 9, num_rows)
    tokens = np.minimum(rng.zipf(1.2, lengths.sum()), 100_000)
    bounds = np.concatenate([[0], np.cumsum(lengths)])
    return [[f"t{t}" for t in tokens[a:b]] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def write_parquet(frame: pd.DataFrame, path: Path) -> Path:
    frame.to_parquet(path, index=False, row_group_size=65536)
    return path


def write_tfrecord(frame: pd.DataFrame, path: Path) -> Path:
    """One tf.train.Example per row; missing counts are left out (the reader gives NaN)."""
    dense = [c for c in frame.columns if c.startswith("I")]
    categorical = [c for c in frame.columns if c.startswith("C")]
    labels = frame["label"].to_numpy()
    counts = {c: frame[c].to_numpy(dtype="float64", na_value=np.nan) for c in dense}
    tokens = {c: frame[c].to_numpy().astype("S") for c in categorical}
    tags = frame["tags"].tolist() if "tags" in frame else None
    with tf.io.TFRecordWriter(str(path)) as writer:
        for i in range(len(frame)):  # setup only; not timed
            feature = {"label": _int64(int(labels[i]))}
            for c in dense:
                if counts[c][i] == counts[c][i]:
                    feature[c] = _int64(int(counts[c][i]))
            for c in categorical:
                feature[c] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[tokens[c][i]]))
            if tags is not None:  # repeated bytes
                values = tf.train.BytesList(value=[t.encode() for t in tags[i]])
                feature["tags"] = tf.train.Feature(bytes_list=values)
            example = tf.train.Example(features=tf.train.Features(feature=feature))
            writer.write(example.SerializeToString())
    return path


def _int64(value: int) -> tf.train.Feature:
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))


def read_pass(schema, path: Path, batch_size: int, seed: int) -> int:
    """One pass over a file as `train()` reads training data; returns the row count."""
    dataset = make_dataset(schema, str(path), batch_size, shuffle=True, seed=seed)
    rows = 0
    for _, labels in dataset:
        rows += int(labels.shape[0])
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=131072, help="Synthetic rows per file.")
    parser.add_argument("--batch_size", type=int, default=4096)
    parser.add_argument("--rounds", type=int, default=3, help="Interleaved passes per format.")
    parser.add_argument("--train_steps", type=int, default=6, help="Co-train steps per round.")
    parser.add_argument("--out", default="input_pipeline", help="Results file stem.")
    parser.add_argument("--tags", action="store_true", help="Add a multi-valued field.")
    args = parser.parse_args(argv)

    tsv_schema = load_schema("criteo")
    if args.tags:
        spec = tsv_schema.to_dict()
        spec["columns"] = [*spec["columns"], "tags"]
        spec["categorical"] = [*spec["categorical"], TAGS]
        tsv_schema = parse_schema(spec, source="criteo + tags")
    schemas = {
        "tsv": tsv_schema,
        "parquet": dataclasses.replace(tsv_schema, format="parquet"),
        "tfrecord": dataclasses.replace(tsv_schema, format="tfrecord"),
    }
    with tempfile.TemporaryDirectory(prefix="rocketctr_input_") as tmp:
        tmp = Path(tmp)
        frame = generate(args.rows, seed=0)
        listed = frame
        if args.tags:
            tags = tag_lists(args.rows)
            listed = frame.assign(tags=tags)
            frame = frame.assign(tags=["|".join(t) for t in tags])
        paths = {
            "tsv": write_criteo_tsv(frame, tmp / "rows.tsv"),
            "parquet": write_parquet(listed, tmp / "rows.parquet"),
            "tfrecord": write_tfrecord(listed, tmp / "rows.tfrecord"),
        }
        sizes = {name: path.stat().st_size for name, path in paths.items()}

        model = build_model(common.reference_config("co_train"), tsv_schema)
        train_function = model.make_train_function()
        iterator = iter(common.cached_batches(tsv_schema, paths["tsv"], args.batch_size))
        for _ in range(3):  # warm-up: tracing
            train_function(iterator)
        for name in paths:  # warm-up: first-pass file caches, reader tracing
            read_pass(schemas[name], paths[name], args.batch_size, seed=0)

        read_seconds = {name: [] for name in paths}
        train_seconds = []
        for round_index in range(args.rounds):
            for name in paths:
                start = time.perf_counter()
                rows = read_pass(schemas[name], paths[name], args.batch_size, seed=round_index)
                read_seconds[name].append(time.perf_counter() - start)
                if rows != args.rows:
                    raise RuntimeError(f"{name}: read {rows} rows, wrote {args.rows}")
            start = time.perf_counter()
            for _ in range(args.train_steps):
                logs = train_function(iterator)
            float(logs["loss"])
            train_seconds.append((time.perf_counter() - start) / args.train_steps)

    def median(values: list[float]) -> float:
        return sorted(values)[len(values) // 2]

    train_rate = args.batch_size / median(train_seconds)
    results = {
        name: {
            "rows_per_s": args.rows / median(seconds),
            "ratio_to_co_train": args.rows / median(seconds) / train_rate,
            "file_mb": sizes[name] / 1e6,
        }
        for name, seconds in read_seconds.items()
    }
    machine = common.machine_description()
    rows = [
        [name, f"{r['file_mb']:.1f}", f"{r['rows_per_s']:,.0f}", f"{r['ratio_to_co_train']:.2f}x"]
        for name, r in results.items()
    ]
    rows.append(["co-train step (in-memory)", "–", f"{train_rate:,.0f}", "1.00x"])
    text = "\n".join(
        [
            "# Input pipeline: file -> training batches (make_dataset)",
            "",
            f"{args.rows:,} synthetic Criteo-shaped rows per format"
            + (" with a multi-valued tags field (0-8 values)" if args.tags else "")
            + f", batch {args.batch_size}, "
            f"shuffle on (as in train()); median of {args.rounds} interleaved passes. "
            f"Machine: nproc {machine['nproc']}, {machine['cpu']}, TF {machine['tensorflow']}.",
            "",
            common.markdown_table(["source", "file MB", "rows/s", "read / co-train"], rows),
            "",
        ]
    )
    print(text)
    payload = {"args": vars(args), "machine": machine, "co_train_examples_per_s": train_rate}
    payload["formats"] = results
    paths_written = common.write_results(args.out, payload, text)
    print("Written to", *paths_written)
    return 0


if __name__ == "__main__":
    sys.exit(main())
