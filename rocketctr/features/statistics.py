"""The statistics pass: vocabularies, quantile boundaries and moments from the training files.

A schema with `vocabulary` or `quantiles` categorical features, or `standardize` dense ones,
learns part of its layout from data. Before a run first trains, one streaming pass over its
training files (the readers' raw values, in file order) counts every vocabulary feature's
values, keeps a uniform sample of each bucketed column for its quantiles, and sums each
standardized column. What it finds is stored in the model dir:

    <model_dir>/feature_stats.json       boundaries, moments, vocabulary sizes and digests
    <model_dir>/vocabularies/<name>.txt  one value per line; line k is row k

A resumed run, an evaluation or an export reads them back (`resolve`), never recounts: the
table rows of a vocabulary are those values, so a vocabulary file that changed since is
refused. The schema as written and as resolved differ only in each feature's `learned`.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import json
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rocketctr.features.schema import Learned, Schema, SchemaError

STATS_FILE = "feature_stats.json"
VOCABULARY_DIR = "vocabularies"
QUANTILE_SAMPLE = 1_000_000  # values kept per bucketed column (a uniform reservoir)
_BATCH = 8192


class FeatureStatsError(SchemaError):
    """The stored statistics are missing, damaged, or do not match the schema."""


def _spec(schema: Schema) -> dict:
    """What the pass computes, by feature: compared with what a stored pass computed."""
    out = {}
    for f in schema.categorical:
        if f.vocabulary and not f.sequence_of:
            out[f.name] = {"column": f.column, "vocabulary": dataclasses.asdict(f.vocabulary)}
        elif f.quantiles:
            out[f.name] = {"column": f.column, "quantiles": f.quantiles}
    for f in schema.dense:
        if f.transform == "standardize":
            out[f.name] = {"column": f.name, "standardize": True, "clip_max": f.clip_max}
    return out


def compute(schema: Schema, patterns: Sequence[str], bad_rows: str = "error") -> dict:
    """One pass over `patterns`: {feature: its statistics}, as `save` stores them.

    Vocabulary values are kept most frequent first, ties by value (so two passes over
    the same rows give the same rows); values holding a line break, or bytes that are
    not UTF-8, cannot be a line of the vocabulary file and read the OOV row. Quantile
    boundaries are the distinct q-quantiles of a uniform sample of the column's numeric
    values (all of them up to QUANTILE_SAMPLE); missing and non-numeric values take no
    part. Moments are over the finite values after `clip_max`.
    """
    from rocketctr.data import make_dataset  # TensorFlow loads only when a pass is needed

    spec = _spec(schema)
    counts = {n: collections.Counter() for n, s in spec.items() if "vocabulary" in s}
    samples = {n: np.zeros(0) for n, s in spec.items() if "quantiles" in s}
    seen = dict.fromkeys(samples, 0)
    sums = {n: np.zeros(3) for n, s in spec.items() if "standardize" in s}
    rng = np.random.default_rng(0)
    separators = schema.separators
    dataset = make_dataset(schema, patterns, _BATCH, bad_rows=bad_rows, in_file_order=True)
    for features, _ in dataset.as_numpy_iterator():
        for name, counter in counts.items():
            column = spec[name]["column"]
            values = features[column].tolist()
            if column in separators:
                joined = separators[column].encode()
                values = [v for row in values for v in row.split(joined) if v]
            counter.update(values)  # C-accelerated counting of a list (7x np.unique here)
        for name in samples:
            values = _numbers(features[spec[name]["column"]])
            samples[name], seen[name] = _reservoir(samples[name], seen[name], values, rng)
        for name, total in sums.items():
            x = np.asarray(features[name], np.float64)
            if spec[name]["clip_max"] is not None:
                x = np.minimum(x, spec[name]["clip_max"])
            x = x[np.isfinite(x)]
            total += (len(x), x.sum(), np.square(x).sum())
    stats = {}
    for name, counter in counts.items():
        min_count = spec[name]["vocabulary"]["min_count"]
        # "" (missing) has its own row after the OOV row; it, values with a line break and
        # bytes that are not UTF-8 cannot be a line of the (text) vocabulary file.
        kept = [(v, c) for v, c in counter.items() if c >= min_count and _writable(v)]
        if not kept:  # an empty vocabulary file: no table could be built from it
            raise FeatureStatsError(
                _empty_vocabulary(name, spec[name]["column"], min_count, counter)
            )
        kept.sort(key=lambda vc: (-vc[1], vc[0]))
        stats[name] = {
            "values": [v.decode() for v, _ in kept],
            "values_counted": sum(counter.values()),
        }
    for name, sample in samples.items():
        q = spec[name]["quantiles"]
        if not len(sample):
            raise FeatureStatsError(f"Feature {name!r}: no numeric value in the training files.")
        cuts = np.unique(np.quantile(sample, np.linspace(0, 1, q + 1)[1:-1]))
        stats[name] = {"boundaries": [float(b) for b in cuts], "values_seen": seen[name]}
    for name, (n, total, squares) in sums.items():
        if not n:
            raise FeatureStatsError(f"Feature {name!r}: no finite value in the training files.")
        mean = total / n
        std = float(np.sqrt(max(squares / n - mean * mean, 0.0)))
        stats[name] = {"mean": float(mean), "std": std, "values_seen": int(n)}
    return stats


def _empty_vocabulary(name: str, column: str, min_count: int, counter) -> str:
    """The one-line error of a vocabulary feature none of whose values reaches min_count."""
    counted = [(c, v) for v, c in counter.items() if _writable(v)]
    fix = "Nothing of the statistics pass was stored: lower min_count, or hash the field."
    if not counted:
        return (
            f"Feature {name!r} (column {column!r}): the training files hold no value of it, so "
            f"its vocabulary would be empty. {fix}"
        )
    count, value = min(counted, key=lambda cv: (-cv[0], cv[1]))  # the vocabulary's order
    return (
        f"Feature {name!r} (column {column!r}): no value reaches its vocabulary min_count of "
        f"{min_count} in the training files (the most frequent, {value.decode()!r}, is seen "
        f"{count:,} times), so its vocabulary would be empty. {fix}"
    )


def _writable(value: bytes) -> bool:
    """Whether a value can be one line of the vocabulary file."""
    if not value or b"\n" in value or b"\r" in value:
        return False
    try:
        value.decode()
    except UnicodeDecodeError:
        return False
    return True


def _numbers(values: np.ndarray) -> np.ndarray:
    """The finite numbers of a bucketed column (readers deliver it as floats, NaN missing)."""
    x = np.asarray(values, np.float64)
    return x[np.isfinite(x)]


def _reservoir(sample, seen: int, values: np.ndarray, rng) -> tuple[np.ndarray, int]:
    """Algorithm R over a batch: a uniform sample of at most QUANTILE_SAMPLE of all values
    seen so far (`seen` of them before this batch)."""
    room = QUANTILE_SAMPLE - len(sample)
    if room > 0:
        sample = np.concatenate([sample, values[:room]])
        seen, values = seen + len(values[:room]), values[room:]
    if len(values):
        # Value i of the batch replaces a random slot with probability QUANTILE_SAMPLE / its
        # position; when two land on one slot the later wins, as it would one at a time.
        positions = seen + 1 + np.arange(len(values))
        slots = (rng.random(len(values)) * positions).astype(np.int64)
        keep = slots < QUANTILE_SAMPLE
        sample[slots[keep]] = values[keep]
        seen += len(values)
    return sample, seen


def save(stats: dict, schema: Schema, model_dir: str | Path) -> None:
    """Writes the vocabulary files, then feature_stats.json (last: its presence means the
    pass is complete)."""
    from rocketctr.files import write_atomically

    model_dir = Path(model_dir)
    record = {"spec": _spec(schema), "features": {}}
    for name, entry in stats.items():
        entry = dict(entry)
        if "values" in entry:
            text = "".join(f"{v}\n" for v in entry.pop("values"))
            path = model_dir / VOCABULARY_DIR / f"{name}.txt"
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomically(path, text)
            entry["size"] = text.count("\n")
            entry["sha256"] = hashlib.sha256(text.encode()).hexdigest()
        record["features"][name] = entry
    write_atomically(model_dir / STATS_FILE, json.dumps(record, indent=1))


def stored(model_dir: str | Path) -> bool:
    return (Path(model_dir) / STATS_FILE).exists()


def resolve(schema: Schema, model_dir: str | Path) -> Schema:
    """The schema with what the stored pass of `model_dir` learned filled in.

    Raises:
        FeatureStatsError: no stored pass, one for other features or settings (the message
            names them), or a vocabulary file that changed since.
    """
    if not schema.needs_stats:
        return schema
    model_dir = Path(model_dir)
    path = model_dir / STATS_FILE
    if not path.exists():
        raise FeatureStatsError(
            f"{model_dir} holds no statistics pass ({path}); schema {schema.name!r} needs one "
            "(vocabulary, quantiles or standardize features)."
        )
    try:
        record = json.loads(path.read_text())
        spec, features = record["spec"], record["features"]
    except (ValueError, KeyError) as e:
        raise FeatureStatsError(f"{path} is damaged: {e}") from None
    wanted = json.loads(json.dumps(_spec(schema)))
    if spec != wanted:
        changed = sorted(k for k in spec.keys() | wanted.keys() if spec.get(k) != wanted.get(k))
        raise FeatureStatsError(
            f"{path} was computed for other settings of {changed} ({spec}) than the schema "
            f"gives now ({wanted}): its vocabularies and boundaries are what the run's tables "
            "mean. Use that schema again, or a new --model_dir."
        )
    learned = {}
    for name, entry in features.items():
        if "sha256" in entry:
            file = model_dir / VOCABULARY_DIR / f"{name}.txt"
            digest = hashlib.sha256(file.read_bytes()).hexdigest() if file.exists() else None
            if digest != entry["sha256"]:
                raise FeatureStatsError(
                    f"The vocabulary {file} is {'missing' if digest is None else 'changed'} "
                    f"since the statistics pass: the table's {entry['size']} rows are its "
                    "lines as they were. Restore it, or train in a new --model_dir."
                )
            learned[name] = Learned(size=entry["size"], file=str(file.resolve()))
        elif "boundaries" in entry:
            learned[name] = Learned(boundaries=tuple(entry["boundaries"]))
        else:
            learned[name] = Learned(mean=entry["mean"], std=entry["std"])
    categorical = []
    for f in schema.categorical:
        key = f.sequence_of if f.sequence_of and f.vocabulary else f.name
        categorical.append(dataclasses.replace(f, learned=learned.get(key)))
    dense = [dataclasses.replace(f, learned=learned.get(f.name)) for f in schema.dense]
    return dataclasses.replace(schema, categorical=tuple(categorical), dense=tuple(dense))


def prepare(
    schema: Schema, model_dir: str | Path, patterns: Sequence[str], bad_rows: str, chief: bool
) -> Schema:
    """The resolved schema of a run: its stored pass, or (first start) a new pass, saved
    by the chief. Non-chief workers of a multi-worker run compute the same pass (same files,
    same order) without writing it."""
    if not schema.needs_stats:
        return schema
    if not stored(model_dir):
        stats = compute(schema, patterns, bad_rows)
        if not chief:  # the same pass, kept in a directory of its own
            model_dir = tempfile.mkdtemp(prefix="rocketctr_feature_stats_")
        save(stats, schema, model_dir)
    return resolve(schema, model_dir)
