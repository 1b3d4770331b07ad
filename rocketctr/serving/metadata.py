"""The export's `assets.extra/rocketctr.json`: what was exported, from what, how checked."""

from __future__ import annotations

import datetime
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

import rocketctr
from rocketctr.model.cotrain import CoTrainModel
from rocketctr.runs.feature_format import feature_format
from rocketctr.serving.light_table import light_rows
from rocketctr.serving.serving_module import (
    EMBEDDING_OUTPUT,
    EXAMPLES_INPUT,
    EXAMPLES_SIGNATURE,
    OUTPUTS,
    SERVING_SIGNATURE,
    serving_input_dtypes,
)

ASSETS_EXTRA = "assets.extra"
METADATA_FILE = "rocketctr.json"


def _count(variables) -> int:
    return sum(int(np.prod(v.shape)) for v in variables)


def parameter_counts(model: CoTrainModel) -> dict[str, dict[str, int] | None]:
    """Parameters of each scoring path: the table rows it reads + tower (+ processor).

    The light path reads only its own features' rows (what a light export holds, as
    float32); the booster reads the whole table.
    """
    dim = model.rocket_config.model.embedding_dim
    counts: dict[str, dict[str, int] | None] = {"light": None, "booster": None}
    if model.has_light:
        names = [f.name for f in model.light_processor.categorical]
        table = light_rows(model.schema, names) * dim if model.light_table() else 0
        tower = _count(model.light.variables) + _count(model.light_processor.variables)
        counts["light"] = {"embedding": table, "tower": tower, "total": table + tower}
    if model.has_booster:
        table = _count(model.embedding.variables)
        tower = _count(model.booster.variables) + _count(model.processor.variables)
        counts["booster"] = {"embedding": table, "tower": tower, "total": table + tower}
    return counts


def tower_flops(model: CoTrainModel) -> dict[str, int | None]:
    """Analytic FLOPs per example of each tower present (`Tower.flops`)."""
    dim = model.rocket_config.model.embedding_dim
    out: dict[str, int | None] = {"light": None, "booster": None}
    if model.has_light:
        out["light"] = model.light.flops(len(model.light_processor.categorical), dim)
    if model.has_booster:
        out["booster"] = model.booster.flops(len(model.processor.categorical), dim)
    return out


def saved_model_bytes(path: str | Path) -> int:
    """Bytes on disk of a SavedModel: saved_model.pb and variables/ (not assets.extra)."""
    path = Path(path)
    files = [path / "saved_model.pb", *(path / "variables").rglob("*")]
    return sum(f.stat().st_size for f in files if f.is_file())


def export_info(
    model: CoTrainModel,
    version: int,
    metadata: Mapping[str, Any] | None,
    example_dtypes: Mapping[str, tf.DType],
    report: Mapping[str, Any],
    size_bytes: int,
) -> dict[str, Any]:
    """The contents of rocketctr.json."""
    schema = model.schema
    input_dtypes = serving_input_dtypes(model)
    scores = {o: "float32" for o in OUTPUTS}
    serving = {
        "inputs": {c: dt.name for c, dt in input_dtypes.items()},
        "outputs": scores,
        "missing": "string columns: '' ; float columns: NaN",
    }
    signatures: dict[str, Any] = {
        SERVING_SIGNATURE: serving,
        EXAMPLES_SIGNATURE: {
            "inputs": {EXAMPLES_INPUT: "string (serialized tf.Example)"},
            "example_feature_dtypes": {c: dt.name for c, dt in example_dtypes.items()},
            "outputs": scores,
            "missing": "an absent feature is parsed as '' (string) or NaN (float)",
        },
    }
    for alias in model.light.serving_aliases:
        signatures[alias] = dict(serving)
    for name, vector in model.light.serving_signatures(schema, lambda ids, names: ids).items():
        signatures[name] = {
            "inputs": {c: dt.name for c, dt in vector.input_dtypes.items()},
            "outputs": {EMBEDDING_OUTPUT: f"float32 [None, {vector.output_dim}]"},
        }
    names = [f.name for f in model.light_processor.categorical]
    return {
        "format_version": 1,
        "rocketctr_version": rocketctr.__version__,
        "tensorflow_version": tf.__version__,
        "exported_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "version": version,
        "tower": "light",
        "light": model.lead.name,  # which light net of the run (model.lights)
        # How raw values became table rows in training; the graph here applies the same.
        "feature_format": feature_format(),
        "schema": {
            "name": schema.name,
            "source": schema.source,
            "serving_columns": [{"name": c, "dtype": dt.name} for c, dt in input_dtypes.items()],
            "privileged_not_served": list(schema.privileged),
            # The whole schema, so that files can be scored with the export alone.
            "definition": schema.to_dict(),
        },
        "signatures": signatures,
        "embedding_table": {
            "dtype": report["embedding_dtype"],
            "rows": light_rows(schema, names) if model.light_table() else 0,
            "training_rows": model.processor.num_table_rows,
            "features": names,
            "layout": "the light features' blocks of the training table, in schema order; "
            "ids are remapped in the graph",
        },
        "size_bytes": size_bytes,
        "config": model.rocket_config.to_dict(),
        "metadata": dict(metadata or {}),
        "parameters": parameter_counts(model),
        "flops_per_example": {
            **tower_flops(model),
            "method": "analytic from layer shapes (Tower.flops): 2*in*out per Dense "
            "kernel + cross/CIN/FM element-wise ops; no bias, activation or lookup cost",
        },
        "verification": dict(report),
        **model.light.serving_metadata(),
    }


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"Not JSON serializable in export metadata: {type(value).__name__}")


def write_export_info(version_dir: Path, info: Mapping[str, Any]) -> None:
    (version_dir / ASSETS_EXTRA / METADATA_FILE).write_text(
        json.dumps(info, indent=2, default=_json_default)
    )


def read_export_info(version_dir: str | Path) -> dict[str, Any]:
    """The `assets.extra/rocketctr.json` of an exported version."""
    return json.loads((Path(version_dir) / ASSETS_EXTRA / METADATA_FILE).read_text())
