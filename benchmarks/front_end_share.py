"""What caching processed ids across epochs could save: the string front end's share of a step.

    /work/venv/bin/python benchmarks/front_end_share.py
    /work/venv/bin/python benchmarks/front_end_share.py --config frappe --rows 65536

Every epoch of a multi-epoch run reads its files again (parse) and hashes or looks up every
raw value again (`FeatureProcessor`, inside the train step). A cache of processed ids would
skip both from the second epoch on. This times, side by side in one run on the same
synthetic Criteo-shaped rows (interleaved rounds, medians):

- a pass over the TSV file as `train()` reads it (`make_dataset`), per batch;
- the model's feature processing alone (raw columns -> row ids and dense values), per batch;
- the whole co-training step on in-memory raw batches (which includes that processing);
- the same step fed from the file, as `train()` feeds it (tf.data reads ahead on other
  threads, which compete with the step for the cores).

A cache of processed ids would save about (step from the file − step in memory + processing)
/ step from the file: the reading the step waits for, and the processing.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402  (benchmarks/common.py; imports rocketctr before TensorFlow)

# isort: split
import tensorflow as tf

from rocketctr.config.core import load_config
from rocketctr.data import make_dataset
from rocketctr.data.synthetic import generate, write_criteo_tsv
from rocketctr.features.schema import load_schema
from rocketctr.model.cotrain import build_model


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=131072, help="Synthetic rows.")
    parser.add_argument("--batch_size", type=int, default=4096)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=8, help="Steps timed per round.")
    parser.add_argument(
        "--config", default=None, help="A preset or YAML for the nets (default: the reference)."
    )
    parser.add_argument("--out", default="front_end_share", help="Results file stem.")
    args = parser.parse_args(argv)

    schema = load_schema("criteo")
    config = common.reference_config("co_train", batch_size=args.batch_size)
    if args.config:
        config = load_config(args.config).replace(
            {"schema": "criteo", "train.batch_size": args.batch_size}
        )
    with tempfile.TemporaryDirectory(prefix="rocketctr_front_end_") as tmp:
        path = write_criteo_tsv(generate(args.rows, seed=0), Path(tmp) / "rows.tsv")
        model = build_model(config, schema)
        train_function = model.make_train_function()
        iterator = iter(common.cached_batches(schema, path, args.batch_size))
        process = tf.function(lambda features: model.processor(features))
        batch = next(iterator)[0]
        for _ in range(3):  # warm-up: tracing
            train_function(iterator)
            process(batch)
        from_file = iter(make_dataset(schema, str(path), args.batch_size, shuffle=True).repeat())
        train_function(from_file)
        read, processing, step, file_step = [], [], [], []
        for _ in range(args.rounds):
            start, batches = time.perf_counter(), 0
            for _ in make_dataset(schema, str(path), args.batch_size, shuffle=True):
                batches += 1
            read.append((time.perf_counter() - start) / batches)
            start = time.perf_counter()
            for _ in range(args.steps):
                ids, _ = process(batch)
            ids.numpy()
            processing.append((time.perf_counter() - start) / args.steps)
            start = time.perf_counter()
            for _ in range(args.steps):
                logs = train_function(iterator)
            float(logs["loss"])
            step.append((time.perf_counter() - start) / args.steps)
            start = time.perf_counter()
            for _ in range(args.steps):
                logs = train_function(from_file)
            float(logs["loss"])
            file_step.append((time.perf_counter() - start) / args.steps)

    r, p, s, f = (statistics.median(v) for v in (read, processing, step, file_step))
    saved = (max(f - s, 0.0) + p) / f
    results = {
        "read_ms_per_batch": 1e3 * r,
        "processing_ms_per_batch": 1e3 * p,
        "step_ms": 1e3 * s,
        "step_from_file_ms": 1e3 * f,
        "saved": saved,
    }
    machine = common.machine_description()
    text = "\n".join(
        [
            "# The string front end's share of a training step",
            "",
            f"{args.rows:,} synthetic Criteo-shaped rows (TSV), batch {args.batch_size}, "
            f"nets of {args.config or 'the reference config (DCN 1024-512-256, MLP-64, emb 16)'};"
            f" medians of {args.rounds} interleaved rounds. Machine: nproc {machine['nproc']}, "
            f"{machine['cpu']}, TF {machine['tensorflow']}.",
            "",
            common.markdown_table(
                [
                    "read alone (ms/batch)",
                    "processing (ms/batch)",
                    "step, in memory (ms)",
                    "step, from the file (ms)",
                    "a cache would save",
                ],
                [
                    [
                        f"{1e3 * r:.1f}",
                        f"{1e3 * p:.1f}",
                        f"{1e3 * s:.1f}",
                        f"{1e3 * f:.1f}",
                        f"{saved:.0%}",
                    ]
                ],
            ),
            "",
        ]
    )
    print(text)
    paths = common.write_results(
        args.out, {"args": vars(args), "machine": machine, **results}, text
    )
    print("Written to", *paths)
    return 0


if __name__ == "__main__":
    sys.exit(main())
