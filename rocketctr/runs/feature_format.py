"""The feature-processing format a training run was trained with, recorded in its model dir.

A checkpoint's embedding rows mean something only under the hashing that chose them: restored
under another hashing, every hashed value would read some other value's row, and the model
would score garbage without any error. A run therefore records `HASHING_VERSION` in
`<model_dir>/feature_format.json` when it starts, and restoring or resuming a run checks it.

A run dir from before the record existed (a config.yaml and checkpoints, and no
feature_format.json) was trained with hashing version 1, and is refused when its schema has
hashed features (runs over integer-id features only, like Frappe's, map values exactly as
before and are allowed).
"""

from __future__ import annotations

import json
from pathlib import Path

from rocketctr.features.processor import HASHING_DESCRIPTION, HASHING_VERSION
from rocketctr.features.schema import Schema, load_schema
from rocketctr.files import write_atomically
from rocketctr.runs.layout import BACKUP_DIR, CHECKPOINT_DIR, CONFIG_FILE

FEATURE_FORMAT_FILE = "feature_format.json"


def feature_format() -> dict:
    """What the current FeatureProcessor does, as recorded in run dirs and exports."""
    return {"hashing_version": HASHING_VERSION, "hashing": HASHING_DESCRIPTION}


def run_hashing_version(model_dir: str | Path) -> int | None:
    """The hashing version a run dir records; 1 for a run from before the record (a
    config.yaml and trained state, no record); None for a dir with nothing trained yet."""
    model_dir = Path(model_dir)
    path = model_dir / FEATURE_FORMAT_FILE
    if path.exists():
        return int(json.loads(path.read_text())["hashing_version"])
    return 1 if (model_dir / CONFIG_FILE).exists() and has_trained_state(model_dir) else None


def has_trained_state(model_dir: str | Path) -> bool:
    """Whether a run dir holds any checkpoint or backup file (has trained at all)."""
    model_dir = Path(model_dir)
    return any(
        (model_dir / d).is_dir() and any((model_dir / d).iterdir())
        for d in (CHECKPOINT_DIR, BACKUP_DIR)
    )


def check_run_format(
    model_dir: str | Path, schema: Schema | str, error: type[Exception] = ValueError
) -> None:
    """Refuses a run dir whose checkpoints were trained with another hashing.

    Args:
        model_dir: a training run's model dir.
        schema: the run's schema (or its name/path), to know whether it hashes anything.
        error: the exception type to raise.

    Raises:
        error: the run records (or, having no record, implies) another hashing version and
            its schema has hash-bucket features.
    """
    version = run_hashing_version(model_dir)
    if version is None or version == HASHING_VERSION:
        return
    schema = load_schema(schema) if isinstance(schema, str) else schema
    hashed = [f.name for f in schema.categorical if f.hash_buckets]
    if not hashed:
        return  # integer-id and derived features map to the same rows in every version
    recorded = (
        f"records hashing version {version} in {FEATURE_FORMAT_FILE}"
        if (Path(model_dir) / FEATURE_FORMAT_FILE).exists()
        else f"has no {FEATURE_FORMAT_FILE}, so it was trained with hashing version 1"
    )
    raise error(
        f"{model_dir} {recorded}; this rocketctr hashes categorical values with version "
        f"{HASHING_VERSION} ({HASHING_DESCRIPTION}). The run's embedding rows for its hashed "
        f"features ({', '.join(hashed[:5])}{', ...' if len(hashed) > 5 else ''}) would be "
        "looked up for other values, and it would score wrongly without any error, so it is "
        "refused. Retrain it with this version in a new --model_dir, or export or resume it "
        "with the rocketctr version that trained it (its existing exports keep their own "
        "hashing and still serve correctly)."
    )


def record_run_format(model_dir: str | Path) -> None:
    """Writes this version's feature format into a run dir (once, when the run starts)."""
    path = Path(model_dir) / FEATURE_FORMAT_FILE
    if not path.exists():
        write_atomically(path, json.dumps(feature_format(), indent=2) + "\n")


def prepare_run_format(model_dir: str | Path, schema: Schema | str, error=ValueError) -> None:
    """For a run that starts or resumes in `model_dir`: checks, then records the format."""
    check_run_format(model_dir, schema, error)
    record_run_format(model_dir)
