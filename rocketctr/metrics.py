"""Exact evaluation metrics over a whole eval set: AUC, logloss and GAUC.

Keras' streaming AUC (thresholded) drives the progress bars; the final table uses these
exact, tie-aware versions.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


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


def tower_metrics(
    labels: np.ndarray, probs: np.ndarray, users: np.ndarray | None = None
) -> dict[str, float]:
    """AUC, logloss and (with users) GAUC of one tower's probabilities."""
    result = {"auc": auc(labels, probs), "logloss": logloss(labels, probs)}
    if users is not None:
        result["gauc"], result["gauc_users"] = gauc(labels, probs, users)
    return result


def format_table(metrics: dict[str, dict[str, float]]) -> str:
    """A plain-text table with one row per tower."""
    columns = ["auc", "logloss"] + (["gauc"] if any("gauc" in m for m in metrics.values()) else [])
    lines = [f"{'tower':<10}" + "".join(f"{c:>10}" for c in columns)]
    for tower, values in metrics.items():
        lines.append(
            f"{tower:<10}" + "".join(f"{values.get(c, float('nan')):>10.4f}" for c in columns)
        )
    return "\n".join(lines)
