"""How much a quantized export's scores move: AUC and logloss against the float32 light net.

The exporter scores its eval rows with the in-memory float32 light net and with the
reloaded export; an export whose AUC moves more than the tolerance of its embedding dtype is
refused. float32 exports are held to score parity instead (verification.PARITY_ATOL).
"""

from __future__ import annotations

import math

import numpy as np

from rocketctr.scoring.metrics import auc, logloss
from rocketctr.serving.export_error import ExportError

# Largest |AUC(export) − AUC(float32 light net)| accepted on the export's eval rows.
AUC_TOLERANCE = {"bfloat16": 1e-4, "int8": 1e-3}


def quality_change(
    labels: np.ndarray, float32_probs: np.ndarray, export_probs: np.ndarray, dtype: str
) -> dict[str, float | int | None]:
    """AUC and logloss of the export and of the float32 light net on the same rows.

    Args:
        labels: 0/1 [N].
        float32_probs: the in-memory float32 light net's probabilities [N].
        export_probs: the reloaded export's probabilities [N].
        dtype: the export's embedding dtype.

    Returns:
        {"rows", "auc_float32", "auc", "auc_change", "logloss_float32", "logloss",
        "logloss_change", "auc_tolerance"}; changes are export minus float32.

    Raises:
        ExportError: |auc_change| is beyond the dtype's tolerance, or the rows hold one
            class only, so the change cannot be measured.
    """
    base_auc, export_auc = auc(labels, float32_probs), auc(labels, export_probs)
    base_loss, export_loss = logloss(labels, float32_probs), logloss(labels, export_probs)
    tolerance = AUC_TOLERANCE.get(dtype)
    change = {
        "rows": int(len(labels)),
        "auc_float32": base_auc,
        "auc": export_auc,
        "auc_change": export_auc - base_auc,
        "logloss_float32": base_loss,
        "logloss": export_loss,
        "logloss_change": export_loss - base_loss,
        "auc_tolerance": tolerance,
    }
    if tolerance is None:
        return change
    if math.isnan(base_auc):
        raise ExportError(
            f"export.embedding_dtype {dtype!r}: the {len(labels)} eval rows hold one class "
            "only, so the AUC change cannot be checked; export with more eval rows."
        )
    if abs(change["auc_change"]) > tolerance:
        raise ExportError(
            f"export.embedding_dtype {dtype!r} moves the light net's AUC by "
            f"{change['auc_change']:+.6f} on {len(labels)} eval rows ({base_auc:.6f} -> "
            f"{export_auc:.6f}); the tolerance is {tolerance:g}. Export as float32."
        )
    return change
