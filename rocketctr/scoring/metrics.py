"""Exact evaluation metrics over a whole eval set: AUC, logloss, GAUC and calibration.

Keras' streaming AUC (thresholded) drives the progress bars; the final table uses these
exact, tie-aware versions.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def sigmoid(logits: np.ndarray) -> np.ndarray:
    """1 / (1 + e^-z) in float64, without overflow for logits of any size (a diverged net's
    1e20 gives exactly 1.0, not a RuntimeWarning)."""
    z = np.asarray(logits, dtype=np.float64)
    return np.exp(-np.logaddexp(0.0, -z))


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC via the Mann-Whitney U statistic; tied scores count one half.

    Returns NaN when only one class is present.
    """
    labels = np.asarray(labels, dtype=bool)
    n_pos = int(labels.sum())
    n_neg = labels.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = pd.Series(np.asarray(scores, dtype=np.float64)).rank(method="average").to_numpy()
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def logloss(labels: np.ndarray, probs: np.ndarray, eps: float = 1e-7) -> float:
    """Mean binary cross-entropy of probabilities, clipped to [eps, 1 - eps]."""
    p = np.clip(np.asarray(probs, dtype=np.float64), eps, 1 - eps)
    y = np.asarray(labels, dtype=np.float64)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def gauc(labels: np.ndarray, scores: np.ndarray, users: np.ndarray) -> tuple[float, int]:
    """Group AUC: per-user AUC weighted by the user's impressions.

    Users whose rows are all one class have no AUC and are skipped.

    Returns:
        (gauc, number of users counted); gauc is NaN when no user has both classes.
    """
    frame = pd.DataFrame(
        {
            "y": np.asarray(labels, dtype=bool),
            "s": np.asarray(scores, dtype=np.float64),
            "u": np.asarray(users),
        }  # fmt: skip
    )
    frame["rank"] = frame.groupby("u")["s"].rank(method="average")
    frame["pos_rank"] = frame["rank"].where(frame["y"], 0.0)
    per_user = frame.groupby("u").agg(
        n=("y", "size"), n_pos=("y", "sum"), pos_rank_sum=("pos_rank", "sum")
    )
    per_user["n_neg"] = per_user["n"] - per_user["n_pos"]
    per_user = per_user[(per_user["n_pos"] > 0) & (per_user["n_neg"] > 0)]
    if per_user.empty:
        return float("nan"), 0
    n_pos = per_user["n_pos"].astype(np.float64)
    user_auc = (per_user["pos_rank_sum"] - n_pos * (n_pos + 1) / 2) / (n_pos * per_user["n_neg"])
    weights = per_user["n"].astype(np.float64)
    return float((user_auc * weights).sum() / weights.sum()), len(per_user)


CALIBRATION_BUCKETS = 20
# A GAUC over fewer users than this is printed with a warning: it says little.
FEW_GAUC_USERS = 100


def calibration_buckets(
    labels: np.ndarray, probs: np.ndarray, buckets: int = CALIBRATION_BUCKETS
) -> list[dict[str, float]]:
    """The reliability curve: rows sorted by predicted probability, cut into `buckets`
    groups of equal size (the first ones one row larger when N is not a multiple).

    Returns:
        Per non-empty bucket, lowest probability first: {"rows", "mean_prediction",
        "observed_ctr"}.
    """
    p = np.asarray(probs, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    order = np.argsort(p, kind="stable")
    return [
        {"rows": int(part.size), "mean_prediction": float(p[part].mean()),
         "observed_ctr": float(y[part].mean())}
        for part in np.array_split(order, min(buckets, p.size))
        if part.size
    ]  # fmt: skip


def expected_calibration_error(buckets: list[dict[str, float]]) -> float:
    """Σ_b (rows_b / N) · |mean prediction_b − observed CTR_b| over calibration buckets."""
    total = sum(b["rows"] for b in buckets)
    gaps = (b["rows"] * abs(b["mean_prediction"] - b["observed_ctr"]) for b in buckets)
    return float(sum(gaps) / total) if total else float("nan")


def tower_metrics(
    labels: np.ndarray, probs: np.ndarray, users: np.ndarray | None = None
) -> dict[str, float]:
    """One tower's metrics: AUC, logloss, (with users) GAUC and the users it counts, and
    calibration: the mean predicted CTR, the observed CTR and the expected calibration
    error over `CALIBRATION_BUCKETS` equal-mass buckets."""
    result = {"auc": auc(labels, probs), "logloss": logloss(labels, probs)}
    if users is not None:
        result["gauc"], result["gauc_users"] = gauc(labels, probs, users)
    result.update(
        rows=int(np.size(labels)),
        mean_prediction=float(np.mean(probs)),
        observed_ctr=float(np.mean(np.asarray(labels, dtype=np.float64))),
        ece=expected_calibration_error(calibration_buckets(labels, probs)),
    )
    return result


_COLUMNS = {  # key: (header, format)
    "auc": ("auc", "{:.4f}"),
    "logloss": ("logloss", "{:.4f}"),
    "gauc": ("gauc", "{:.4f}"),
    "gauc_users": ("users", "{:,}"),
    "ece": ("ece", "{:.4f}"),
    "mean_prediction": ("pred ctr", "{:.4f}"),
    "observed_ctr": ("obs ctr", "{:.4f}"),
}


def format_table(metrics: dict[str, dict[str, float]]) -> str:
    """A plain-text table with one row per tower (the columns some tower has), and a
    warning line when GAUC averages over fewer than `FEW_GAUC_USERS` users."""
    columns = [c for c in _COLUMNS if any(c in m for m in metrics.values())]
    width = max(10, *(len(_COLUMNS[c][0]) + 2 for c in columns))
    first = max(10, *(len(t) + 2 for t in metrics))  # light nets have names of their own
    lines = [f"{'tower':<{first}}" + "".join(f"{_COLUMNS[c][0]:>{width}}" for c in columns)]
    for tower, values in metrics.items():
        cells = [_COLUMNS[c][1].format(values[c]) if c in values else "n/a" for c in columns]
        lines.append(f"{tower:<{first}}" + "".join(f"{cell:>{width}}" for cell in cells))
    users = {m["gauc_users"] for m in metrics.values() if "gauc_users" in m}
    if users and min(users) < FEW_GAUC_USERS:
        lines.append(
            f"WARNING: GAUC averages over {min(users):,} users with both classes (fewer than "
            f"{FEW_GAUC_USERS}): it says little."
        )
    return "\n".join(lines)
