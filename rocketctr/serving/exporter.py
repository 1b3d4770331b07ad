"""Light-only SavedModel export for TF Serving: build, verify, publish.

    <export_base>/<version>/saved_model.pb, variables/
    <export_base>/<version>/assets.extra/tf_serving_warmup_requests   (PredictionLog TFRecord)
    <export_base>/<version>/assets.extra/rocketctr.json               (schema, config, metrics)

The export holds the light path only: the light feature processor, the light features'
rows of the table the light net reads (light_table.py, stored as `export.embedding_dtype`)
and the light tower. Each version is written into a hidden temporary sibling, verified
there (verification.py; quality.py for quantized rows), and only then renamed into place
(publish.py).
"""

from __future__ import annotations

import gc
import logging
import re
import resource
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rocketctr.files import naming_disk_full, variable_bytes
from rocketctr.model.cotrain import CoTrainModel
from rocketctr.runs.rundir import RunFileError, load_run_config
from rocketctr.serving.example_codec import resolve_example_dtypes
from rocketctr.serving.example_rows import as_numpy_labels, as_numpy_rows, synthetic_rows
from rocketctr.serving.export_error import ExportError
from rocketctr.serving.gate import check_gate
from rocketctr.serving.metadata import (
    ASSETS_EXTRA,
    export_info,
    saved_model_bytes,
    write_export_info,
)
from rocketctr.serving.publish import publish_version, versions
from rocketctr.serving.run_restore import restore_model, run_eval_rows
from rocketctr.serving.serving_module import (
    build_light_module,
    light_table,
    save_module,
    serving_input_dtypes,
)
from rocketctr.serving.verification import verify_export
from rocketctr.serving.warmup import WARMUP_FILE, WARMUP_ROWS, write_warmup

log = logging.getLogger("rocketctr")

DEFAULT_MODEL_NAME = "rocketctr"


def export_light(
    model: CoTrainModel,
    export_base: str | Path,
    *,
    example_features: Mapping[str, Any] | None = None,
    example_labels: Any = None,
    metadata: Mapping[str, Any] | None = None,
    example_dtypes: Mapping[str, Any] | None = None,
    model_name: str = DEFAULT_MODEL_NAME,
    force: bool = False,
) -> Path:
    """Exports the light net as a new numeric version under `export_base`, verified and
    gated.

    Args:
        model: a (trained) co-training model with a light tower. Its config's
            `export.embedding_dtype` says how the rows are stored.
        export_base: the directory TF Serving watches (`--model_base_path`).
        example_features: real raw rows, {column: [N]} as readers deliver them (extra
            columns such as privileged ones or the label are ignored). The first
            `WARMUP_ROWS` become the warmup requests; up to `PARITY_ROWS` are scored by
            the in-memory and the reloaded model, which must agree within `PARITY_ATOL`.
            Without them there is no warmup file and parity is checked on synthetic rows.
        example_labels: 0/1 labels [N] of `example_features`: the AUC/logloss change of
            the export against the float32 light net is measured on them and recorded;
            bfloat16/int8 exports need them and are refused beyond their tolerance.
        metadata: recorded in `assets.extra/rocketctr.json` (e.g. eval metrics).
        example_dtypes: {column: "int64" | "string" | "float32"}, the tf.Example list type
            `predict_examples` parses for that column (e.g. int64 for the integer columns
            TFX CsvExampleGen writes); the default is bytes_list for categorical source
            columns and float_list for dense ones. Columns of the schema that are not
            served (label, privileged) are ignored.
        model_name: the TF Serving model name written into the warmup requests.
        force: publish even when the export gate (gate.py) refuses the net; its verdict
            in rocketctr.json then says "forced".

    Returns:
        The version directory, `<export_base>/<version>`.

    Raises:
        ExportError: the model has no light tower, the example rows lack serving columns,
            or verification failed (booster/optimizer variable, privileged input, wrong
            parameter count, scores differ, AUC moved too much). Nothing is left under
            `export_base` then.
        GateRefused: the export gate refused the net (non-finite or constant scores, AUC
            at chance, below `export.min_auc`, or more than `export.max_auc_drop` below
            the newest published version). Nothing is left under `export_base` then.
    """
    if not model.has_light:
        raise ExportError(
            "The model has no light net to export (distill.mode "
            f"{model.rocket_config.distill.mode!r}). Train with mode co_train or light_only."
        )
    input_dtypes = serving_input_dtypes(model)
    parse_dtypes = resolve_example_dtypes(model.schema, input_dtypes, example_dtypes)
    rows = as_numpy_rows(example_features, input_dtypes) if example_features is not None else None
    labels = None
    if rows is not None and example_labels is not None:
        labels = as_numpy_labels(example_labels, len(next(iter(rows.values()))))
    table = light_table(model)
    module = build_light_module(model, parse_dtypes, table)
    # The saved module is dropped before the export is reloaded to be checked; a quantized
    # table is kept, as the reference the reloaded rows must match.
    unsaved, needed = [module], variable_bytes(module)
    reference = table if table is not None and table.dtype != "float32" else None
    del module, table
    config = model.rocket_config
    if config.model.lights:  # the config it records names the light net it holds
        config = config.replace({"export.light": model.lead.name})

    def write(tmp: Path, version: int) -> dict[str, Any]:
        save_module(unsaved.pop(), tmp)
        gc.collect()  # its traced functions refer to it in cycles: free its rows now
        size = saved_model_bytes(tmp)
        extra = tmp / ASSETS_EXTRA
        extra.mkdir()
        if rows is not None:
            write_warmup(extra / WARMUP_FILE, rows, input_dtypes, model_name, WARMUP_ROWS)
        parity_rows = rows if rows is not None else synthetic_rows(input_dtypes)
        report, served = verify_export(tmp, model, parity_rows, parse_dtypes, labels, reference)
        published = [v for v in versions(tmp.parent) if int(v.name) < version]
        gate = check_gate(
            config,
            served,
            labels,
            parity_rows,
            published[-1] if published else None,
            force=force,
        )
        info = export_info(model, version, metadata, parse_dtypes, report, size)
        info["gate"], info["config"] = gate, config.to_dict()
        write_export_info(tmp, info)
        return info

    # A full disk: one line with the space its variables alone need (the graph comes on top).
    with naming_disk_full(export_base, "the export", lambda: needed, True):
        final, info = publish_version(export_base, write)
    log.info("Exported the light net to %s: %s; %s", final, describe_export(info), peak_memory())
    if info["gate"]["failures"]:
        print(
            f"WARNING: published {final} although the export gate refused it (--force): "
            + "; ".join(info["gate"]["failures"])
        )
    return final


def peak_memory() -> str:
    """'peak memory N MiB': the most this process has held in RAM so far (its peak
    resident set), e.g. for an export, which holds the training table, the export's rows
    and the reloaded export's rows."""
    return f"peak memory {peak_rss_bytes() / 2**20:,.0f} MiB"


def peak_rss_bytes() -> int:
    """This process's peak resident set: Linux's VmHWM, which is this program's own. Not
    getrusage's ru_maxrss: Linux carries that over an exec from the process that forked
    this one (a pipeline's driver holding gigabytes would be counted)."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:  # not Linux: ru_maxrss is in bytes on macOS, KiB elsewhere
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak * (1 if sys.platform == "darwin" else 1024)
    match = re.search(r"^VmHWM:\s+(\d+) kB", status, re.M)
    return int(match[1]) * 1024


def describe_export(info: Mapping[str, Any]) -> str:
    """One line: size, dtype, rows, the AUC/logloss change (when measured), the gate."""
    table, quality = info["embedding_table"], info["verification"]["quality"]
    text = _describe_quality(info["size_bytes"], table, quality)
    gate = info.get("gate")  # exports made before the gate have none
    if gate is None:
        return text
    baseline = gate["baseline"]
    versus = f", version {baseline['version']}: {baseline['auc']:.5f}" if baseline else ""
    return f"{text}; export gate {gate['verdict']}{versus}"


def _describe_quality(
    size_bytes: int, table: Mapping[str, Any], quality: Mapping[str, Any] | None
) -> str:
    text = (
        f"{size_bytes / 2**20:.1f} MiB, {table['dtype']} table of {table['rows']:,} rows"
        f" ({table['training_rows']:,} in training)"
    )
    if quality is None:
        return text + "; AUC change not measured (no labelled eval rows)"
    return (
        f"{text}; AUC {quality['auc']:.5f} ({quality['auc_change']:+.6f} vs float32), logloss "
        f"{quality['logloss']:.5f} ({quality['logloss_change']:+.6f}) on {quality['rows']} "
        "eval rows"
    )


def export_from_model_dir(
    model_dir: str | Path,
    export_base: str | Path,
    *,
    metadata: Mapping[str, Any] | None = None,
    example_dtypes: Mapping[str, Any] | None = None,
    model_name: str = DEFAULT_MODEL_NAME,
    overrides: Mapping[str, Any] | None = None,
    force: bool = False,
    light: str | None = None,
) -> Path:
    """Restores the latest checkpoint of a training run and exports one of its light nets.

    The parity check and the warmup requests use the run's own eval rows (the globs its
    `train` recorded, read with the run's schema and bad-row policy), like the export at
    the end of training. A run that recorded no eval data is checked on synthetic rows,
    gets no warmup file, and this is said in one line.

    Args:
        model_dir: a `rocketctr train` model dir (config.yaml, checkpoints/, metrics.json).
        export_base: the directory TF Serving watches.
        metadata: merged over the run's info (checkpoint, global_step, completed_epochs,
            model_dir, and "metrics" from metrics.json when present).
        example_dtypes: as for `export_light`.
        model_name: as for `export_light`.
        overrides: dotted `export.*` config keys to export with instead of the run's
            (e.g. {"export.embedding_dtype": "int8"}); nothing else of a run can change.
        force: as for `export_light`.
        light: which of the run's light nets (`model.lights`), at its own best epoch; by
            default its `export.light`, else its first.

    Returns:
        The new version directory.

    Raises:
        ExportError: no config or checkpoint in `model_dir`, the run has no light net
            (distill.mode booster_only), its recorded eval data cannot be read, or
            `export_light` refused the export.
    """
    try:
        config = load_run_config(Path(model_dir))
    except RunFileError as e:
        raise ExportError(str(e)) from None
    if config.distill.mode == "booster_only":
        raise ExportError(
            f"{model_dir} was trained with distill.mode 'booster_only': it has no light net, "
            "and the booster is never exported."
        )
    others = sorted(k for k in (overrides or {}) if not k.startswith("export."))
    if others:
        raise ExportError(f"An export may override export.* keys only. Received: {others}")
    model, info = restore_model(model_dir, light)
    if overrides:
        model.rocket_config = config.replace(dict(overrides))  # export.* never shapes the model
    info.update(metadata or {})
    features = labels = None
    found = run_eval_rows(model_dir, model)
    if found is None:
        print(
            f"{model_dir} recorded no eval data: checking the export on synthetic rows, "
            "without a warmup file."
        )
    else:
        features, labels, patterns = found
        info["parity_rows_from"] = patterns
    return export_light(
        model,
        export_base,
        example_features=features,
        example_labels=labels,
        metadata=info,
        example_dtypes=example_dtypes,
        model_name=model_name,
        force=force,
    )
