"""The export gate: a light net that cannot rank is never published.

TF Serving loads the newest version under the export base on its own, so whatever is
published there goes live. Before a version is renamed into place, its served
probabilities on the export's eval rows (the rows parity is checked on) must pass:

- every probability is finite;
- the probabilities are not constant (a dead net: ReLUs that never fire);
- AUC > `AUC_FLOOR` (0.5 + 0.01: better than chance);
- AUC >= `export.min_auc`, when the user sets that floor;
- AUC >= the newest version already under the export base minus `export.max_auc_drop`,
  both scored on the same rows (that version's SavedModel is loaded); a base with no
  version passes.

A refusal is one `GateRefused` line naming every failed check and what usually causes it;
`force=True` (`--force`) publishes anyway. The verdict and its figures (the "blessing") go
into the version's rocketctr.json under "gate".
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from rocketctr.config.core import Config
from rocketctr.scoring.metrics import auc
from rocketctr.serving.export_error import ExportError
from rocketctr.training.health import AUC_FLOOR, light_optimizer, lower_rate_hint

CONSTANT_SPREAD = 1e-6  # max - min of the probabilities at or below this: constant output
SERVING_SIGNATURE = "serving_default"


class GateRefused(ExportError):
    """The export gate refused a light net; nothing was published."""


def score_version(version_dir: Path, rows: Mapping[str, np.ndarray]) -> np.ndarray:
    """The probabilities a published version serves for `rows` ({column: [N]}).

    Raises:
        GateRefused: it cannot be loaded, or it takes inputs `rows` do not have (the
            message is one of the gate's failures).
    """
    try:
        loaded = tf.saved_model.load(str(version_dir))
        signature = loaded.signatures[SERVING_SIGNATURE]
    except (OSError, KeyError, ValueError, tf.errors.OpError) as e:
        raise GateRefused(
            f"it cannot be compared with {version_dir}, which does not load "
            f"({type(e).__name__}; export to a new base, or set export.max_auc_drop to null)"
        ) from None
    inputs = signature.structured_input_signature[1]
    missing = sorted(set(inputs) - set(rows))
    if missing:
        raise GateRefused(
            f"it cannot be compared with {version_dir}, which takes inputs {missing} its eval "
            "rows do not have (another schema? export to a new base, or set "
            "export.max_auc_drop to null)"
        )
    features = {c: tf.constant(rows[c], dtype=spec.dtype) for c, spec in inputs.items()}
    return signature(**features)["probabilities"].numpy().reshape(-1)


def check_gate(
    config: Config,
    probs: np.ndarray,
    labels: np.ndarray | None,
    rows: Mapping[str, np.ndarray],
    baseline: Path | None,
    *,
    force: bool = False,
) -> dict[str, Any]:
    """Checks a light net's served probabilities before it is published.

    Args:
        config: the run's config (`export.min_auc`, `export.max_auc_drop`, the optimizer).
        probs: the export's probabilities on the eval rows [N].
        labels: their 0/1 labels [N], or None (no labelled rows: the AUC checks cannot run).
        rows: the raw rows {column: [N]} the baseline is scored on.
        baseline: the newest version already under the export base, or None.
        force: publish even when a check fails (the verdict says "forced").

    Returns:
        The verdict: {"verdict": "passed"|"forced", "failures", "rows", "auc",
        "probability_spread", "thresholds", "baseline" ({version, path, auc} or None)}.

    Raises:
        GateRefused: a check failed and `force` is False; the message names every failure.
    """
    e = config.export
    probs = np.asarray(probs, dtype=np.float64).reshape(-1)
    failures: list[str] = []
    finite = bool(np.all(np.isfinite(probs)))
    spread = float(np.ptp(probs[np.isfinite(probs)])) if np.any(np.isfinite(probs)) else 0.0
    value = auc(labels, probs) if labels is not None and finite else float("nan")
    n = f"{len(probs):,} eval rows"
    if not finite:
        bad = int(np.sum(~np.isfinite(probs)))
        failures.append(
            f"{bad} of its probabilities on the {n} are not finite: its weights diverged "
            f"(lower the learning rate, {light_optimizer(config)})"
        )
    elif spread <= CONSTANT_SPREAD:
        failures.append(
            f"it predicts the same probability ({probs[0]:.4f}) for all {n}: a dead net "
            "(ReLUs that never fire, or saturated logits), usually a learning rate too high "
            f"for its size ({light_optimizer(config)}): {lower_rate_hint(config)}"
        )
    elif labels is not None and math.isnan(value):
        failures.append(f"the {n} hold one class only, so its AUC cannot be measured")
    elif labels is not None and value <= AUC_FLOOR:
        failures.append(
            f"its AUC {value:.4f} on the {n} is no better than chance (<= {AUC_FLOOR}): it "
            f"did not learn (check the learning rate, {light_optimizer(config)}, and the "
            "labels)"
        )
    if e.min_auc is not None:
        if labels is None:
            failures.append(f"export.min_auc {e.min_auc} needs labelled eval rows; none given")
        elif not value >= e.min_auc:  # NaN fails too
            failures.append(f"its AUC {value:.4f} is below export.min_auc {e.min_auc}")
    found = None
    if baseline is not None and e.max_auc_drop is not None and not math.isnan(value):
        try:
            base_auc = auc(labels, score_version(baseline, rows))
        except GateRefused as refused:  # a failure like the others: --force still publishes
            failures.append(str(refused))
            base_auc = math.nan
        found = {
            "version": int(baseline.name),
            "path": str(baseline),
            "auc": None if math.isnan(base_auc) else base_auc,
        }
        drop = base_auc - value
        if not math.isnan(base_auc) and not drop <= e.max_auc_drop:
            failures.append(
                f"its AUC {value:.4f} is {drop:.4f} below version {baseline.name}'s "
                f"{base_auc:.4f} on the same {n} (export.max_auc_drop {e.max_auc_drop})"
            )
    verdict = {
        "verdict": "forced" if failures else "passed",
        "failures": failures,
        "rows": int(len(probs)),
        "auc": None if math.isnan(value) else value,
        "probability_spread": spread,
        "thresholds": {
            "auc_floor": AUC_FLOOR,
            "min_auc": e.min_auc,
            "max_auc_drop": e.max_auc_drop,
            "constant_spread": CONSTANT_SPREAD,
        },
        "baseline": found,
    }
    if labels is None:
        verdict["not_checked"] = "no labelled eval rows: AUC, min_auc and max_auc_drop"
    if failures and not force:
        raise GateRefused(
            "Export refused, nothing published: " + "; ".join(failures) + ". --force "
            "(force=True) publishes it anyway."
        )
    return verdict
