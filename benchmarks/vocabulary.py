"""Vocabulary against hashing: every hashed categorical feature of a schema read through a
vocabulary of its training values (one OOV row for values seen fewer than --min_count
times) instead of hash buckets; AUC of the light net and the booster, each trained alone,
and the rows of the embedding table.

    python benchmarks/vocabulary.py --schema criteo --split_rows 8000 \\
        --train /work/shared/data/criteo/criteo_kaggle_train_head9999.txt
    python benchmarks/vocabulary.py --schema avazu --split_rows 7200 \\
        --train /work/shared/data/avazu/avazu_train_head8999.csv

Every run goes through `rocketctr.training.train.train()` with the schema's preset (benchmarks/
quality.py `run_quality`); the vocabulary runs make their statistics pass over the
training split only.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402  (benchmarks/common.py; imports rocketctr before TensorFlow)
import quality  # noqa: E402

# isort: split
from rocketctr.config.core import load_config, parse_override
from rocketctr.features import statistics as feature_stats
from rocketctr.features.schema import Vocabulary, load_schema


def vocabulary_schema(schema, min_count: int):
    """The schema with every hashed feature read through a vocabulary instead."""
    categorical = [
        dataclasses.replace(f, hash_buckets=None, vocabulary=Vocabulary(min_count))
        if f.hash_buckets else f
        for f in schema.categorical
    ]  # fmt: skip
    return dataclasses.replace(schema, categorical=tuple(categorical))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--schema", required=True)
    parser.add_argument("--train", required=True)
    parser.add_argument("--split_rows", type=int, required=True)
    parser.add_argument("--min_count", type=int, default=2)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--set", action="append", default=[], help="key=value override.")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    schema = load_schema(args.schema)
    with tempfile.TemporaryDirectory(prefix="rocketctr_vocabulary_") as tmp:
        tmp = Path(tmp)
        train_file, eval_file = quality.split_file(args.train, args.split_rows, tmp, schema.header)
        vocab = vocabulary_schema(schema, args.min_count)
        vocab_path = tmp / f"{schema.name}_vocabulary.yaml"
        vocab_path.write_text(yaml.safe_dump(vocab.to_dict(), sort_keys=False))
        stats = feature_stats.compute(vocab, [train_file])
        feature_stats.save(stats, vocab, tmp / "stats")
        resolved = feature_stats.resolve(vocab, tmp / "stats")
        rows = {
            "hashing": sum(f.num_rows for f in schema.categorical),
            "vocabulary": sum(f.num_rows for f in resolved.categorical),
        }
        overrides = dict(parse_override(s) for s in args.set)
        config = load_config(args.schema).replace(overrides)
        light, booster = {"distill.mode": "light_only"}, {"distill.mode": "booster_only"}
        variants = {
            "light_hashing": (light, "light", None),
            "light_vocabulary": ({**light, "schema": str(vocab_path)}, "light", None),
            "booster_hashing": (booster, "booster", None),
            "booster_vocabulary": ({**booster, "schema": str(vocab_path)}, "booster", None),
        }
        result = quality.run_quality(
            config, [train_file], [eval_file], range(args.seeds), tmp / "runs", variants
        )
    title = (
        f"Vocabulary (min_count {args.min_count}) against hashing, {args.schema} sample: "
        f"first {args.split_rows} rows train, the rest eval; preset {args.schema!r} + "
        f"{overrides}; {args.seeds} seeds. Embedding table rows: hashing {rows['hashing']}, "
        f"vocabulary {rows['vocabulary']}. " + quality.describe_selection(config)
    )
    text = quality.markdown(result, title)
    print(text)
    out = args.out or f"vocabulary_{args.schema}"
    paths = common.write_results(out, {"args": vars(args), "rows": rows, **result}, text)
    print("Written to", *paths)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
