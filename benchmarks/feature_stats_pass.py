"""The statistics pass against a plain read: rows/s of `feature_stats.compute` with every
Criteo categorical as a vocabulary, and of reading the same file through `make_dataset`,
alternated in one run.

    python benchmarks/feature_stats_pass.py --rows 262144 --rounds 2
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
from rocketctr.data import make_dataset
from rocketctr.data.synthetic import generate, write_criteo_tsv
from rocketctr.features import statistics as feature_stats
from rocketctr.features.schema import Vocabulary, load_schema


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=262_144)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", default="feature_stats_pass")
    args = parser.parse_args(argv)
    schema = load_schema("criteo")
    vocabulary = dataclasses.replace(
        schema,
        categorical=tuple(
            dataclasses.replace(f, hash_buckets=None, vocabulary=Vocabulary(2))
            for f in schema.categorical
        ),
    )
    seconds = {"read": [], "pass": []}
    with tempfile.TemporaryDirectory(prefix="rocketctr_pass_") as tmp:
        path = str(write_criteo_tsv(generate(args.rows, seed=0), Path(tmp) / "rows.tsv"))
        for _ in range(args.rounds):
            start = time.perf_counter()
            dataset = make_dataset(schema, [path], 8192, in_file_order=True)
            rows = sum(len(labels) for _, labels in dataset.as_numpy_iterator())
            seconds["read"].append(time.perf_counter() - start)
            start = time.perf_counter()
            stats = feature_stats.compute(vocabulary, [path])
            seconds["pass"].append(time.perf_counter() - start)
    assert rows == args.rows
    rates = {k: args.rows / min(v) for k, v in seconds.items()}
    kept = sum(len(s["values"]) for s in stats.values())
    text = (
        f"# Statistics pass\n\n{args.rows:,} synthetic Criteo rows, 26 vocabularies "
        f"(min_count 2, {kept:,} values kept); best of {args.rounds} alternated rounds.\n\n"
        + common.markdown_table(
            ["", "rows/s", "vs read"],
            [
                ["read (make_dataset)", f"{rates['read']:,.0f}", "1.00x"],
                [
                    "statistics pass",
                    f"{rates['pass']:,.0f}",
                    f"{rates['pass'] / rates['read']:.2f}x",
                ],
            ],
        )
        + "\n"
    )
    print(text)
    print("Written to", *common.write_results(args.out, {"args": vars(args), **rates}, text))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
