"""Light-only SavedModel export for TF Serving, one module per job.

    exporter.py        export_light / export_from_model_dir: build, verify, publish
    serving_module.py  the tf.Module and its signatures (towers declare extra ones)
    light_table.py     the exported table: the light features' rows, float32/bfloat16/int8
    example_codec.py   the tf.Example codec of `predict_examples`
    example_rows.py    the rows an export is checked and warmed up on
    publish.py         versioned, atomic publishing; stale temp dirs removed
    run_restore.py     a training run's latest checkpoint and its eval rows
    verification.py    the checks: variables, signatures, parity
    quality.py         AUC/logloss change of a quantized export, and its tolerance
    gate.py            the export gate: what may be published (the "blessing")
    warmup.py          assets.extra/tf_serving_warmup_requests
    metadata.py        assets.extra/rocketctr.json

Importing this package loads the TF Serving protos; training imports it only to export.
"""

from rocketctr.serving.example_codec import parse_examples, serialize_examples
from rocketctr.serving.example_rows import PARITY_ROWS
from rocketctr.serving.export_error import ExportError
from rocketctr.serving.exporter import (
    DEFAULT_MODEL_NAME,
    describe_export,
    export_from_model_dir,
    export_light,
    peak_memory,
)
from rocketctr.serving.gate import GateRefused
from rocketctr.serving.metadata import (
    ASSETS_EXTRA,
    METADATA_FILE,
    parameter_counts,
    read_export_info,
    saved_model_bytes,
    tower_flops,
)
from rocketctr.serving.publish import next_version, versions
from rocketctr.serving.quality import AUC_TOLERANCE
from rocketctr.serving.run_restore import eval_rows, restore_model
from rocketctr.serving.serving_module import export_tower, serving_input_dtypes
from rocketctr.serving.verification import PARITY_ATOL, parsed_example_keys, verify_export
from rocketctr.serving.warmup import WARMUP_FILE

__all__ = [
    "ASSETS_EXTRA",
    "AUC_TOLERANCE",
    "DEFAULT_MODEL_NAME",
    "METADATA_FILE",
    "PARITY_ATOL",
    "PARITY_ROWS",
    "WARMUP_FILE",
    "ExportError",
    "GateRefused",
    "describe_export",
    "eval_rows",
    "export_from_model_dir",
    "export_light",
    "export_tower",
    "next_version",
    "parameter_counts",
    "parse_examples",
    "parsed_example_keys",
    "peak_memory",
    "read_export_info",
    "restore_model",
    "saved_model_bytes",
    "serialize_examples",
    "serving_input_dtypes",
    "tower_flops",
    "verify_export",
    "versions",
]
