"""Batch scoring (`rocketctr predict`): every row of some files -> a Parquet or CSV file.

Rows stream through in batches and are written as they are scored, so memory stays flat
whatever the input's size. The output has one row per input row that was read, in the
input's order (files one after another, as the globs list them): the `keep` columns as
they were read, the label, then each tower's probability and logit. Malformed rows follow
the bad-row policy of training: under "skip" they are left out and counted in the summary.
The file appears whole or not at all (written beside it, then renamed).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import tensorflow as tf

from rocketctr.config.core import Config, ConfigError
from rocketctr.data import BadRowReport, make_dataset
from rocketctr.data.dataset import SOURCE_FILE, SOURCE_ROW, expand_patterns
from rocketctr.features.schema import load_schema, parse_schema
from rocketctr.files import check_writable_dir
from rocketctr.runs.rundir import BEST_DIR, restore_run
from rocketctr.runs.selected import load_booster
from rocketctr.scoring.evaluation import run_history, run_towers
from rocketctr.scoring.metrics import sigmoid

OUTPUT_FORMATS = (".parquet", ".csv")


def _export_version(export_dir: Path) -> Path:
    """`export_dir` itself when it holds a SavedModel, else its newest numeric version."""
    from rocketctr.serving import versions

    if (export_dir / "saved_model.pb").exists():
        return export_dir
    found = versions(export_dir)
    if not found:
        raise ConfigError(f"{export_dir} holds no SavedModel and no numbered export version.")
    return found[-1]


class _ExportScorer:
    """The light net of an export, read with the schema it records."""

    def __init__(self, export_dir: Path) -> None:
        from rocketctr.serving import read_export_info

        self.path = _export_version(export_dir)
        info = read_export_info(self.path)
        definition = info["schema"].get("definition")
        self.schema = (
            parse_schema(definition, source=str(self.path)) if definition
            else load_schema(info["config"]["schema"])  # exports before the schema was recorded
        )  # fmt: skip
        self.config = Config.from_dict(info["config"])
        self.columns = [c["name"] for c in info["schema"]["serving_columns"]]
        self.signature = tf.saved_model.load(str(self.path)).signatures["serving_default"]

    def __call__(self, features: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        out = self.signature(**{c: features[c] for c in self.columns})
        return {"light_logits": out["logits"]}


def predict(
    patterns: Sequence[str],
    output: str | Path,
    *,
    model_dir: str | Path | None = None,
    export_dir: str | Path | None = None,
    tower: str = "light",
    keep: Sequence[str] = (),
    bad_rows: str | None = None,
    batch_size: int = 4096,
    source: bool = False,
    overwrite: bool = False,
    light: str | None = None,
) -> dict[str, Any]:
    """Scores the rows of `patterns` and writes them to `output` (.parquet or .csv).

    Args:
        patterns: file globs in the run's (or the export's) schema.
        output: the file to write; its suffix picks the format.
        model_dir: score with this run's selected weights...
        export_dir: ...or with this light export (a version dir, or a base: its newest).
        tower: "light", "booster" or "both" (booster: a run only).
        keep: input columns copied to the output.
        bad_rows: the bad-row policy; None takes the run's.
        batch_size: rows per step.
        source: also write each row's `source_file` and `source_line` (line or record
            number, header counted, as bad-row messages count them), to join back on.
        overwrite: replace an existing `output` (never one of the inputs).
        light: with `model_dir`, which light net of a run of several, at its own best
            epoch (by default the run's export.light); "both" scores it and the booster.

    Returns:
        {"rows", "columns", "scored_with", "bad_rows"} (the bad-row summary).
    """
    output = Path(output)
    if output.suffix.lower() not in OUTPUT_FORMATS:
        raise ConfigError(f"--output must end in .parquet or .csv. Received: {output}")
    check_output(output, patterns, overwrite)
    if model_dir is not None:
        model, config, checkpoint, _ = restore_run(
            model_dir, error=ConfigError, light=light, train=False
        )
        # One light net: the others' weights are not at their own best epochs here.
        lead = model.lead.name if model.has_light else None
        towers = [t for t in run_towers(model, tower) if t in (lead, "booster")]
        schema, scored_with = model.schema, checkpoint
        booster = model
        moved = lead not in (None, config.export_light)  # another net's rows in the table
        if "booster" in towers:  # at its own best epoch, from a frozen copy of its rows
            history = run_history(Path(model_dir))
            kept = load_booster(model, Path(model_dir) / BEST_DIR, history, always=moved)
            if kept is None and moved:  # not kept apart: as the run's checkpoint holds it
                booster = restore_run(model_dir, error=ConfigError, train=False)[0]
        scorer = tf.function(
            lambda x: (
                {**model(x, training=False), "booster_logits": booster(x)["booster_logits"]}
                if booster is not model
                else model(x, training=False)
            ),
            reduce_retracing=True,
        )
    else:
        if tower != "light":
            raise ConfigError("An export holds the light net only: --tower light.")
        scorer = _ExportScorer(Path(export_dir))
        towers, schema, config, scored_with = ["light"], scorer.schema, scorer.config, scorer.path
    keep = [c for c in keep if c != schema.label]  # the label is always written
    report = BadRowReport()
    dataset = make_dataset(
        schema, patterns, batch_size, bad_rows=bad_rows or config.train.bad_rows,
        report=report, keep_columns=keep, in_file_order=True, row_sources=source,
    )  # fmt: skip
    paths = np.array(expand_patterns(patterns), dtype=object) if source else None
    # Unique per process: two predicts to one output never write into each other's file.
    partial = output.with_name(f".{output.name}.{os.getpid()}.partial")
    rows, writer = 0, None
    try:
        for features, labels in dataset:
            logits = scorer(features)
            columns = {c: _column(features[c].numpy()) for c in keep}
            if source:
                columns["source_file"] = pa.array(paths[features[SOURCE_FILE].numpy()])
                columns["source_line"] = pa.array(features[SOURCE_ROW].numpy())
            columns["label"] = pa.array(labels.numpy())
            for name in towers:
                z = logits[f"{name}_logits"].numpy().astype(np.float64)
                columns[f"{name}_probability"] = pa.array(sigmoid(z))
                columns[f"{name}_logit"] = pa.array(z)
            table = pa.table(columns)
            if writer is None:
                writer = _writer(partial, output, table.schema)
            writer.write_table(table)
            rows += table.num_rows
        if writer is None:
            raise ConfigError(f"No rows to score in {list(patterns)}: {report.summary()}")
        writer.close()
        _publish(partial, output, overwrite)
    finally:
        if partial.exists():
            if writer is not None:
                writer.close()
            partial.unlink()
    scores = [f"{t}_{kind}" for t in towers for kind in ("probability", "logit")]
    return {
        "rows": rows,
        "columns": [*keep, *(["source_file", "source_line"] if source else []), "label", *scores],
        "scored_with": str(scored_with),
        "bad_rows": report.summary(),
    }


def _column(values: np.ndarray) -> pa.Array:
    """A kept column: UTF-8 text where the bytes are text, floats as they are."""
    if values.dtype != object:
        return pa.array(values)
    binary = pa.array(values, type=pa.binary())
    try:
        return binary.cast(pa.string())
    except pa.ArrowInvalid:
        return binary


def check_output(output: Path, patterns: Sequence[str], overwrite: bool) -> None:
    """Refuses an output that is one of the inputs (by inode, so links and other spellings
    count) and, without `overwrite`, one that exists.

    Raises:
        ConfigError: naming the file and what to do instead.
    """
    check_writable_dir(output.parent, f"--output {output}: its directory")
    if not output.exists():
        return
    for path in expand_patterns(patterns):
        if os.path.exists(path) and os.path.samefile(path, output):
            raise ConfigError(
                f"--output {output} is one of the input files ({path}): scoring would "
                "replace it. Write the scores to another file."
            )
    if output.is_dir():
        raise ConfigError(f"--output {output} is a directory; name a .parquet or .csv file.")
    if not overwrite:
        raise ConfigError(
            f"--output {output} exists; pass --overwrite to replace it, or name another file."
        )


def _publish(partial: Path, output: Path, overwrite: bool) -> None:
    """Moves the finished scores into place; without `overwrite`, only if no other process
    wrote `output` meanwhile (a hard link fails if it exists)."""
    if overwrite:
        os.replace(partial, output)
        return
    try:
        os.link(partial, output)
    except FileExistsError:
        raise ConfigError(
            f"--output {output} appeared while scoring (another predict?); it was left as "
            "it is. Pass --overwrite to replace it."
        ) from None
    except OSError:  # a filesystem without hard links: the check before scoring stands
        os.replace(partial, output)
        return
    partial.unlink()


def _writer(path: Path, output: Path, schema: pa.Schema):
    if output.suffix.lower() == ".parquet":
        return pq.ParquetWriter(str(path), schema)
    return pa_csv.CSVWriter(str(path), schema)
