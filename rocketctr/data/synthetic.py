"""A built-in Criteo-shaped data generator with planted feature crosses.

The click logit is a sum of first-order effects, a dense-count effect, and planted pairwise
crosses ⟨u_f[id_f], v_g[id_g]⟩ between categorical fields. A deep crossing booster can learn
the crosses; a light net alone mostly cannot, so distillation has something to transfer.
Files are written in the raw Criteo TSV format and read back through the normal reader, so
the default job exercises the same path as real data.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

NUM_DENSE = 13
NUM_CATEGORICAL = 26
# Cardinalities in the spirit of Criteo: a few huge fields, many small ones.
CARDINALITIES = (
    100, 60, 5000, 3000, 150, 12, 3000, 40, 3, 4000, 2000, 5000, 80,
    25, 3000, 5000, 10, 30, 200, 4, 5000, 10, 15, 3000, 50, 3000,
)  # fmt: skip
# (field, field) pairs whose interaction drives clicks: fields of tens to hundreds of values,
# so the crosses are learnable from a few hundred thousand rows.
PLANTED_CROSSES = ((0, 1), (4, 7), (12, 17), (5, 24), (13, 18), (0, 12), (1, 22), (4, 13))
CROSS_DIM = 4


def _zipf_ids(rng: np.random.Generator, cardinality: int, size: int) -> np.ndarray:
    weights = 1.0 / np.arange(1, cardinality + 1) ** 1.05
    return rng.choice(cardinality, size=size, p=weights / weights.sum())


def generate(num_rows: int, seed: int = 0, world_seed: int = 1234) -> pd.DataFrame:
    """Generates rows in the Criteo column layout (label, I1..I13, C1..C26).

    Args:
        num_rows: rows to draw.
        seed: seed of the row draw (use different seeds for train and eval).
        world_seed: seed of the hidden click model; keep it equal for train and eval.

    Returns:
        A DataFrame with Criteo's columns: integer label, dense counts as nullable
        integers (about 10 % missing), categoricals as 8-hex-digit strings.
    """
    world = np.random.default_rng(world_seed)
    rng = np.random.default_rng(seed)
    tokens = [
        np.array([f"{t:08x}" for t in world.integers(0, 2**32, size=card)])
        for card in CARDINALITIES
    ]
    first_order = [world.normal(0.0, 0.35, size=card) for card in CARDINALITIES]
    crosses = [
        (f, g, world.normal(0.0, 1.0, (CARDINALITIES[f], CROSS_DIM)),
         world.normal(0.0, 1.0, (CARDINALITIES[g], CROSS_DIM)))
        for f, g in PLANTED_CROSSES
    ]  # fmt: skip
    dense_scale = world.uniform(0.5, 3.0, size=NUM_DENSE)
    dense_weight = world.normal(0.0, 0.25, size=NUM_DENSE)

    ids = np.stack([_zipf_ids(rng, card, num_rows) for card in CARDINALITIES], axis=1)
    counts = np.floor(rng.lognormal(0.0, 1.0, (num_rows, NUM_DENSE)) * dense_scale).astype(np.int64)

    logit = np.full(num_rows, -1.6)
    for f in range(NUM_CATEGORICAL):
        logit += first_order[f][ids[:, f]]
    cross_scale = 0.9 / np.sqrt(CROSS_DIM)
    for f, g, u, v in crosses:
        logit += cross_scale * np.sum(u[ids[:, f]] * v[ids[:, g]], axis=1)
    logit += (np.log1p(counts) - 1.0) @ dense_weight
    labels = (rng.random(num_rows) < 1.0 / (1.0 + np.exp(-logit))).astype(np.int64)

    frame = pd.DataFrame({"label": labels})
    missing = rng.random((num_rows, NUM_DENSE)) < 0.1
    for j in range(NUM_DENSE):
        frame[f"I{j + 1}"] = pd.array(np.where(missing[:, j], 0, counts[:, j]), dtype="Int64")
        frame.loc[missing[:, j], f"I{j + 1}"] = pd.NA
    for f in range(NUM_CATEGORICAL):
        frame[f"C{f + 1}"] = tokens[f][ids[:, f]]
    return frame


def write_criteo_tsv(frame: pd.DataFrame, path: Path) -> Path:
    """Writes a generated frame as raw Criteo TSV (no header, empty field = missing)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    frame.to_csv(tmp, sep="\t", header=False, index=False, na_rep="")
    tmp.rename(path)  # never leave a half-written file that a later run would trust
    return path


def ensure_synthetic_criteo(
    directory: Path, num_train_rows: int, num_eval_rows: int, seed: int = 0
) -> tuple[Path, Path]:
    """Writes (or reuses) train.tsv and eval.tsv under `directory`; returns their paths."""
    directory = Path(directory)
    train = directory / f"train_{num_train_rows}_s{seed}.tsv"
    evaluation = directory / f"eval_{num_eval_rows}_s{seed}.tsv"
    if not train.exists():
        write_criteo_tsv(generate(num_train_rows, seed=2 * seed), train)
    if not evaluation.exists():
        write_criteo_tsv(generate(num_eval_rows, seed=2 * seed + 1), evaluation)
    return train, evaluation
